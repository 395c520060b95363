// Package paging is the client's paging policy: it reads a whole window of a list that the API
// pages by offset, through a one-method PageReader, and accepts only a page set that is
// consistent.
//
// What it guarantees: Pager.Fetch returns every record present in the API for the whole call, each
// id once, or an error (wrapping ErrInconsistentPages when every read saw a page set that changed
// while it was read); the one change no count can reveal — a record removed and another added
// between the same two page answers — is documented on Fetch. Pager.FetchNew reads only what a
// day gained, under the premise that records are only ever added, and falls back to Fetch
// otherwise. The checks (totals that moved, short pages, pages that repeat others, distinct ids
// against the total, the order in which concurrent answers were served) are tested against an
// in-memory reader that changes its list between page reads; no HTTP is involved.
//
// A Pager is safe for concurrent use when its PageReader is.
package paging
