package wshoto

import (
	"encoding/json"
	"errors"
	"fmt"
)

// ErrMalformed is wrapped by every error about a response body that is not the documented shape.
var ErrMalformed = errors.New("malformed response")

// tokenBody is a decoded token answer.
type tokenBody struct {
	code      int64
	msg       string
	subCode   string
	token     string
	expiresIn int64
	createAt  int64
}

// decodeToken decodes a token answer. When code is 0, data.access_token must be a non-empty string
// and expires_in a positive integer; create_at (epoch seconds) is optional.
func decodeToken(body []byte) (tokenBody, error) {
	var v struct {
		Code    *json.Number `json:"code"`
		Msg     string       `json:"msg"`
		SubCode any          `json:"sub_code"`
		Data    *struct {
			AccessToken *string     `json:"access_token"`
			ExpiresIn   json.Number `json:"expires_in"`
			CreateAt    json.Number `json:"create_at"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return tokenBody{}, fmt.Errorf("%w: token answer: %w", ErrMalformed, err)
	}
	if v.Code == nil {
		return tokenBody{}, fmt.Errorf("%w: token answer: no code", ErrMalformed)
	}
	code, err := v.Code.Int64()
	if err != nil {
		return tokenBody{}, fmt.Errorf("%w: token answer: code %s is not an integer", ErrMalformed, v.Code)
	}
	out := tokenBody{code: code, msg: v.Msg}
	if s, ok := v.SubCode.(string); ok {
		out.subCode = s
	}
	if code != 0 {
		return out, nil
	}
	if v.Data == nil || v.Data.AccessToken == nil || *v.Data.AccessToken == "" {
		return tokenBody{}, fmt.Errorf("%w: token answer: code 0 but no data.access_token", ErrMalformed)
	}
	out.token = *v.Data.AccessToken
	if out.expiresIn, err = v.Data.ExpiresIn.Int64(); err != nil || out.expiresIn <= 0 {
		return tokenBody{}, fmt.Errorf("%w: token answer: data.expires_in %q is not a positive integer", ErrMalformed, v.Data.ExpiresIn)
	}
	if v.Data.CreateAt != "" {
		if out.createAt, err = v.Data.CreateAt.Int64(); err != nil {
			return tokenBody{}, fmt.Errorf("%w: token answer: data.create_at %q is not an integer", ErrMalformed, v.Data.CreateAt)
		}
	}
	return out, nil
}
