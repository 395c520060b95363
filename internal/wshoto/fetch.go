package wshoto

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/followpub/followpub/schema"
)

// Fetch returns every record whose follow_time falls on the days from through to (both inclusive,
// in Config.Location), each id once, in no particular order. It reads the first page, then the
// others concurrently (Config.Concurrency at once), and accepts the page set only if every page
// reported the same total, every page but the last was full, the last held the rest, and the
// distinct ids add up to the total. Otherwise the set changed while it was read (an insertion
// shifts offset pages), and Fetch reads the window again, up to Config.MaxReads times, then
// returns an error wrapping ErrInconsistentPages. A nil error therefore means that every record
// present in the API for the whole call is in the result. Fetch implements poller.Source.
func (c *Client) Fetch(ctx context.Context, from, to time.Time) ([]schema.Record, error) {
	if to.Before(from) {
		return nil, fmt.Errorf("fetching %s..%s: the window ends before it starts", c.day(from), c.day(to))
	}
	var reason string
	for read := 1; read <= c.cfg.MaxReads; read++ {
		recs, why, err := c.readWindow(ctx, from, to)
		if err != nil {
			return nil, fmt.Errorf("fetching %s..%s: %w", c.day(from), c.day(to), err)
		}
		if why == "" {
			c.log.Debug("window read", "from", c.day(from), "to", c.day(to), "records", len(recs), "reads", read)
			return recs, nil
		}
		reason = why
		c.log.Debug("page set changed while it was read; reading again",
			"from", c.day(from), "to", c.day(to), "read", read, "reason", why)
	}
	return nil, fmt.Errorf("fetching %s..%s: %w after %d reads: %s",
		c.day(from), c.day(to), ErrInconsistentPages, c.cfg.MaxReads, reason)
}

// readWindow reads every page of the window once. why is empty when the page set is consistent,
// otherwise it says what changed; err is a failure to read.
func (c *Client) readWindow(ctx context.Context, from, to time.Time) (recs []schema.Record, why string, err error) {
	first, err := c.ListPage(ctx, from, to, 1)
	if err != nil {
		return nil, "", err
	}
	size := int64(c.cfg.PageSize)
	total := first.Total
	if int64(len(first.Records)) > size {
		return nil, "", fmt.Errorf("%w: page 1 has %d records, more than page_size %d", ErrMalformed, len(first.Records), size)
	}
	pages := (total + size - 1) / size
	if pages == 0 {
		if len(first.Records) > 0 {
			return nil, fmt.Sprintf("page 1 has %d records but total is 0", len(first.Records)), nil
		}
		return nil, "", nil
	}
	if why := checkPage(1, first, total, pages, size); why != "" {
		return nil, why, nil
	}
	results := []Page{first}
	if pages > 1 {
		rest, why, err := c.readPages(ctx, from, to, total, pages)
		if err != nil || why != "" {
			return nil, why, err
		}
		results = append(results, rest...)
	}
	hint := min(total, 1<<20)
	seen := make(map[int64]struct{}, hint)
	recs = make([]schema.Record, 0, hint)
	for _, p := range results {
		for _, r := range p.Records {
			if _, dup := seen[r.ID]; dup {
				continue
			}
			seen[r.ID] = struct{}{}
			recs = append(recs, r)
		}
	}
	if int64(len(recs)) != total {
		return nil, fmt.Sprintf("%d distinct ids but total %d", len(recs), total), nil
	}
	return recs, "", nil
}

// checkPage says what is wrong with page index of a set of pages pages with the given total, or "".
func checkPage(index int64, p Page, total, pages, size int64) string {
	n := int64(len(p.Records))
	switch {
	case p.Total != total:
		return fmt.Sprintf("total changed from %d to %d at page %d", total, p.Total, index)
	case index < pages && n != size:
		return fmt.Sprintf("short page %d of %d: %d records", index, pages, n)
	case index == pages && n != total-(pages-1)*size:
		return fmt.Sprintf("last page %d has %d records, want %d", index, n, total-(pages-1)*size)
	}
	return ""
}

// readPages reads pages 2..pages concurrently. It stops handing out pages after the first one that
// is inconsistent (a short page, a moved total): the set will be read again anyway.
func (c *Client) readPages(ctx context.Context, from, to time.Time, total, pages int64) ([]Page, string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	size := int64(c.cfg.PageSize)
	var (
		mu       sync.Mutex
		next     int64 = 2
		stop     bool
		firstErr error
		why      string
		whyPage  int64
		results  = make(map[int64]Page)
		wg       sync.WaitGroup
	)
	workers := min(int64(c.cfg.Concurrency), pages-1)
	for range workers {
		wg.Go(func() {
			for {
				mu.Lock()
				if stop || next > pages {
					mu.Unlock()
					return
				}
				idx := next
				next++
				mu.Unlock()

				p, err := c.ListPage(ctx, from, to, int(idx))
				mu.Lock()
				switch {
				case err != nil:
					if firstErr == nil && !stop {
						firstErr = err
					}
					stop = true
					cancel()
				default:
					results[idx] = p
					if w := checkPage(idx, p, total, pages, size); w != "" {
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
	for _, p := range results {
		out = append(out, p)
	}
	return out, "", nil
}
