package wshoto

import (
	"context"
	"fmt"
	"time"

	"github.com/followpub/followpub/internal/wshoto/paging"
	"github.com/followpub/followpub/schema"
)

// ErrInconsistentPages is wrapped by the error Fetch returns when every read of a window saw a page
// set that changed while it was read. Reading again later usually succeeds.
var ErrInconsistentPages = paging.ErrInconsistentPages

// maxPlausibleTotal is the most records a window may hold (the poller asks for one day): a larger
// total is a broken answer, and paging to its end would never finish.
const maxPlausibleTotal = 10_000_000

// Fetch returns every record whose follow_time falls on the days from through to (both inclusive,
// in Config.Location), each id once, in no particular order, from a consistent page set (see
// paging.Pager.Fetch for the checks and what a nil error promises). It implements poller.Source.
func (c *Client) Fetch(ctx context.Context, from, to time.Time) ([]schema.Record, error) {
	return c.pager.Fetch(ctx, from, to)
}

// FetchNew returns the records of day that isKnown does not know, reading only the first pages
// when they hold every new record (see paging.Pager.FetchNew). It implements
// poller.IncrementalSource.
func (c *Client) FetchNew(ctx context.Context, day time.Time, known int, isKnown func(id int64) bool) ([]schema.Record, error) {
	return c.pager.FetchNew(ctx, day, known, isKnown)
}

// listReader is the pager's PageReader: the list call over HTTP, with its retries. It refuses as
// malformed a page that no change of the list explains: more records than were asked for, or a
// total too large (or negative) to page through.
type listReader struct{ c *Client }

func (r listReader) ReadPage(ctx context.Context, from, to time.Time, index, size int) (Page, error) {
	p, err := r.c.listPage(ctx, from, to, index, size)
	switch {
	case err != nil:
		return Page{}, err
	case len(p.Records) > size:
		return Page{}, fmt.Errorf("%w: page %d has %d records, more than page_size %d", ErrMalformed, index, len(p.Records), size)
	case p.Total > maxPlausibleTotal || p.Total < 0:
		return Page{}, fmt.Errorf("%w: a total of %d records for %s..%s is not plausible", ErrMalformed, p.Total, r.c.day(from), r.c.day(to))
	}
	return p, nil
}
