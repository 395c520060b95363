// Package jsonscan decodes the WeShoto list answer with a hand-written scanner, for throughput:
// one pass over the body, no map per record, no allocation per record (a page costs its record
// slice, plus one buffer when records arrive with whitespace to compact). It is kept because the
// measured alternatives (a decoder on encoding/json/jsontext, compared in docs/BENCHMARKS.md) cost
// the client's hot path more than its budget allows.
//
// What it guarantees: ids and times are decoded as int64 and never pass through float64; each
// record keeps its exact JSON, compacted, unknown fields byte for byte, in schema.Record.Raw; a
// body that is not the documented shape is an error that names the problem, never a panic and
// never a silently empty page. The decoder is checked by a fuzz oracle (FuzzDecodeList) and
// differentially against a jsontext decoder held to the same contract.
//
// DecodeList is safe for concurrent use; it keeps nothing between calls.
package jsonscan
