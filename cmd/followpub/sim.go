package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/followpub/followpub/internal/wshotosim"
)

const simUsage = `usage: followpub sim [flags]

Serves a simulated WeShoto API until interrupted; the flags shape its data and faults.

With -tenants N it serves N tenants on the one address, ids t01 … tNN, each with its own
credentials (app id ID-app, app secret ID-secret, fixed access token ID-token), its own data
(seeded from -seed and the tenant id, ids that no other tenant has) and its own arrivals and
faults; every other flag applies to each tenant (-count and -rate are per tenant: 500 tenants of
1000 records take about 600 MB and 6 s to generate, of -count 100 about 80 MB). A token request
is routed by its appid, a list request by its access_token; each tenant is also served on its own
base URL, ADDR/tenants/ID. The start lists every tenant, one line each:
  tenant app_id app_secret access_token records base_url
-revoked and -down start some tenants with revoked credentials or answering 500 to everything;
POST ADDR/sim/tenants/ID?revoked=true|false&down=true|false changes that while it runs.
-write-tenants-file PATH also writes a followpub tenants file listing them (FOLLOWPUB_TENANTS_FILE),
each app secret in a file of its own under secrets/ beside it.

flags:
`

// cmdSim serves the simulated WeShoto API until interrupted; flags shape its data and faults.
func cmdSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), simUsage)
		fs.PrintDefaults()
	}
	addr := fs.String("addr", "127.0.0.1:8090", "address to listen on (port 0 picks a free one)")
	tenants := fs.Int("tenants", 0, "serve this many tenants, t01 … tNN, each with its own credentials, data and faults (0 = one API, as without it)")
	var revoked, down []string
	fs.Func("revoked", "with -tenants: comma-separated tenant ids whose credentials are revoked from the start", func(v string) error {
		revoked = append(revoked, strings.Split(v, ",")...)
		return nil
	})
	fs.Func("down", "with -tenants: comma-separated tenant ids that answer HTTP 500 to everything from the start", func(v string) error {
		down = append(down, strings.Split(v, ",")...)
		return nil
	})
	tenantsFile := fs.String("write-tenants-file", "", "with -tenants: write a followpub tenants file listing them to this path (secrets in secrets/ beside it)")
	var cfg wshotosim.Config
	cfg.RegisterFlags(fs)
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if *tenants < 0 {
		return usagef("sim: -tenants %d: must not be negative", *tenants)
	}
	if *tenants == 0 {
		if *tenantsFile != "" || revoked != nil || down != nil {
			return usagef("sim: -write-tenants-file, -revoked and -down need -tenants")
		}
		srv, err := wshotosim.New(cfg)
		if err != nil {
			return usagef("sim: %v", err)
		}
		return srv.ListenAndServe(ctx, *addr, stdout)
	}
	var clash error
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "app-id", "app-secret", "static-token":
			clash = usagef("sim: -%s: with -tenants each tenant's credentials are derived from its id (ID-app, ID-secret, ID-token)", f.Name)
		}
	})
	if clash != nil {
		return clash
	}
	ts := make([]wshotosim.Tenant, 0, *tenants)
	for _, id := range wshotosim.TenantIDs(*tenants) {
		ts = append(ts, wshotosim.Tenant{ID: id, Config: wshotosim.TenantConfig(cfg, id)})
	}
	m, err := wshotosim.NewMulti(ts)
	if err != nil {
		return usagef("sim: %v", err)
	}
	for _, id := range revoked {
		if m.Tenant(id) == nil {
			return usagef("sim: -revoked: no tenant %q (the tenants are t01 … %s)", id, ts[len(ts)-1].ID)
		}
		m.Tenant(id).SetRevoked(true)
	}
	for _, id := range down {
		if !m.SetDown(id, true) {
			return usagef("sim: -down: no tenant %q (the tenants are t01 … %s)", id, ts[len(ts)-1].ID)
		}
	}
	var ready func(string) error
	if *tenantsFile != "" {
		ready = func(baseURL string) error {
			if err := m.WriteTenantsFile(*tenantsFile, baseURL); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "tenants file for followpub: %s\n", *tenantsFile)
			return nil
		}
	}
	return m.ListenAndServe(ctx, *addr, stdout, ready)
}
