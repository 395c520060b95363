package wshoto

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/followpub/followpub/internal/wshotosim"
)

// pageServerEnv makes this test binary serve the benchmarks' simulator instead of running tests:
// "length" answers with a Content-Length, "chunked" without one (as an API behind a proxy may).
const pageServerEnv = "FOLLOWPUB_BENCH_PAGE_SERVER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(pageServerEnv); mode != "" {
		if err := servePages(mode); err != nil {
			fmt.Fprintln(os.Stderr, "page server:", err)
			os.Exit(1)
		}
		return
	}
	os.Exit(m.Run())
}

// servePages serves a simulator of 200,000 records over 20 days on loopback, prints its URL, and
// returns when its standard input closes.
func servePages(mode string) error {
	end := testNow
	sim, err := wshotosim.New(wshotosim.Config{Count: 200_000, Span: 20 * 24 * time.Hour, End: end,
		Clock: func() time.Time { return end }, StaticToken: "t"})
	if err != nil {
		return err
	}
	var h http.Handler = sim
	if mode == "chunked" {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { sim.ServeHTTP(noLength{w}, r) })
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go func() { _ = http.Serve(ln, h) }()
	fmt.Println("http://" + ln.Addr().String())
	_, _ = io.Copy(io.Discard, os.Stdin)
	return ln.Close()
}

// noLength drops the Content-Length header, so that the answer is chunked.
type noLength struct{ http.ResponseWriter }

func (w noLength) WriteHeader(code int) {
	w.Header().Del("Content-Length")
	w.ResponseWriter.WriteHeader(code)
}

// BenchmarkFetchDay200k fetches one day (about 10,000 records, 100 pages) from a simulator holding
// 200,000 records over 20 days, over HTTP on loopback. The simulator runs in a child process, so
// that cpu-ns/record is the client's CPU alone (this process's rusage, user + system).
func BenchmarkFetchDay200k(b *testing.B) {
	for _, mode := range []string{"length", "chunked"} {
		url := startPageServer(b, mode)
		b.Run(mode, func(b *testing.B) {
			c, err := New(Config{BaseURL: url, AccessToken: "t", RateLimit: -1})
			if err != nil {
				b.Fatal(err)
			}
			day := time.Date(2024, 2, 1, 0, 0, 0, 0, shanghai)
			var n int
			b.ReportAllocs()
			cpu := processCPU(b)
			for b.Loop() {
				recs, err := c.Fetch(context.Background(), day, day)
				if err != nil {
					b.Fatal(err)
				}
				n = len(recs)
			}
			records := float64(b.N * n)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/records, "ns/record")
			b.ReportMetric(float64(processCPU(b)-cpu)/records, "cpu-ns/record")
		})
	}
}

// startPageServer starts this test binary as a page server (pageServerEnv) and returns its URL;
// the server stops when the benchmark ends.
func startPageServer(b *testing.B, mode string) string {
	b.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), pageServerEnv+"="+mode)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = in.Close()
		_ = cmd.Wait()
	})
	url, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		b.Fatalf("reading the page server's URL: %v", err)
	}
	return url[:len(url)-1]
}

// processCPU returns this process's CPU time (user + system) in nanoseconds.
func processCPU(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
