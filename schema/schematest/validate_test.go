package schematest

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/followpub/followpub/schema"
)

const vendorExample = `{"id":1234567890,"follow_user_id":"user123","content":"系统自动跟进:客户状态变更","target":{"contact_id":"contact123","external_id":"external123","company_id":"company123","chat_id":"chat123","clue_id":"clue123","is_ai":true},"business_type":1,"business_id":"business123","title":"客户状态变更","follow_time":1707292800000,"create_time":1707292800000}`

func TestValidateAccepts(t *testing.T) {
	for name, v := range map[string]string{
		"vendor example":    vendorExample,
		"minimal":           `{"id":1,"follow_time":0}`,
		"id above 2^53":     `{"id":9007199254740993,"follow_time":1707292800000}`,
		"max int64":         `{"id":9223372036854775807,"follow_time":1707292800000}`,
		"unknown fields":    `{"id":1,"follow_time":1,"brand_new":{"deep":[1,2,{"x":null}]},"n":123456789012345678901234567890}`,
		"unknown in target": `{"id":1,"follow_time":1,"target":{"contact_id":"c","group_id":"g"}}`,
		"nulls":             `{"id":1,"follow_time":1,"follow_user_id":null,"content":null,"target":null,"business_type":null,"business_id":null,"title":null,"create_time":null}`,
	} {
		t.Run(name, func(t *testing.T) {
			if err := Validate([]byte(v)); err != nil {
				t.Errorf("Validate(%s) = %v", v, err)
			}
		})
	}
}

func TestValidateRejects(t *testing.T) {
	for name, v := range map[string]string{
		"not an object":         `[1]`,
		"missing id":            `{"follow_time":1}`,
		"missing follow_time":   `{"id":1}`,
		"id as string":          `{"id":"1","follow_time":1}`,
		"id with fraction":      `{"id":9007199254740993.5,"follow_time":1}`,
		"follow_time as string": `{"id":1,"follow_time":"2024-02-07T08:00:00Z"}`,
		"target not object":     `{"id":1,"follow_time":1,"target":"x"}`,
		"is_ai not boolean":     `{"id":1,"follow_time":1,"target":{"is_ai":"yes"}}`,
		"content not string":    `{"id":1,"follow_time":1,"content":5}`,
		"trailing data":         `{"id":1,"follow_time":1}{}`,
		"not JSON":              `{"id":1,`,
		"invalid UTF-8":         "{\"id\":1,\"follow_time\":1,\"c\":\"\xff\"}",
		"id null":               `{"id":null,"follow_time":1}`,
		"follow_time null":      `{"id":1,"follow_time":null}`,
		"follow_time fraction":  `{"id":1,"follow_time":1707292800000.5}`,
		"create_time as string": `{"id":1,"follow_time":1,"create_time":"1707292800000"}`,
		"business_type string":  `{"id":1,"follow_time":1,"business_type":"1"}`,
		"business_id number":    `{"id":1,"follow_time":1,"business_id":5}`,
		"follow_user_id number": `{"id":1,"follow_time":1,"follow_user_id":123}`,
		"title not string":      `{"id":1,"follow_time":1,"title":["x"]}`,
		"target.contact_id int": `{"id":1,"follow_time":1,"target":{"contact_id":7}}`,
		"empty object":          `{}`,
		"null":                  `null`,
	} {
		t.Run(name, func(t *testing.T) {
			if err := Validate([]byte(v)); err == nil {
				t.Errorf("Validate(%q) = nil, want an error", v)
			}
		})
	}
}

func TestValidateRejectsWhiteSpace(t *testing.T) {
	err := Validate([]byte(`{"id":1, "follow_time":1}`))
	if !errors.Is(err, ErrNotCompact) {
		t.Errorf("err = %v, want ErrNotCompact", err)
	}
}

func TestValidateErrorNamesTheField(t *testing.T) {
	err := Validate([]byte(`{"id":"1","follow_time":1}`))
	if err == nil || !strings.Contains(err.Error(), "/id") {
		t.Errorf("err = %v, want it to name /id", err)
	}
}

// recordingTB records what Check reports instead of failing the test.
type recordingTB struct {
	testing.TB
	errors []string
}

func (r *recordingTB) Helper() {}
func (r *recordingTB) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func TestCheck(t *testing.T) {
	Check(t, []byte(vendorExample))

	ok := &recordingTB{}
	Check(ok, []byte(vendorExample))
	if len(ok.errors) != 0 {
		t.Errorf("Check(vendor example) reported %q", ok.errors)
	}

	// Check must fail the test for every value the schema refuses, naming the value and the fault.
	for _, tt := range []struct {
		name, value string
		says        string // in the report
	}{
		{"missing id", `{"follow_time":1707292800000}`, "missing property 'id'"},
		{"id as string", `{"id":"1234567890","follow_time":1707292800000}`, "/id"},
		{"id with fraction", `{"id":1.5,"follow_time":1707292800000}`, "/id"},
		{"follow_time missing", `{"id":1234567890}`, "missing property 'follow_time'"},
		{"follow_time as string", `{"id":1234567890,"follow_time":"2024-02-07T08:00:00Z"}`, "/follow_time"},
		{"target not an object", `{"id":1,"follow_time":1,"target":[]}`, "/target"},
		{"is_ai not boolean", `{"id":1,"follow_time":1,"target":{"is_ai":1}}`, "/target/is_ai"},
		{"not compact", `{"id":1, "follow_time":1}`, ErrNotCompact.Error()},
		{"not JSON", `{"id":1`, "not JSON"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := &recordingTB{}
			Check(r, []byte(tt.value))
			if len(r.errors) != 1 {
				t.Fatalf("Check(%s) reported %d errors %q; want 1", tt.value, len(r.errors), r.errors)
			}
			if !strings.Contains(r.errors[0], tt.value) || !strings.Contains(r.errors[0], tt.says) {
				t.Errorf("Check(%s) reported %q; want the value and %q in it", tt.value, r.errors[0], tt.says)
			}
		})
	}
}

// TestReadmeExample keeps the example message of schema/README.md true: its value validates, and
// its key and headers are what AppendHeaders produces for it.
func TestReadmeExample(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	block := strings.SplitN(string(b), "```", 3)
	if len(block) < 3 {
		t.Fatal("README.md has no example block")
	}
	headers := map[string]string{}
	var key, value string
	for _, line := range strings.Split(block[1], "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "{"):
			value = line
		case strings.HasPrefix(line, "key "):
			key = strings.TrimSpace(strings.TrimPrefix(line, "key "))
		case strings.HasPrefix(line, "ce_") || strings.HasPrefix(line, "content-type:"):
			name, v, _ := strings.Cut(line, ":")
			headers[name] = strings.TrimSpace(v)
		}
	}
	Check(t, []byte(value))
	r, err := schema.ParseRecord([]byte(value))
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Key()) != key {
		t.Errorf("README key %q, record key %q", key, r.Key())
	}
	hs := schema.AppendHeaders(nil, r, schema.DefaultSource, schema.DefaultTenant)
	if len(headers) != len(hs) {
		t.Errorf("README shows %d headers, AppendHeaders makes %d", len(headers), len(hs))
	}
	for _, h := range hs {
		if headers[h.Key] != string(h.Value) {
			t.Errorf("README header %s = %q, AppendHeaders: %q", h.Key, headers[h.Key], h.Value)
		}
	}
}
