package main

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// The pictures of docs/BENCHMARKS.md (issue 18, goal 3), drawn from the figures this run measured.
var (
	followpubColor = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	peerColor      = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
	goalColor      = color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}
)

// writeImages writes a PNG for each measurement that ran and has a picture into dir, and returns
// the files written.
func (d *driver) writeImages(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("-images: %w", err)
	}
	var files []string
	if len(d.steadyLat) > 0 && len(d.steadyLat[0]) > 0 {
		f := filepath.Join(dir, "steady-latency.png")
		if err := d.latencyPlot(f); err != nil {
			return files, err
		}
		files = append(files, f)
	}
	if len(d.failoverRates) > 0 {
		f := filepath.Join(dir, "failover-timeline.png")
		if err := failoverPlot(f, d.failoverRates); err != nil {
			return files, err
		}
		files = append(files, f)
	}
	if d.peerFigures != nil {
		f := filepath.Join(dir, "peers-records-per-cpu-second.png")
		if err := d.peerFigures.plot(f); err != nil {
			return files, err
		}
		files = append(files, f)
	}
	return files, nil
}

// latencyPlot draws the distribution of followpub's visibility-to-append latency over every
// record of the steady state's runs, with the p99 goal.
func (d *driver) latencyPlot(path string) error {
	lat := d.steadyLat[0]
	p := plot.New()
	p.Title.Text = fmt.Sprintf("followpub steady state: %g records/s, POLL_INTERVAL=%s, %d runs (%d records)", d.opts.steadyRate, steadyInterval, d.opts.runs, len(lat))
	p.X.Label.Text = "visible in the API → appended by Kafka (s)"
	p.Y.Label.Text = "records"
	h, err := plotter.NewHist(plotter.Values(lat), 50)
	if err != nil {
		return fmt.Errorf("latency histogram: %w", err)
	}
	h.FillColor, h.LineStyle.Width = followpubColor, 0
	p.Add(h)
	ymax := 0.0
	for _, b := range h.Bins {
		ymax = max(ymax, b.Weight)
	}
	mark := func(x float64, c color.Color, dashed bool, name string) error {
		l, err := plotter.NewLine(plotter.XYs{{X: x, Y: 0}, {X: x, Y: ymax * 1.05}})
		if err != nil {
			return err
		}
		l.Color, l.Width = c, vg.Points(1.5)
		if dashed {
			l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		}
		p.Add(l)
		p.Legend.Add(name, l)
		return nil
	}
	goal := (steadyInterval + 250e6).Seconds()
	if err := mark(percentile(lat, 50), color.Black, true, fmt.Sprintf("p50 %.2f s", percentile(lat, 50))); err != nil {
		return err
	}
	if err := mark(percentile(lat, 99), color.Black, false, fmt.Sprintf("p99 %.2f s", percentile(lat, 99))); err != nil {
		return err
	}
	if err := mark(goal, goalColor, false, fmt.Sprintf("goal for p99: %.2f s", goal)); err != nil {
		return err
	}
	p.Legend.Top = true
	p.X.Min = 0
	p.X.Max = max(goal, slices.Max(lat)) * 1.05
	return p.Save(8*vg.Inch, 4*vg.Inch, path)
}

// plot draws the peers' records per CPU-second, backfill and stream side by side, each bar the
// median of the runs.
func (f *peerFigures) plot(path string) error {
	panel := func(title string, rs [2][]peerRun) (*plot.Plot, error) {
		p := plot.New()
		p.Title.Text = title
		p.Y.Label.Text = "records per CPU-second (median)"
		p.NominalX(f.names...)
		for tool, c := range []color.Color{followpubColor, peerColor} {
			v := median(mapSamples(rs[tool], peerRun.perCPU))
			vals := plotter.Values{0, 0}
			vals[tool] = v
			b, err := plotter.NewBarChart(vals, vg.Points(60))
			if err != nil {
				return nil, err
			}
			b.Color, b.LineStyle.Width = c, 0
			p.Add(b)
			lab, err := plotter.NewLabels(plotter.XYLabels{XYs: plotter.XYs{{X: float64(tool), Y: v}}, Labels: []string{fmt.Sprintf("%.0f", v)}})
			if err != nil {
				return nil, err
			}
			for i := range lab.TextStyle {
				lab.TextStyle[i].XAlign, lab.TextStyle[i].YAlign = draw.XCenter, draw.YBottom
			}
			p.Add(lab)
		}
		p.Y.Min = 0
		p.Y.Max *= 1.12
		return p, nil
	}
	back, err := panel(fmt.Sprintf("backfill: %d records over %d days", peerRecords, peerDays), f.backfills)
	if err != nil {
		return err
	}
	stream, err := panel(fmt.Sprintf("stream: %g records/s for %s", peerStreamRate, peerStream), f.streams)
	if err != nil {
		return err
	}
	plots := [][]*plot.Plot{{back, stream}}
	img := vgimg.New(9*vg.Inch, 4*vg.Inch)
	dc := draw.New(img)
	t := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Millimeter * 8, PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	cs := plot.Align(plots, t, dc)
	back.Draw(cs[0][0])
	stream.Draw(cs[0][1])
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(out); err != nil {
		_ = out.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return out.Close()
}

// The failover timeline's window around each signal, in seconds.
const (
	rateBefore = 5
	rateAfter  = 12
)

// failoverRate is the records appended by Kafka in each second around one takeover's signal.
type failoverRate struct {
	kind   string    // SIGKILL or SIGTERM
	counts []float64 // counts[i]: records appended in [signal+(i-rateBefore) s, +1 s)
}

// rateAround counts the sorted append times in each second from rateBefore seconds before the
// signal to rateAfter seconds after it.
func rateAround(appends []time.Time, kind string, signal time.Time) failoverRate {
	r := failoverRate{kind: kind, counts: make([]float64, rateBefore+rateAfter)}
	for _, t := range appends {
		i := int(math.Floor(t.Sub(signal).Seconds())) + rateBefore
		if i >= 0 && i < len(r.counts) {
			r.counts[i]++
		}
	}
	return r
}

// failoverPlot draws the records appended per second around each takeover, one line each, SIGKILL
// and SIGTERM apart.
func failoverPlot(path string, rates []failoverRate) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("failover: records appended per second around each signal to the owner (%d takeovers)", len(rates))
	p.X.Label.Text = "seconds from the signal"
	p.Y.Label.Text = "records appended per second"
	legend := map[string]bool{}
	for _, r := range rates {
		xys := make(plotter.XYs, len(r.counts))
		for i, c := range r.counts {
			xys[i] = plotter.XY{X: float64(i-rateBefore) + 0.5, Y: c}
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return err
		}
		l.Width = vg.Points(1)
		l.Color = followpubColor
		if r.kind == "SIGKILL" {
			l.Color = peerColor
		}
		p.Add(l)
		if !legend[r.kind] {
			p.Legend.Add(r.kind, l)
			legend[r.kind] = true
		}
	}
	zero, err := plotter.NewLine(plotter.XYs{{X: 0, Y: 0}, {X: 0, Y: p.Y.Max}})
	if err != nil {
		return err
	}
	zero.Color, zero.Dashes = color.Black, []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(zero)
	p.Legend.Top = true
	p.Y.Min = 0
	return p.Save(8*vg.Inch, 4*vg.Inch, path)
}
