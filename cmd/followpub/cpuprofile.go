//go:build cpuprofile

package main

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// A build for the benchmark driver's -profile (go build -tags cpuprofile): the process writes a
// CPU profile of its whole life to FOLLOWPUB_BENCH_CPUPROFILE when that is set, and the profile of
// its allocations (pprof's allocs) at exit to FOLLOWPUB_BENCH_ALLOCSPROFILE when that is set.
func init() {
	path := os.Getenv("FOLLOWPUB_BENCH_CPUPROFILE")
	if path == "" {
		return
	}
	f, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "followpub: FOLLOWPUB_BENCH_CPUPROFILE:", err)
		os.Exit(1)
	}
	allocs := os.Getenv("FOLLOWPUB_BENCH_ALLOCSPROFILE")
	stopProfile = func() {
		pprof.StopCPUProfile()
		_ = f.Close()
		if allocs == "" {
			return
		}
		a, err := os.Create(allocs)
		if err == nil {
			err = pprof.Lookup("allocs").WriteTo(a, 0)
			if cerr := a.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "followpub: FOLLOWPUB_BENCH_ALLOCSPROFILE:", err)
		}
	}
}
