package kafkatest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Proxy is a Kafka-aware TCP proxy on 127.0.0.1 in front of one broker, for fault injection
// between a client and the broker. It rewrites the broker addresses of Metadata responses to its
// own, so a client that bootstraps through it stays on it, and on cue it breaks produce requests:
// it cuts one in the middle (the broker never gets it whole, so appends nothing) or drops the
// broker's response to one (the broker appended the records; the client never hears of it). Each
// fault resets the client's connection, as a middlebox or a crashing host would. Its methods are
// safe for concurrent use.
type Proxy struct {
	ln     net.Listener
	target string
	host   string
	port   int32

	mu            sync.Mutex
	cutRequests   int // produce requests still to cut mid-request
	dropResponses int // produce responses still to drop
	open          map[net.Conn]struct{}

	injected atomic.Int64
	produced atomic.Int64
	wg       sync.WaitGroup
}

// StartProxy starts a proxy in front of the broker at target (host:port, loopback) and stops it
// when the test ends.
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	mustLoopback(t, "proxy target", []string{target})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("kafkatest: proxy: %v", err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	p := &Proxy{ln: ln, target: target, host: addr.IP.String(), port: int32(addr.Port), open: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.Close)
	return p
}

// Addr is the proxy's address, to use as the bootstrap server.
func (p *Proxy) Addr() string { return net.JoinHostPort(p.host, strconv.Itoa(int(p.port))) }

// CutProduceRequests makes the proxy cut the next n produce requests in the middle: it forwards
// half of each, then resets both connections.
func (p *Proxy) CutProduceRequests(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cutRequests += n
}

// DropProduceResponses makes the proxy forward the next n produce requests whole but drop the
// broker's response to each, resetting the client's connection instead.
func (p *Proxy) DropProduceResponses(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dropResponses += n
}

// Injected counts the faults injected so far.
func (p *Proxy) Injected() int { return int(p.injected.Load()) }

// Produced counts the produce requests forwarded whole.
func (p *Proxy) Produced() int { return int(p.produced.Load()) }

// Close stops the proxy and closes every connection through it.
func (p *Proxy) Close() {
	_ = p.ln.Close()
	p.mu.Lock()
	for c := range p.open {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.handle(c.(*net.TCPConn))
		}()
	}
}

// request is what the proxy remembers of a request until its response passes.
type request struct {
	key, version int16
	drop         bool
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.open == nil {
		return false
	}
	p.open[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.open, c)
}

func (p *Proxy) handle(c *net.TCPConn) {
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = c.Close()
		return
	}
	if !p.track(c) || !p.track(s) {
		_ = c.Close()
		_ = s.Close()
		return
	}
	defer p.untrack(c)
	defer p.untrack(s)
	reset := func() {
		_ = c.SetLinger(0)
		_ = s.(*net.TCPConn).SetLinger(0)
		_ = c.Close()
		_ = s.Close()
	}
	defer reset()
	var mu sync.Mutex
	pending := map[int32]request{}
	done := make(chan struct{})
	go func() { // client → broker
		defer close(done)
		for {
			frame, err := readFrame(c)
			if err != nil || len(frame) < 8 {
				reset()
				return
			}
			r := request{key: int16(binary.BigEndian.Uint16(frame[0:])), version: int16(binary.BigEndian.Uint16(frame[2:]))}
			corr := int32(binary.BigEndian.Uint32(frame[4:]))
			if r.key == 0 { // Produce
				p.mu.Lock()
				cut := p.cutRequests > 0
				if cut {
					p.cutRequests--
				} else if p.dropResponses > 0 {
					p.dropResponses--
					r.drop = true
				}
				p.mu.Unlock()
				if cut {
					p.injected.Add(1)
					_, _ = s.Write(frameBytes(frame)[:4+len(frame)/2])
					reset()
					return
				}
				p.produced.Add(1)
			}
			mu.Lock()
			pending[corr] = r
			mu.Unlock()
			if _, err := s.Write(frameBytes(frame)); err != nil {
				reset()
				return
			}
		}
	}()
	for { // broker → client
		frame, err := readFrame(s)
		if err != nil || len(frame) < 4 {
			break
		}
		corr := int32(binary.BigEndian.Uint32(frame))
		mu.Lock()
		r, ok := pending[corr]
		delete(pending, corr)
		mu.Unlock()
		if ok && r.drop {
			p.injected.Add(1)
			break
		}
		if ok && r.key == 3 { // Metadata: point the client at the proxy
			if frame, err = p.rewriteMetadata(frame, r.version); err != nil {
				break
			}
		}
		if _, err := c.Write(frameBytes(frame)); err != nil {
			break
		}
	}
	reset()
	<-done
}

// rewriteMetadata replaces every broker's host and port in a Metadata response (frame: the
// correlation id, the header's tags when flexible, the body) with the proxy's.
func (p *Proxy) rewriteMetadata(frame []byte, version int16) ([]byte, error) {
	req := kmsg.NewMetadataRequest()
	req.SetVersion(version)
	head := 4
	if req.IsFlexible() {
		n, err := skipTags(frame[head:])
		if err != nil {
			return nil, err
		}
		head += n
	}
	resp := kmsg.NewPtrMetadataResponse()
	resp.SetVersion(version)
	if err := resp.ReadFrom(frame[head:]); err != nil {
		return nil, fmt.Errorf("decoding a metadata response v%d: %w", version, err)
	}
	for i := range resp.Brokers {
		resp.Brokers[i].Host, resp.Brokers[i].Port = p.host, p.port
	}
	return resp.AppendTo(append([]byte(nil), frame[:head]...)), nil
}

// skipTags returns the length of the tagged fields at the start of b.
func skipTags(b []byte) (int, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return 0, errors.New("bad tagged fields")
	}
	off := k
	for range n {
		_, k1 := binary.Uvarint(b[off:])
		if k1 <= 0 {
			return 0, errors.New("bad tag")
		}
		off += k1
		size, k2 := binary.Uvarint(b[off:])
		if k2 <= 0 || off+k2+int(size) > len(b) {
			return 0, errors.New("bad tag size")
		}
		off += k2 + int(size)
	}
	return off, nil
}

// readFrame reads one size-prefixed Kafka frame and returns its payload.
func readFrame(r io.Reader) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n > 256<<20 {
		return nil, fmt.Errorf("a frame of %d bytes", n)
	}
	buf := make([]byte, n)
	_, err := io.ReadFull(r, buf)
	return buf, err
}

// frameBytes returns payload with its size prefix.
func frameBytes(payload []byte) []byte {
	out := make([]byte, 4+len(payload))
	binary.BigEndian.PutUint32(out, uint32(len(payload)))
	copy(out[4:], payload)
	return out
}
