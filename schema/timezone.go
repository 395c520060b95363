package schema

import (
	"time"
	// The tz database built into the binary, used when the system has none (a scratch image):
	// with it, APILocation and every FOLLOWPUB_API_TIMEZONE load everywhere, and nothing needs a
	// fallback zone.
	_ "time/tzdata"
)

// APITimeZone is the time zone in which the WeShoto API evaluates its yyyy-MM-dd date filter, and
// so the zone of the days a window is read by, unless configured otherwise (API_TIMEZONE). It is
// the one definition of that default: the API client, the simulator, the poller's tests and the
// command line all take it from here.
const APITimeZone = "Asia/Shanghai"

// apiLocation is loaded once: the embedded tz database always holds APITimeZone.
var apiLocation = func() *time.Location {
	loc, err := time.LoadLocation(APITimeZone)
	if err != nil {
		panic("schema: loading " + APITimeZone + " from the embedded tz database: " + err.Error())
	}
	return loc
}()

// APILocation returns APITimeZone as a *time.Location.
func APILocation() *time.Location { return apiLocation }
