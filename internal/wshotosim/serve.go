package wshotosim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// ListenAndServe serves s on addr (e.g. "127.0.0.1:8090"; port 0 picks one) until ctx ends, after
// printing Describe for the address it listens on to w. It returns nil after a clean shutdown.
func (s *Server) ListenAndServe(ctx context.Context, addr string, w io.Writer) error {
	return listenAndServe(ctx, addr, s, s.Describe, w, nil)
}

// ListenAndServe serves m on addr as Server.ListenAndServe does, printing m's Describe. ready,
// when not nil, is called with the base URL once m listens, before anything is printed (to write
// a tenants file with WriteTenantsFile, say); its error ends the serving.
func (m *Multi) ListenAndServe(ctx context.Context, addr string, w io.Writer, ready func(baseURL string) error) error {
	return listenAndServe(ctx, addr, m, m.Describe, w, ready)
}

func listenAndServe(ctx context.Context, addr string, h http.Handler, describe func(baseURL string) string, w io.Writer, ready func(string) error) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", addr, err)
	}
	base := "http://" + ln.Addr().String()
	if ready != nil {
		if err := ready(base); err != nil {
			_ = ln.Close()
			return err
		}
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	if w != nil {
		fmt.Fprint(w, describe(base))
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close() // hung requests (FaultHang) do not block the exit
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving: %w", err)
	}
	return nil
}
