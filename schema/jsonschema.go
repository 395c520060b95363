package schema

import _ "embed"

// SchemaID is the $id of the JSON Schema of the value.
const SchemaID = "https://github.com/followpub/followpub/schema/schema.json"

//go:embed schema.json
var schemaJSON string

// JSONSchema returns the JSON Schema (draft 2020-12) of the event value, schema.json. Each call
// returns a new copy.
func JSONSchema() []byte { return []byte(schemaJSON) }
