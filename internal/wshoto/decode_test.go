package wshoto

import (
	"errors"
	"strings"
	"testing"
)

func TestDecodeToken(t *testing.T) {
	good := `{"code":0,"msg":"ok","data":{"access_token":"abc","expires_in":7200,"create_at":1707292800}}`
	tb, err := decodeToken([]byte(good))
	if err != nil || tb.token != "abc" || tb.expiresIn != 7200 || tb.createAt != 1707292800 {
		t.Fatalf("decodeToken(good) = %+v, %v", tb, err)
	}
	for _, tt := range []struct{ body, want string }{
		{`{"msg":"ok"}`, "no code"},
		{`{"code":0,"data":{}}`, "no data.access_token"},
		{`{"code":0,"data":{"access_token":"a","expires_in":0}}`, "expires_in"},
		{`{"code":0,"data":{"access_token":"a","expires_in":7200,"create_at":"x"}}`, "token answer"},
		{`<html>`, "token answer"},
	} {
		_, err := decodeToken([]byte(tt.body))
		if err == nil || !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("decodeToken(%s) error %v; want ErrMalformed saying %q", tt.body, err, tt.want)
		}
	}
	tb, err = decodeToken([]byte(`{"code":10002,"msg":"appid或app_secret错误"}`))
	if err != nil || tb.code != 10002 {
		t.Errorf("code answer: %+v, %v", tb, err)
	}
}

func TestReadBodyCap(t *testing.T) {
	if _, err := readBody(strings.NewReader(strings.Repeat("x", 11)), -1, 10); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "10-byte limit") {
		t.Errorf("unknown length over the cap: %v", err)
	}
	if _, err := readBody(strings.NewReader(""), 11, 10); !errors.Is(err, ErrMalformed) {
		t.Errorf("declared length over the cap: %v", err)
	}
	if b, err := readBody(strings.NewReader("0123456789"), 10, 10); err != nil || string(b) != "0123456789" {
		t.Errorf("body at the cap: %q, %v", b, err)
	}
}

func TestReadBodyKeepsEachBody(t *testing.T) {
	// Records keep their page's body until they are published: reading the next body, with or
	// without a length, must not touch it.
	var bodies [][]byte
	for i, length := range []int64{-1, 5000, -1, 0} {
		want := strings.Repeat(string(rune('a'+i)), 5000)
		if length == 0 {
			want = ""
		}
		b, err := readBody(strings.NewReader(want), length, 10_000)
		if err != nil || string(b) != want {
			t.Fatalf("body %d: %d bytes, %v", i, len(b), err)
		}
		bodies = append(bodies, b)
	}
	for i, b := range bodies[:3] {
		if want := strings.Repeat(string(rune('a'+i)), 5000); string(b) != want {
			t.Errorf("body %d changed after the next ones were read", i)
		}
	}
}
