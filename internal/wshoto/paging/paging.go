package paging

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/followpub/followpub/schema"
)

// ErrInconsistentPages is wrapped by the error Fetch returns when every read of a window saw a page
// set that changed while it was read (a total that moved, a short page, ids that do not add up to
// the total). Reading again later usually succeeds.
var ErrInconsistentPages = errors.New("inconsistent page set")

// Page is one page of a list answer.
type Page struct {
	// Total is the number of records the query matches across all pages, as this page reported it.
	Total int64
	// Records are the page's records in the order the API sent them.
	Records []schema.Record
}

// PageReader reads one page of a list paged by offset.
type PageReader interface {
	// ReadPage returns page index (from 1) of size records of the window from..to (calendar days,
	// both inclusive). An error means the page could not be read (after the reader's own
	// retries); it ends the Fetch. ReadPage must be safe for concurrent use.
	ReadPage(ctx context.Context, from, to time.Time, index, size int) (Page, error)
}

// Config is a Pager's settings.
type Config struct {
	// PageSize is the page size asked of the reader. Required.
	PageSize int
	// Concurrency bounds the pages in flight at once. Default (0): 1.
	Concurrency int
	// MaxReads bounds the reads of one window before Fetch gives up with ErrInconsistentPages.
	// Default (0): 1.
	MaxReads int
	// Location is the zone in which days are named in errors and logs. Default (nil): UTC.
	Location *time.Location
	// Logger receives debug lines about re-reads. Default (nil): silent.
	Logger *slog.Logger
}

// Pager reads whole windows through a PageReader and accepts only consistent page sets. It is
// safe for concurrent use when its reader is.
type Pager struct {
	r   PageReader
	cfg Config
	log *slog.Logger
}

// New returns a pager over r after filling cfg's defaults and validating it.
func New(r PageReader, cfg Config) (*Pager, error) {
	if r == nil {
		return nil, errors.New("paging: no page reader")
	}
	if cfg.PageSize < 1 {
		return nil, fmt.Errorf("paging: PageSize %d: must be at least 1", cfg.PageSize)
	}
	if cfg.Concurrency < 0 || cfg.MaxReads < 0 {
		return nil, fmt.Errorf("paging: Concurrency %d and MaxReads %d must not be negative", cfg.Concurrency, cfg.MaxReads)
	}
	cfg.Concurrency = max(cfg.Concurrency, 1)
	cfg.MaxReads = max(cfg.MaxReads, 1)
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Pager{r: r, cfg: cfg, log: log}, nil
}

// read reads page idx.
func (pg *Pager) read(ctx context.Context, from, to time.Time, idx int) (Page, error) {
	return pg.r.ReadPage(ctx, from, to, idx, pg.cfg.PageSize)
}

// day names t's day in errors and logs.
func (pg *Pager) day(t time.Time) string { return t.In(pg.cfg.Location).Format(time.DateOnly) }

// maxExtensions bounds how often one read of a window follows a growing total to further pages.
const maxExtensions = 8

// Fetch returns every record of the window from..to (calendar days, both inclusive), each id
// once, in no particular order.
//
// The API pages by offset in an undocumented order, so records inserted or removed while the pages
// are read shift them. Fetch reads the first page, then the others concurrently
// (Config.Concurrency at once), following a total that grows to the pages it adds. It accepts
// what it read only when the ids add up:
//
//   - a read is consistent by itself when every page reported the same total, every page held
//     what that total implies, and the distinct ids equal the total;
//   - while records are only added (no total ever falls), every record seen in this call is still
//     in the API, so when the distinct ids seen equal the largest total reported — the newest —
//     they are exactly what the API holds. Under steady arrivals no single read sees a still page
//     set, so after such a read Fetch reads the two ends again (page 1 and the pages past the old
//     last one, where new records land in a newest-first or oldest-first order) and checks again.
//     A total counts as fallen when a page reports less than an answer received before the page
//     was asked for, and possibly fallen when pages in flight together disagree, the larger total
//     perhaps served first (see answerLog); either way the union starts over, and the window is
//     read page by page from then on (one page in flight orders every answer).
//
// Otherwise Fetch reads the window again, up to Config.MaxReads times, then returns an error
// wrapping ErrInconsistentPages. A nil error therefore means every record present in the API for
// the whole call is in the result — with one exception no count can reveal: a record removed and
// another added between the same two page answers leave every total as it was.
func (pg *Pager) Fetch(ctx context.Context, from, to time.Time) ([]schema.Record, error) {
	if to.Before(from) {
		return nil, fmt.Errorf("fetching %s..%s: the window ends before it starts", pg.day(from), pg.day(to))
	}
	g := growing{union: map[int64]schema.Record{}}
	var (
		reason  string
		inOrder bool // read the next time page by page, in order: the window grows too fast
	)
	for read := 1; read <= pg.cfg.MaxReads; read++ {
		var w window
		var err error
		if inOrder {
			w, err = pg.readInOrder(ctx, from, to)
		} else {
			w, err = pg.readWindow(ctx, from, to)
		}
		if err != nil {
			return nil, fmt.Errorf("fetching %s..%s: %w", pg.day(from), pg.day(to), err)
		}
		if w.why == "" {
			pg.log.Debug("window read", "from", pg.day(from), "to", pg.day(to), "records", len(w.recs), "reads", read)
			return w.recs, nil
		}
		reason = w.why
		gone := w.fell || w.unordered
		if gone || g.fell {
			// Records may have gone away: what this call saw so far proves nothing. The union
			// starts over with the next read that shows none going away.
			g = growing{union: map[int64]schema.Record{}}
		}
		if !gone {
			g.add(nil, w.firstTotal, false)
			g.add(w.recs, w.maxTotal, false)
			for confirm := 0; confirm < confirmations && w.grew && !g.fell && !g.complete(); confirm++ {
				if err := pg.readEnds(ctx, from, to, &g, confirm); err != nil {
					return nil, fmt.Errorf("fetching %s..%s: %w", pg.day(from), pg.day(to), err)
				}
			}
			if !g.fell && g.complete() {
				pg.log.Debug("window read while records arrived", "from", pg.day(from), "to", pg.day(to), "records", len(g.union), "reads", read)
				return g.records(), nil
			}
		}
		// A window that grows, or whose concurrent pages cannot be ordered, is read page by page
		// from now on: one page in flight orders every answer, so no read is unordered again.
		inOrder = inOrder || w.grew || w.unordered
		pg.log.Debug("page set changed while it was read; reading again",
			"from", pg.day(from), "to", pg.day(to), "read", read, "reason", w.why, "in_order", inOrder)
	}
	return nil, fmt.Errorf("fetching %s..%s: %w after %d reads: %s",
		pg.day(from), pg.day(to), ErrInconsistentPages, pg.cfg.MaxReads, reason)
}

// confirmations bounds the re-reads of a window's ends after one read of a growing window, and
// maxEndPages the pages read from each end.
const (
	confirmations = 3
	maxEndPages   = 4
)

// growing gathers what the reads of one Fetch saw, for a window whose records are only added.
type growing struct {
	union    map[int64]schema.Record // every record seen in this call
	minTotal int64                   // the smallest total reported: how many records there were
	maxTotal int64                   // the largest total reported: the newest, while nothing goes away
	fell     bool                    // a total fell: records went away, and the union proves nothing
}

func (g *growing) add(recs []schema.Record, total int64, fell bool) {
	for _, r := range recs {
		g.union[r.ID] = r
	}
	if g.minTotal == 0 || total < g.minTotal {
		g.minTotal = total
	}
	// Every read here began after the previous one ended: a total below one seen before means
	// records went away in between.
	g.fell = g.fell || fell || total < g.maxTotal
	g.maxTotal = max(g.maxTotal, total)
}

// complete reports whether the union holds as many records as the newest total: then, as no record
// went away, it holds every record the API has.
func (g *growing) complete() bool { return int64(len(g.union)) == g.maxTotal }

func (g *growing) records() []schema.Record {
	out := make([]schema.Record, 0, len(g.union))
	for _, r := range g.union {
		out = append(out, r)
	}
	return out
}

// readEnds reads the two ends of the window again, adding what it sees to g: from page 1 forward,
// and from the last page backward, each until a page holds nothing new (new records land at one
// end in a newest-first or an oldest-first order). Which end is read last alternates with round,
// so that either order settles.
func (pg *Pager) readEnds(ctx context.Context, from, to time.Time, g *growing, round int) error {
	size := int64(pg.cfg.PageSize)
	// New records fill at most this many pages at one end, plus the page they spill into; a
	// growth of more than a few pages is left to the in-order read.
	reach := min((g.maxTotal-g.minTotal+size-1)/size+1, maxEndPages)
	walk := func(forward bool) error {
		pages := (g.maxTotal + size - 1) / size
		for i := int64(0); i < min(pages, reach); i++ {
			idx := i + 1
			if !forward {
				idx = pages - i
			}
			p, err := pg.read(ctx, from, to, int(idx))
			if err != nil {
				return err
			}
			fresh := 0
			for _, r := range p.Records {
				if _, ok := g.union[r.ID]; !ok {
					fresh++
				}
			}
			g.add(p.Records, p.Total, p.Total < g.maxTotal)
			if fresh == 0 {
				return nil
			}
		}
		return nil
	}
	ends := []bool{true, false}
	if round%2 == 1 {
		ends = []bool{false, true}
	}
	for _, forward := range ends {
		if err := walk(forward); err != nil {
			return err
		}
	}
	return nil
}

// readInOrder reads the window one page at a time, in order, following a growing total. Under
// arrivals it is the read that settles: while no total falls (nothing goes away) and fewer than a
// page of records arrive between two consecutive page reads, a record present from the first page
// to the last cannot move past the page being read — its position grows by less than a page per
// page read while the reading advances a page, so the reading meets it. The read is then
// accepted (why is empty) even though the total grew. Otherwise why says what broke the argument.
func (pg *Pager) readInOrder(ctx context.Context, from, to time.Time) (window, error) {
	size := int64(pg.cfg.PageSize)
	var (
		w     window
		pages []Page
		prev  int64
		seen  = map[int64]int64{}
		burst string // why the in-order argument failed, though the read goes on
		limit int64  // the most pages this read reads
	)
	for idx := int64(1); ; idx++ {
		p, err := pg.read(ctx, from, to, int(idx))
		if err != nil {
			return window{}, err
		}
		if idx == 1 {
			w.firstTotal, prev = p.Total, p.Total
			limit = 2*((p.Total+size-1)/size) + maxExtensions
		}
		pages = append(pages, p)
		switch {
		case p.Total < prev:
			w.fell = true
			w.why = fmt.Sprintf("total fell from %d to %d at page %d", prev, p.Total, idx)
		case p.Total-prev > size:
			// A record may have moved past the page being read, but every record seen is still
			// there: read on to the last page, so that the read adds the whole window to the union.
			if burst == "" {
				burst = fmt.Sprintf("%d records arrived between pages %d and %d, more than a page", p.Total-prev, idx-1, idx)
			}
		default:
			if w.why = checkPage(idx, p, size); w.why == "" {
				w.why = repeats(idx, 1, p, seen)
			}
		}
		w.maxTotal = max(w.maxTotal, p.Total)
		prev = p.Total
		if w.why != "" || idx >= (p.Total+size-1)/size {
			break
		}
		if idx >= limit {
			w.why = fmt.Sprintf("the window grew faster than it was read (%d pages read page by page)", idx)
			break
		}
	}
	if w.why == "" {
		w.why = burst
	}
	// Only totals that grew, one page in flight at a time: every record seen is still there, so
	// even a read that failed (more than a page arrived between two pages) adds to the union.
	w.grew = !w.fell && w.maxTotal != w.firstTotal
	w.recs = distinct(pages, w.maxTotal, -1)
	if w.why == "" && int64(len(w.recs)) < w.firstTotal {
		w.why = fmt.Sprintf("%d distinct ids but %d records at the start", len(w.recs), w.firstTotal)
	}
	return w, nil
}

// distinct returns the records of pages, each id once. ids is the number of distinct ids in pages
// when the caller counted them, else -1: as many as there are records, no record repeats.
func distinct(pages []Page, hint int64, ids int) []schema.Record {
	if n := records(pages); ids == n {
		out := make([]schema.Record, 0, n)
		for _, p := range pages {
			out = append(out, p.Records...)
		}
		return out
	}
	hint = min(hint, 1<<20)
	out := make([]schema.Record, 0, hint)
	seen := make(map[int64]struct{}, hint)
	for _, p := range pages {
		for _, r := range p.Records {
			if _, dup := seen[r.ID]; dup {
				continue
			}
			seen[r.ID] = struct{}{}
			out = append(out, r)
		}
	}
	return out
}

// records counts the records of pages.
func records(pages []Page) int {
	n := 0
	for _, p := range pages {
		n += len(p.Records)
	}
	return n
}

// window is one read of every page of a window.
type window struct {
	recs       []schema.Record // the distinct records seen
	why        string          // empty when the read is consistent by itself; else what changed
	firstTotal int64           // the total page 1 reported
	maxTotal   int64           // the largest total a page reported
	fell       bool            // a total fell (see answerLog.falls): records went away
	unordered  bool            // a total may have fallen (see answerLog.falls): records may have gone away
	grew       bool            // the only inconsistency is a total that grew: records arrived
}

// readWindow reads every page of the window once, following a growing total to more pages.
// err is a failure to read; an inconsistent page set is reported in window.why.
func (pg *Pager) readWindow(ctx context.Context, from, to time.Time) (window, error) {
	first, err := pg.read(ctx, from, to, 1)
	if err != nil {
		return window{}, err
	}
	size := int64(pg.cfg.PageSize)
	w := window{firstTotal: first.Total, maxTotal: first.Total}
	pages := []Page{first}
	note := func(why string) {
		if w.why == "" {
			w.why = why
		}
	}
	if why := checkPage(1, first, size); why != "" {
		note(why)
	}
	// seen holds every id read, for repeats; while no page read was left out of pages, its size is
	// the number of distinct ids in pages.
	seen := make(map[int64]int64, min(first.Total, 1<<20))
	for _, r := range first.Records {
		seen[r.ID] = 1
	}
	seenIsPages := true
	read, lastRound := int64(1), int64(0)
	// changed: some page reported a total other than page 1's. A total that fell and rose back to
	// page 1's leaves maxTotal equal to it, yet offsets shifted in between (records went away and
	// others arrived): the distinct ids can then add up to the total while a record was skipped.
	changed := false
	// Page 1 was asked for and answered before any other page.
	answers := answerLog{clock: 2, answers: []answer{{asked: 1, answered: 2, total: first.Total}}}
	for ext := 0; ; ext++ {
		want := (w.maxTotal + size - 1) / size
		if want <= read || w.why != "" {
			break
		}
		// Each extension must be smaller than the one before: otherwise records arrive faster
		// than pages are read, and following the total would never end.
		if ext == maxExtensions || (ext > 0 && want-read >= lastRound) {
			note(fmt.Sprintf("total changed from %d to %d and kept growing as fast as the pages were read", first.Total, w.maxTotal))
			break
		}
		lastRound = want - read
		rest, why, err := pg.readPages(ctx, from, to, read+1, want, size, &answers, seen)
		if err != nil {
			return window{}, err
		}
		seenIsPages = seenIsPages && why == ""
		pages = append(pages, rest...)
		read = want
		for _, p := range rest {
			changed = changed || p.Total != first.Total
			w.maxTotal = max(w.maxTotal, p.Total)
		}
		if why != "" {
			note(why)
		}
	}
	w.fell, w.unordered = answers.falls()
	if changed && w.why == "" {
		if w.fell {
			note(fmt.Sprintf("total fell below %d while the pages were read", first.Total))
		} else {
			note(fmt.Sprintf("total changed from %d to %d while the pages were read", first.Total, w.maxTotal))
		}
		w.grew = !w.fell
	}

	ids := -1
	if seenIsPages {
		ids = len(seen)
	}
	w.recs = distinct(pages, w.maxTotal, ids)
	if w.why == "" && int64(len(w.recs)) != w.maxTotal {
		note(fmt.Sprintf("%d distinct ids but total %d", len(w.recs), w.maxTotal))
	}
	return w, nil
}

// answerLog records when each page of one read was asked for and when its answer arrived, on one
// clock, with the total it reported. An answer that arrived before another page was asked for was
// served before that page; answers in flight together may have been served in either order.
// It is not safe for concurrent use (readPages calls it under its lock).
type answerLog struct {
	clock   int64
	answers []answer
}

type answer struct{ asked, answered, total int64 }

// tick advances the clock and returns it: call it when a page is asked for.
func (l *answerLog) tick() int64 {
	l.clock++
	return l.clock
}

// add records an answer to the page asked for at asked, arriving now.
func (l *answerLog) add(asked, total int64) {
	l.answers = append(l.answers, answer{asked: asked, answered: l.tick(), total: total})
}

// falls reports whether the totals fell while the pages were read. fell: some page reported a total
// below that of an answer received before the page was asked for — records went away. unordered:
// not fell, but some page reported a total below that of a page that was not surely served after
// it (their requests were in flight together), so records may have gone away. When neither holds,
// every smaller total was served before every larger one: the totals only grew.
func (l *answerLog) falls() (fell, unordered bool) {
	byAsked := slices.Clone(l.answers)
	slices.SortFunc(byAsked, func(a, b answer) int { return cmp.Compare(a.asked, b.asked) })
	byAnswered := slices.Clone(l.answers)
	slices.SortFunc(byAnswered, func(a, b answer) int { return cmp.Compare(a.answered, b.answered) })
	// prefix maxima of the totals, in the order the pages were asked for and were answered
	askedMax, answeredMax := prefixMax(byAsked), prefixMax(byAnswered)
	for _, b := range l.answers {
		// the largest total answered before b was asked for
		if i, _ := slices.BinarySearchFunc(byAnswered, b.asked, func(a answer, t int64) int { return cmp.Compare(a.answered, t) }); i > 0 && answeredMax[i-1] > b.total {
			fell = true
		}
		// the largest total of a page asked for before b was answered: served before b, or with it
		if i, _ := slices.BinarySearchFunc(byAsked, b.answered, func(a answer, t int64) int { return cmp.Compare(a.asked, t) }); i > 0 && askedMax[i-1] > b.total {
			unordered = true
		}
	}
	return fell, unordered && !fell
}

func prefixMax(as []answer) []int64 {
	out := make([]int64, len(as))
	for i, a := range as {
		out[i] = a.total
		if i > 0 {
			out[i] = max(out[i], out[i-1])
		}
	}
	return out
}

// repeats says so when every id of page idx was already seen on another page from page lo on, then
// records the page's ids in seen (id → the page it was last seen on): records shifted by arrivals
// repeat a few at a page's edge, never a whole page, and an API that answers every page alike would
// otherwise be paged to the end of its total.
func repeats(idx, lo int64, p Page, seen map[int64]int64) string {
	repeated := len(p.Records) > 0
	for _, r := range p.Records {
		if last, ok := seen[r.ID]; !ok || last < lo {
			repeated = false // the first id not seen settles it
			break
		}
	}
	for _, r := range p.Records {
		seen[r.ID] = idx
	}
	if repeated {
		return fmt.Sprintf("page %d repeats records of other pages", idx)
	}
	return ""
}

// checkPage says what is wrong with page index against the total that page itself reports, or "":
// a page must hold exactly what its total implies (full pages, then the rest, then nothing).
func checkPage(index int64, p Page, size int64) string {
	n := int64(len(p.Records))
	want := min(size, max(0, p.Total-(index-1)*size))
	if n != want {
		return fmt.Sprintf("short page %d: %d records, but its total %d implies %d", index, n, p.Total, want)
	}
	return ""
}

// readPages reads pages lo..hi concurrently. It stops handing out pages after the first one that
// contradicts its own total (a short page): the set will be read again anyway. A page whose total
// differs from the others is not a contradiction: the caller follows a growing total.
//
// Every answer is added to answers, for the caller to tell whether a total fell, and every page's
// ids to seen (see repeats; pages before lo do not count as seen).
func (pg *Pager) readPages(ctx context.Context, from, to time.Time, lo, hi, size int64, answers *answerLog, seen map[int64]int64) ([]Page, string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		next     = lo
		stop     bool
		firstErr error
		why      string
		whyPage  int64
		results  = make(map[int64]Page)
		wg       sync.WaitGroup
	)
	workers := min(int64(pg.cfg.Concurrency), hi-lo+1)
	for range workers {
		wg.Go(func() {
			for {
				mu.Lock()
				if stop || next > hi {
					mu.Unlock()
					return
				}
				idx := next
				next++
				asked := answers.tick()
				mu.Unlock()

				p, err := pg.read(ctx, from, to, int(idx))
				mu.Lock()
				if err == nil {
					answers.add(asked, p.Total)
				}
				switch {
				case err != nil:
					if firstErr == nil && !stop {
						firstErr = err
					}
					stop = true
					cancel()
				default:
					results[idx] = p
					w := checkPage(idx, p, size)
					if w == "" {
						w = repeats(idx, lo, p, seen)
					}
					if w != "" {
						if why == "" || idx < whyPage {
							why, whyPage = w, idx
						}
						stop = true
						cancel()
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if why != "" {
		// An inconsistency is the answer even if a later page then failed: read the set again.
		return nil, why, nil
	}
	if firstErr != nil {
		return nil, "", firstErr
	}
	out := make([]Page, 0, len(results))
	for i := lo; i <= hi; i++ {
		out = append(out, results[i])
	}
	return out, "", nil
}

// maxIncrementalPages is how many pages FetchNew reads one after another looking for a day's new
// records before it reads the whole day with Fetch.
const maxIncrementalPages = 3

// FetchNew returns the records of day that isKnown does not know, reading pages from the first,
// one after another, until it found total − known of them, where total is the latest data.total:
// then, records being only ever added, the known ids and the result are every record of the day.
// With the newest records first (the simulator's order, and apparently the vendor's), a poll finds
// them on the first page: one request, however large the day; when more than a page arrived, it
// reads on until it meets known ones, then the first page again for what arrived meanwhile (the
// count, not the pages' order, is what proves the result complete). Otherwise (more unknown records than
// known ones are missing, which means records were removed; or not all found within
// maxIncrementalPages pages) it falls back to Fetch.
func (pg *Pager) FetchNew(ctx context.Context, day time.Time, known int, isKnown func(id int64) bool) ([]schema.Record, error) {
	var found []schema.Record
	ids := map[int64]struct{}{}
	size := int64(pg.cfg.PageSize)
	index := int64(1)
	headNew := false // the first page held only new records: more than a page arrived at the head
	for reads := 1; reads <= maxIncrementalPages; reads++ {
		p, err := pg.read(ctx, day, day, int(index))
		if err != nil {
			return nil, fmt.Errorf("fetching the new records of %s: %w", pg.day(day), err)
		}
		sawKnown := false
		for _, r := range p.Records {
			if isKnown(r.ID) {
				sawKnown = true
				continue
			}
			if _, dup := ids[r.ID]; dup {
				continue
			}
			ids[r.ID] = struct{}{}
			found = append(found, r)
		}
		if reads == 1 {
			headNew = !sawKnown
		}
		want := p.Total - int64(known)
		switch {
		case want < 0 || int64(len(found)) > want:
			pg.log.Debug("records were removed; reading the whole day", "day", pg.day(day), "total", p.Total, "known", known)
			return pg.Fetch(ctx, day, day)
		case int64(len(found)) == want:
			pg.log.Debug("new records read", "day", pg.day(day), "records", len(found), "pages", reads)
			return found, nil
		case sawKnown && index > 1 && headNew:
			// Past the new records into the known ones (newest first: more than a page arrived,
			// after a takeover say); those that arrived while the pages below were read are on
			// the first page again. A late record among the known ones is no reason to go back.
			index = 1
		case index*size >= p.Total:
			reads = maxIncrementalPages // every page read, some still missing
		default:
			index++
		}
	}
	return pg.Fetch(ctx, day, day)
}
