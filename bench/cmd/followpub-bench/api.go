package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/followpub/followpub/internal/wshotosim"
)

// request is one list request the simulator served.
type request struct {
	at    time.Time     // when it arrived
	took  time.Duration // from its arrival to the end of the answer: the API's latency as served
	index int           // current_index
	start string        // follow_time_start
	total int64         // data.total of the answer (-1 when the answer had none)
}

// api is a simulator served on 127.0.0.1 behind a recorder of its list requests.
type api struct {
	sim *wshotosim.Server
	srv *httptest.Server
	url string

	mu   sync.Mutex
	reqs []request
}

// staticToken is the token followpub is given; the simulator always accepts it.
const staticToken = "bench-token"

func startAPI(cfg wshotosim.Config) (*api, error) {
	cfg.StaticToken = staticToken
	sim, err := wshotosim.New(cfg)
	if err != nil {
		return nil, err
	}
	a := &api{sim: sim}
	a.srv = httptest.NewServer(http.HandlerFunc(a.serve)) // 127.0.0.1
	a.url = a.srv.URL
	return a, nil
}

func (a *api) close() { a.srv.Close() }

func (a *api) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != wshotosim.ListPath {
		a.sim.ServeHTTP(w, r)
		return
	}
	at := time.Now()
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	var q struct {
		Index int    `json:"current_index"`
		Start string `json:"follow_time_start"`
	}
	_ = json.Unmarshal(body, &q)
	sw := &sniffer{ResponseWriter: w}
	a.sim.ServeHTTP(sw, r)
	took := time.Since(at)
	a.mu.Lock()
	a.reqs = append(a.reqs, request{at: at, took: took, index: q.Index, start: q.Start, total: sw.total()})
	a.mu.Unlock()
}

// requests returns the list requests served so far and forgets them.
func (a *api) takeRequests() []request {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := a.reqs
	a.reqs = nil
	return out
}

// sniffer keeps the start of an answer, to read data.total from it.
type sniffer struct {
	http.ResponseWriter
	head []byte
}

func (s *sniffer) Write(p []byte) (int, error) {
	if len(s.head) < 256 {
		s.head = append(s.head, p[:min(len(p), 256-len(s.head))]...)
	}
	return s.ResponseWriter.Write(p)
}

func (s *sniffer) total() int64 {
	const key = `"total":`
	i := bytes.Index(s.head, []byte(key))
	if i < 0 {
		return -1
	}
	rest := s.head[i+len(key):]
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	n, err := strconv.ParseInt(string(rest[:j]), 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// served returns the sum of the requests' service times: the time one client with one request in
// flight would wait on the API for them.
func served(reqs []request) time.Duration {
	var sum time.Duration
	for _, r := range reqs {
		sum += r.took
	}
	return sum
}

// maxInWindow returns the largest number of requests that arrived within any window of length w.
func maxInWindow(reqs []request, w time.Duration) int {
	reqs = slices.Clone(reqs)
	slices.SortFunc(reqs, func(a, b request) int { return a.at.Compare(b.at) })
	best, lo := 0, 0
	for hi := range reqs {
		for reqs[hi].at.Sub(reqs[lo].at) >= w {
			lo++
		}
		best = max(best, hi-lo+1)
	}
	return best
}
