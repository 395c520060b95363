package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// median returns the median of xs (the mean of the two middle values for an even count), NaN for
// none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// percentile returns the p-th percentile (0–100) of xs by the nearest-rank method, NaN for none.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	return s[min(max(rank, 1), len(s))-1]
}

// table is a Markdown table.
type table struct {
	title string
	head  []string
	rows  [][]string
	notes []string
}

func (t *table) add(cells ...any) {
	row := make([]string, len(cells))
	for i, c := range cells {
		row[i] = cell(c)
	}
	t.rows = append(t.rows, row)
}

func (t *table) note(format string, args ...any) {
	t.notes = append(t.notes, fmt.Sprintf(format, args...))
}

func cell(c any) string {
	switch v := c.(type) {
	case string:
		return v
	case float64:
		switch {
		case math.IsNaN(v):
			return "–"
		case math.Abs(v) >= 100:
			return fmt.Sprintf("%.0f", v)
		case math.Abs(v) >= 10:
			return fmt.Sprintf("%.1f", v)
		case math.Abs(v) >= 0.1 || v == 0:
			return fmt.Sprintf("%.2f", v)
		default:
			return fmt.Sprintf("%.3g", v)
		}
	case time.Duration:
		return v.Round(time.Millisecond).String()
	default:
		return fmt.Sprint(v)
	}
}

func (t *table) print(w io.Writer) {
	fmt.Fprintf(w, "\n### %s\n\n", t.title)
	fmt.Fprintf(w, "| %s |\n", strings.Join(t.head, " | "))
	seps := make([]string, len(t.head))
	for i := range seps {
		seps[i] = "---"
	}
	fmt.Fprintf(w, "| %s |\n", strings.Join(seps, " | "))
	for _, r := range t.rows {
		fmt.Fprintf(w, "| %s |\n", strings.Join(r, " | "))
	}
	if len(t.notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range t.notes {
			fmt.Fprintf(w, "%s\n", n)
		}
	}
}

func mib(b float64) float64 { return b / (1 << 20) }

func pct(x float64) string {
	if math.IsNaN(x) {
		return "–"
	}
	return fmt.Sprintf("%.0f%%", 100*x)
}

// runOrder returns the indexes 0..n-1 in the order run (from 1) measures them: as given in odd
// runs, reversed in even ones, so that a drift of the machine's load within a run does not always
// favour the same binary.
func runOrder(n, run int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	if run%2 == 0 {
		slices.Reverse(out)
	}
	return out
}

// mapSamples returns f of each sample, in order.
func mapSamples[S any](ss []S, f func(S) float64) []float64 {
	out := make([]float64, len(ss))
	for i, s := range ss {
		out[i] = f(s)
	}
	return out
}

// ratioCell returns the median of the per-run ratios variant[i] / base[i], then each run's ratio:
// "98% (103%, 98%, 95%)".
func ratioCell(base, variant []float64) string {
	var rs []float64
	var runs []string
	for i := range min(len(base), len(variant)) {
		r := variant[i] / base[i]
		rs = append(rs, r)
		runs = append(runs, pct(r))
	}
	return fmt.Sprintf("%s (%s)", pct(median(rs)), strings.Join(runs, ", "))
}
