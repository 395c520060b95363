package faults

import (
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// resetProxy is a loopback TCP proxy that resets some connections in the middle of a response:
// each new connection is, with probability p, given a random budget of response bytes (below
// 60 kB) after which both sides are closed with an RST (SO_LINGER 0), as a middlebox or a
// crashing server would. Until one connection has been reset, every new one gets a small budget
// (1–3 kB, less than one answer of a page), so that every run resets at least one connection
// mid-response.
type resetProxy struct {
	ln     net.Listener
	target string

	mu  sync.Mutex
	rng *rand.Rand
	p   float64 // guarded by mu

	conns  atomic.Int64
	resets atomic.Int64
	wg     sync.WaitGroup
}

// newResetProxy proxies to the host:port of targetURL and returns the proxy; URL gives its address
// in the same form.
func newResetProxy(t testing.TB, targetURL string, p float64) *resetProxy {
	t.Helper()
	u, err := url.Parse(targetURL)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("reset proxy %s → %s: p=%v, seed %d", ln.Addr(), u.Host, p, seed)
	rp := &resetProxy{ln: ln, target: u.Host, rng: rand.New(rand.NewPCG(seed, 13)), p: p}
	rp.wg.Add(1)
	go rp.serve()
	t.Cleanup(func() {
		_ = ln.Close()
		rp.wg.Wait()
	})
	return rp
}

// URL is the proxy's base URL.
func (rp *resetProxy) URL() string { return "http://" + rp.ln.Addr().String() }

func (rp *resetProxy) serve() {
	defer rp.wg.Done()
	for {
		c, err := rp.ln.Accept()
		if err != nil {
			return
		}
		rp.conns.Add(1)
		rp.mu.Lock()
		cut := int64(-1)
		switch {
		case rp.resets.Load() == 0 && rp.p > 0:
			cut = 1000 + rp.rng.Int64N(2000)
		case rp.rng.Float64() < rp.p:
			cut = rp.rng.Int64N(60000)
		}
		rp.mu.Unlock()
		rp.wg.Add(1)
		go func() {
			defer rp.wg.Done()
			rp.handle(c.(*net.TCPConn), cut)
		}()
	}
}

func (rp *resetProxy) handle(c *net.TCPConn, cut int64) {
	s, err := net.Dial("tcp", rp.target)
	if err != nil {
		_ = c.Close()
		return
	}
	defer s.Close()
	defer c.Close()
	go func() {
		_, _ = io.Copy(s, c)
		_ = s.(*net.TCPConn).CloseWrite()
	}()
	if cut < 0 {
		_, _ = io.Copy(c, s)
		return
	}
	if _, err := io.CopyN(c, s, cut); err != nil {
		return // the connection ended before its budget
	}
	_ = c.SetLinger(0)
	_ = s.(*net.TCPConn).SetLinger(0)
	rp.resets.Add(1)
}
