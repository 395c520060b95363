// Package tenants reads the tenants file (TENANTS_FILE, docs/DESIGN.md §7): YAML, or JSON, listing
// the WeShoto enterprises one deployment polls, each with its own credentials, topic, filters and
// limits.
//
// What it guarantees:
//
//   - Strict decoding: an unknown key, a key given twice or a value of the wrong type is refused
//     with the key and its line.
//   - Credentials by reference only: an entry names an environment variable or a file holding its
//     app secret or access token; an inline secret is refused. Load reads every secret, so the
//     caller never handles a reference, and a secret never appears in an error, in String or in a
//     log value.
//   - Every entry is checked at load and every problem reported at once, each as an *Error naming
//     the tenant (or the entry, when it has no valid id), the field and the line.
//
// Load is safe to call concurrently; the package holds no state.
package tenants
