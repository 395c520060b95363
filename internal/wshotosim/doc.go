// Package wshotosim simulates WeShoto's open API as far as it is documented (the access-token
// endpoint and the follow-up list listForSystem), for `followpub sim`, the demo, tests and
// benchmarks, and can be told to misbehave.
//
// What it does:
//
//   - Generates deterministic records from a seed: Chinese text, every documented field, a nested
//     `target` with `is_ai`, some ids above 2^53 and fields the vendor page does not know
//     (`ext_score` with a trailing zero, a nested `ext` object with an exponent), and records at
//     23:59:59.999 and 00:00:00.000 in the API's zone.
//   - Makes new records visible over time at a given rate, some of them late (a follow_time older
//     than records already visible), and can insert records between page requests.
//   - Filters by date in the API's zone, both ends inclusive, and by every documented filter; orders
//     newest first, oldest first or shuffled (a stable pseudo-random order); pages by offset.
//   - Validates requests like a strict server: POST with a JSON body, no unknown fields,
//     current_index ≥ 1, page_size 1–100, dates as yyyy-MM-dd; answers a non-zero code otherwise.
//   - Issues tokens that expire, and can expire them early.
//   - Injects faults on request: HTTP 500 and 429, malformed JSON, `code` 3, invalid-token codes,
//     hangs past the client's timeout, and latency.
//   - Counts requests by endpoint and faults by kind.
//   - Serves many tenants at once (Multi): each tenant is a Server of its own, with its own
//     credentials, data (seeded from its id, with ids no other tenant has), arrivals and faults,
//     which can be changed at run time, credentials revoked included; requests are routed by app
//     id, token or the path /tenants/ID.
//
// Records are kept sorted by follow_time with their JSON rendered once, and a date range is found
// by binary search, so 200,000 records are served quickly. A Server is safe for concurrent use.
package wshotosim
