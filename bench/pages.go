package bench

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
)

// Pages is an http.RoundTripper that answers each distinct request (method, path and body) the way
// a handler answered it the first time, from memory. A benchmark of the API client over Pages
// measures the client, not the network or the simulator: after a warm-up run the handler is never
// called again. Answers must not depend on anything but the request (a simulator without arrivals,
// inserts or faults). It is safe for concurrent use.
type Pages struct {
	h http.Handler

	mu      sync.RWMutex
	answers map[string]answer
	bufs    sync.Pool
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

// NewPages returns a Pages that asks h for the first answer to each request.
func NewPages(h http.Handler) *Pages {
	return &Pages{h: h, answers: map[string]answer{}}
}

// RoundTrip implements http.RoundTripper.
func (p *Pages) RoundTrip(req *http.Request) (*http.Response, error) {
	buf, _ := p.bufs.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	defer p.bufs.Put(buf)
	buf.Reset()
	buf.WriteString(req.Method)
	buf.WriteByte(' ')
	buf.WriteString(req.URL.Path)
	buf.WriteByte(' ')
	if req.Body != nil {
		if _, err := buf.ReadFrom(req.Body); err != nil {
			return nil, err
		}
		_ = req.Body.Close()
	}
	p.mu.RLock()
	a, ok := p.answers[string(buf.Bytes())]
	p.mu.RUnlock()
	if !ok {
		a = p.ask(req, buf.Bytes())
		p.mu.Lock()
		p.answers[buf.String()] = a
		p.mu.Unlock()
	}
	return &http.Response{
		Status:        strconv.Itoa(a.status) + " " + http.StatusText(a.status),
		StatusCode:    a.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        a.header,
		Body:          io.NopCloser(bytes.NewReader(a.body)),
		ContentLength: int64(len(a.body)),
		Request:       req,
	}, nil
}

// ask has the handler answer req, whose body was key's last part.
func (p *Pages) ask(req *http.Request, key []byte) answer {
	body := key[len(req.Method)+1+len(req.URL.Path)+1:]
	r := req.Clone(req.Context())
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	rec := httptest.NewRecorder()
	p.h.ServeHTTP(rec, r)
	return answer{status: rec.Code, header: rec.Header().Clone(), body: bytes.Clone(rec.Body.Bytes())}
}

// Len returns the number of distinct requests answered so far.
func (p *Pages) Len() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return len(p.answers)
}
