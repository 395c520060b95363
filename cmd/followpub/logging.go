package main

import (
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lmittmann/tint"
	"golang.org/x/term"
)

// newLogger builds the logger of LOG_FORMAT and LOG_LEVEL: tint's coloured text on a terminal for
// auto, JSON otherwise. Every string and error it writes has the secrets of mask (nil: none)
// masked, as a last guard behind the components' own care.
func newLogger(w io.Writer, format, level string, mask *secretMask) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(level)) // validated with the configuration
	redact := mask.replace
	replace := func(_ []string, a slog.Attr) slog.Attr {
		switch a.Value.Kind() {
		case slog.KindString:
			if s := a.Value.String(); redact(s) != s {
				return slog.String(a.Key, redact(s))
			}
		case slog.KindAny:
			if err, ok := a.Value.Any().(error); ok {
				return slog.String(a.Key, redact(err.Error()))
			}
		}
		return a
	}
	if format == "auto" {
		format = "json"
		if isTerminal(w) {
			format = "tint"
		}
	}
	switch format {
	case "tint":
		return slog.New(tint.NewTextHandler(w, &tint.Options{Level: lvl, TimeFormat: time.TimeOnly, ReplaceAttr: replace}))
	case "text":
		return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lvl, ReplaceAttr: replace}))
	default:
		return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: lvl, ReplaceAttr: replace}))
	}
}

// secretMask masks secrets in strings. A reload adds the secrets of the tenants file it read, and
// keeps the old ones: a line about a removed tenant may still carry its secret.
type secretMask struct {
	mu      sync.Mutex
	secrets []string
	r       atomic.Pointer[strings.Replacer]
}

func newSecretMask(secrets []string) *secretMask {
	m := &secretMask{}
	m.add(secrets)
	return m
}

// add masks secrets from now on, beside those masked already.
func (m *secretMask) add(secrets []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := len(m.secrets)
	for _, s := range secrets {
		if s != "" && !slices.Contains(m.secrets, s) {
			m.secrets = append(m.secrets, s)
		}
	}
	if len(m.secrets) == n {
		return
	}
	// Longest first: the replacer tries the patterns in order, and a secret that starts with
	// another (a rotated token, say) must not be masked only in part.
	slices.SortStableFunc(m.secrets, func(a, b string) int { return len(b) - len(a) })
	var pairs []string
	for _, s := range m.secrets {
		pairs = append(pairs, s, "***")
	}
	m.r.Store(strings.NewReplacer(pairs...))
}

// replace returns s with every secret masked.
func (m *secretMask) replace(s string) string {
	if m == nil {
		return s
	}
	if r := m.r.Load(); r != nil {
		return r.Replace(s)
	}
	return s
}

// isTerminal reports whether w is a terminal (not merely a character device such as /dev/null).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
