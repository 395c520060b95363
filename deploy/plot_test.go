package deploy_test

import (
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/followpub/followpub/internal/tooltest"
)

// phase is a stretch of the end-to-end test during which something was broken.
type phase struct {
	name     string
	from, to time.Time
}

// chart is one graph of the picture: a query over the test's span, one line per series.
type chart struct {
	title, expr, legend, unit string
	// timeline draws each series as a row of bars where it has samples (for ALERTS).
	timeline bool
}

// line is one series of a chart, as SVG points.
type line struct {
	Label, Color, Points string
	Bars                 []bar
}

type bar struct{ X, Y, W, H float64 }

type renderedChart struct {
	Title, Unit   string
	Max           string
	Lines         []line
	Bands         []band
	Width, Height int
}

type band struct {
	X, W, LabelY float64
	Label        string
}

var palette = []string{"#1565c0", "#ef6c00", "#6a1b9a", "#00838f", "#5d4037", "#ad1457", "#9e9d24"}

// colors keeps a meaning's colour across charts: green for what went well, red for failures.
var colors = map[string]string{"ok": "#2e7d32", "failed": "#c62828", "http_5xx": "#c62828", "interrupted": "#757575", "auth_error": "#ef6c00"}

// plotRun draws the charts from Prometheus' query_range API over [from, to], with the phases
// shaded, as an HTML page of inline SVG, and has headless Chromium take its picture at path.
func plotRun(t *testing.T, p *prom, charts []chart, phases []phase, from, to time.Time, path string) {
	t.Helper()
	const w, h = 900, 150
	span := to.Sub(from).Seconds()
	var rendered []renderedChart
	for _, c := range charts {
		var d struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Values [][2]any          `json:"values"`
			} `json:"result"`
		}
		q := url.Values{"query": {c.expr}, "start": {fmt.Sprint(from.Unix())}, "end": {fmt.Sprint(to.Unix())}, "step": {"1"}}
		if err := p.api("/api/v1/query_range", q, &d); err != nil {
			t.Fatalf("plot %q: %v", c.title, err)
		}
		maxV := 0.0
		type pt struct{ x, y float64 }
		series := map[string][]pt{}
		var labels []string
		for _, r := range d.Result {
			label := r.Metric[c.legend]
			if label == "" {
				label = c.title
			}
			labels = append(labels, label)
			for _, v := range r.Values {
				ts, _ := v[0].(float64)
				y, err := strconv.ParseFloat(fmt.Sprint(v[1]), 64)
				if err != nil || math.IsNaN(y) || math.IsInf(y, 0) {
					continue
				}
				series[label] = append(series[label], pt{(ts - float64(from.Unix())) / span * w, y})
				maxV = max(maxV, y)
			}
		}
		slices.Sort(labels)
		rc := renderedChart{Title: c.title, Unit: c.unit, Width: w, Height: h, Max: strconv.FormatFloat(maxV, 'g', 3, 64)}
		for i, label := range labels {
			color, ok := colors[label]
			if !ok {
				color = palette[i%len(palette)]
			}
			if c.timeline {
				rowH := float64(h) / float64(len(labels))
				ln := line{Label: label, Color: color}
				for _, q := range series[label] {
					ln.Bars = append(ln.Bars, bar{X: q.x, Y: float64(i)*rowH + 2, W: float64(w)/span + 0.5, H: rowH - 4})
				}
				rc.Lines = append(rc.Lines, ln)
				continue
			}
			var b strings.Builder
			for _, q := range series[label] {
				y := float64(h)
				if maxV > 0 {
					y = h - q.y/maxV*(h-10)
				}
				fmt.Fprintf(&b, "%.1f,%.1f ", q.x, y)
			}
			rc.Lines = append(rc.Lines, line{Label: label, Color: color, Points: b.String()})
		}
		for i, ph := range phases {
			x := ph.from.Sub(from).Seconds() / span * w
			// Alternate rows, so that the labels of phases close together do not overlap.
			rc.Bands = append(rc.Bands, band{X: x, W: max(2, ph.to.Sub(ph.from).Seconds()/span*w), LabelY: float64(12 + 13*(i%2)), Label: ph.name})
		}
		rendered = append(rendered, rc)
	}
	page := template.Must(template.New("plot").Parse(`<!doctype html><html><head><meta charset="utf-8"><style>
body { font: 13px system-ui, sans-serif; margin: 12px; color: #222; }
h2 { font-size: 14px; margin: 10px 0 2px; } .legend span { margin-right: 14px; } svg { background: #fafafa; border: 1px solid #ddd; }
</style></head><body>
<div>followpub under a real Prometheus (deploy/prometheus_test.go): {{len .}} graphs from its query API; shaded: what the test broke</div>
{{range .}}<h2>{{.Title}} <small style="color:#777">(max {{.Max}} {{.Unit}})</small></h2>
<div class="legend">{{range .Lines}}<span style="color:{{.Color}}">■ {{.Label}}</span>{{end}}</div>
<svg width="{{.Width}}" height="{{.Height}}" viewBox="0 0 {{.Width}} {{.Height}}">
{{range .Bands}}<rect x="{{.X}}" y="0" width="{{.W}}" height="150" fill="#ffcdd2" opacity="0.6"/><text x="{{.X}}" y="{{.LabelY}}" font-size="11" fill="#b71c1c">{{.Label}}</text>{{end}}
{{range .Lines}}{{$c := .Color}}{{if .Bars}}{{range .Bars}}<rect x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="{{.H}}" fill="{{$c}}"/>{{end}}{{else}}<polyline fill="none" stroke="{{.Color}}" stroke-width="1.6" points="{{.Points}}"/>{{end}}{{end}}
</svg>{{end}}
</body></html>`))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := page.Execute(w, rendered); err != nil {
			t.Errorf("rendering the plot: %v", err)
		}
	}))
	defer srv.Close()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	tooltest.Screenshot(t, srv.URL+"/", path, w+40, 60+len(rendered)*200)
	t.Logf("graphs of the run: %s", path)
}
