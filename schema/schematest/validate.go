// Package schematest validates event values against the embedded JSON Schema of package schema.
// It is meant for tests (of followpub and of its consumers); it keeps the jsonschema dependency
// out of package schema, which stays standard-library only.
//
// Everything here is safe for concurrent use.
package schematest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/followpub/followpub/schema"
)

// ErrNotCompact is returned by Validate for a value that contains insignificant white space.
var ErrNotCompact = errors.New("value is not compact JSON")

var compiled = sync.OnceValues(func() (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema.JSONSchema()))
	if err != nil {
		return nil, fmt.Errorf("decoding schema.json: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource(schema.SchemaID, doc); err != nil {
		return nil, fmt.Errorf("adding schema.json: %w", err)
	}
	s, err := c.Compile(schema.SchemaID)
	if err != nil {
		return nil, fmt.Errorf("compiling schema.json: %w", err)
	}
	return s, nil
})

// Schema returns the compiled JSON Schema of the value.
func Schema() (*jsonschema.Schema, error) { return compiled() }

// Validate reports whether value is a valid event value: UTF-8 JSON, compact, and valid against
// schema.json. Numbers are compared exactly (no float64), so ids above 2^53 are judged correctly.
func Validate(value []byte) error {
	if !utf8.Valid(value) {
		return errors.New("value is not valid UTF-8")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, value); err != nil {
		return fmt.Errorf("value is not JSON: %w", err)
	}
	if !bytes.Equal(buf.Bytes(), value) {
		return ErrNotCompact
	}
	s, err := compiled()
	if err != nil {
		return err
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(value))
	if err != nil {
		return fmt.Errorf("decoding value: %w", err)
	}
	if err := s.Validate(doc); err != nil {
		return fmt.Errorf("validating value against schema.json: %w", err)
	}
	return nil
}

// Check fails t when value is not a valid event value (see Validate).
func Check(t testing.TB, value []byte) {
	t.Helper()
	if err := Validate(value); err != nil {
		t.Errorf("event value %s: %v", value, err)
	}
}
