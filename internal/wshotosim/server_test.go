package wshotosim

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/followpub/followpub/internal/clocktest"
	"github.com/followpub/followpub/schema"
)

var shanghaiLoc = schema.APILocation()

// testNow is 2024-02-07 12:00 in Shanghai.
var testNow = time.Date(2024, 2, 7, 12, 0, 0, 0, shanghaiLoc)

// start serves a simulator with a fake clock at testNow (unless cfg has a clock).
func start(t testing.TB, cfg Config) (*Server, *httptest.Server, *clocktest.Clock) {
	t.Helper()
	clk := clocktest.New(testNow)
	if cfg.Clock == nil {
		cfg.Clock = clk.Now
	}
	if cfg.StaticToken == "" {
		cfg.StaticToken = "static"
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv, clk
}

// answer is a decoded answer.
type answer struct {
	status  int
	Code    int64  `json:"code"`
	Msg     string `json:"msg"`
	SubCode string `json:"sub_code"`
	Data    struct {
		Total   int64             `json:"total"`
		Records []json.RawMessage `json:"records"`
	} `json:"data"`
	raw []byte
}

func list(t testing.TB, srv *httptest.Server, token, body string) answer {
	t.Helper()
	u := srv.URL + ListPath
	if token != "" {
		u += "?access_token=" + token
	}
	resp, err := http.Post(u, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, raw: raw}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(raw, &a); err != nil {
			t.Fatalf("answer is not JSON: %v: %s", err, raw)
		}
	}
	return a
}

func page(day1, day2 string, index, size int) string {
	return fmt.Sprintf(`{"follow_time_start":%q,"follow_time_end":%q,"current_index":%d,"page_size":%d}`, day1, day2, index, size)
}

// ids returns the ids of raw records, as written.
func ids(t testing.TB, recs []json.RawMessage) []int64 {
	t.Helper()
	out := make([]int64, len(recs))
	for i, r := range recs {
		var v struct {
			ID json.Number `json:"id"`
		}
		if err := json.Unmarshal(r, &v); err != nil {
			t.Fatal(err)
		}
		n, err := strconv.ParseInt(v.ID.String(), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = n
	}
	return out
}

func TestGeneratedRecordsHaveEveryField(t *testing.T) {
	s, err := New(Config{Seed: 7, Count: 500, Clock: func() time.Time { return testNow }, Span: 72 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	recs := s.Visible()
	if len(recs) != 500 {
		t.Fatalf("%d records; want 500", len(recs))
	}
	var big, chinese, nested, late int
	seen := map[int64]bool{}
	midnights := map[string]bool{}
	for i, r := range recs {
		if i > 0 && schema.Less(r, recs[i-1]) {
			t.Fatalf("Visible not in ascending (follow_time, id) at %d", i)
		}
		if seen[r.ID] {
			t.Fatalf("id %d twice", r.ID)
		}
		seen[r.ID] = true
		var f map[string]json.RawMessage
		if err := json.Unmarshal(r.Raw, &f); err != nil {
			t.Fatalf("record %d: %v: %s", r.ID, err, r.Raw)
		}
		for _, k := range []string{"id", "follow_user_id", "content", "target", "business_type", "business_id", "title", "follow_time", "create_time", "ext_score"} {
			if _, ok := f[k]; !ok {
				t.Fatalf("record %d has no %s: %s", r.ID, k, r.Raw)
			}
		}
		var tg map[string]json.RawMessage
		_ = json.Unmarshal(f["target"], &tg)
		for _, k := range []string{"contact_id", "external_id", "company_id", "chat_id", "clue_id", "is_ai"} {
			if _, ok := tg[k]; !ok {
				t.Fatalf("record %d target has no %s", r.ID, k)
			}
		}
		if string(f["id"]) != strconv.FormatInt(r.ID, 10) || string(f["follow_time"]) != strconv.FormatInt(r.FollowTime, 10) {
			t.Fatalf("record %d: raw id/follow_time %s/%s disagree with %d/%d", r.ID, f["id"], f["follow_time"], r.ID, r.FollowTime)
		}
		if !strings.HasSuffix(string(f["ext_score"]), "0") || !strings.Contains(string(f["ext_score"]), ".") {
			t.Errorf("ext_score %s has no trailing zero", f["ext_score"])
		}
		if r.ID > 1<<53 {
			big++
		}
		if strings.Contains(string(f["content"]), "系统自动跟进") {
			chinese++
		}
		if _, ok := f["ext"]; ok {
			nested++
		}
		ct := time.UnixMilli(r.FollowTime).In(shanghaiLoc)
		switch ct.Format("15:04:05.000") {
		case "23:59:59.999", "00:00:00.000":
			midnights[ct.Format("15:04:05.000")] = true
		}
		if r.FollowTime > testNow.UnixMilli() {
			late++
		}
	}
	if big < 10 || chinese != 500 || nested < 10 || len(midnights) != 2 {
		t.Errorf("big ids %d, Chinese contents %d, nested extras %d, midnight kinds %v", big, chinese, nested, midnights)
	}
	if late != 0 {
		t.Errorf("%d initial records in the future", late)
	}
}

func TestGenerationIsDeterministic(t *testing.T) {
	gen := func(seed int64) []schema.Record {
		s, err := New(Config{Seed: seed, Count: 200, Clock: func() time.Time { return testNow }})
		if err != nil {
			t.Fatal(err)
		}
		return s.Visible()
	}
	a, b, c := gen(3), gen(3), gen(4)
	same := func(x, y []schema.Record) bool {
		return slices.EqualFunc(x, y, func(p, q schema.Record) bool { return p.ID == q.ID && bytes.Equal(p.Raw, q.Raw) })
	}
	if !same(a, b) {
		t.Error("the same seed gave different records")
	}
	if same(a, c) {
		t.Error("different seeds gave the same records")
	}
}

func TestDateFilterIsInclusiveInShanghai(t *testing.T) {
	s, srv, _ := start(t, Config{Count: -1})
	mid := time.Date(2024, 2, 6, 0, 0, 0, 0, shanghaiLoc)
	in := s.Insert(mid, mid.Add(24*time.Hour-time.Millisecond))
	s.Insert(mid.Add(-time.Millisecond), mid.Add(24*time.Hour))
	a := list(t, srv, "static", page("2024-02-06", "2024-02-06", 1, 100))
	if a.Code != 0 || a.Data.Total != 2 {
		t.Fatalf("code %d total %d; want 0, 2: %s", a.Code, a.Data.Total, a.raw)
	}
	got := ids(t, a.Data.Records)
	slices.Sort(got)
	want := []int64{in[0].ID, in[1].ID}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("ids %v; want %v (00:00:00.000 and 23:59:59.999 of the day)", got, want)
	}
	if n := len(s.VisibleDays(mid, mid)); n != 2 {
		t.Errorf("VisibleDays: %d records; want 2", n)
	}
	a = list(t, srv, "static", page("2024-02-05", "2024-02-07", 1, 100))
	if a.Data.Total != 4 {
		t.Errorf("three days: total %d; want 4", a.Data.Total)
	}
	a = list(t, srv, "static", page("2024-02-07", "2024-02-05", 1, 100))
	if a.Code != 0 || a.Data.Total != 0 {
		t.Errorf("start after end: code %d total %d; want 0, 0", a.Code, a.Data.Total)
	}
	a = list(t, srv, "static", `{"current_index":1,"page_size":100}`)
	if a.Data.Total != 4 {
		t.Errorf("no dates: total %d; want 4", a.Data.Total)
	}
}

func TestOrders(t *testing.T) {
	readAll := func(srv *httptest.Server) []int64 {
		var all []int64
		for i := 1; ; i++ {
			a := list(t, srv, "static", page("2024-01-31", "2024-02-07", i, 37))
			all = append(all, ids(t, a.Data.Records)...)
			if len(a.Data.Records) < 37 {
				return all
			}
		}
	}
	orders := map[string][]int64{}
	var times map[int64]int64
	for _, order := range []string{OrderNewest, OrderOldest, OrderShuffled} {
		s, srv, _ := start(t, Config{Order: order, Count: 300})
		if times == nil {
			times = map[int64]int64{}
			for _, r := range s.Visible() {
				times[r.ID] = r.FollowTime
			}
		}
		orders[order] = readAll(srv)
		if again := readAll(srv); !slices.Equal(again, orders[order]) {
			t.Errorf("%s: two reads gave different orders", order)
		}
	}
	key := func(id int64) schema.Record { return schema.Record{ID: id, FollowTime: times[id]} }
	asc := func(x []int64) bool {
		return slices.IsSortedFunc(x, func(a, b int64) int { return schema.Compare(key(a), key(b)) })
	}
	if !asc(orders[OrderOldest]) {
		t.Error("oldest is not ascending")
	}
	desc := func(x []int64) bool {
		r := slices.Clone(x)
		slices.Reverse(r)
		return asc(r)
	}
	if !desc(orders[OrderNewest]) {
		t.Error("newest is not descending")
	}
	if asc(orders[OrderShuffled]) || desc(orders[OrderShuffled]) {
		t.Error("shuffled is sorted")
	}
	for _, o := range orders {
		got := slices.Sorted(slices.Values(o))
		want := slices.Sorted(slices.Values(orders[OrderOldest]))
		if len(got) != 300 || !slices.Equal(got, want) {
			t.Errorf("orders return different sets (%d records)", len(got))
		}
	}
}

func TestRequestValidation(t *testing.T) {
	s, srv, _ := start(t, Config{Count: 10})
	tests := []struct {
		name, body string
		code       int64
		want       string
	}{
		{"ok", page("2024-02-01", "2024-02-07", 1, 100), 0, ""},
		{"no dates", `{"current_index":1,"page_size":20}`, 0, ""},
		{"every documented field", `{"target_type":1,"target_id_list":["a"],"id_list":["1"],"follow_user_ids":["u"],"follow_dep_ids":[1001],"title":"t","follow_time_start":"2025-01-01","follow_time_end":"2025-02-07","current_index":1,"page_size":20}`, 0, ""},
		{"page past the end", page("2024-02-01", "2024-02-07", 1000, 100), 0, ""},
		{"huge index", `{"current_index":9223372036854775807,"page_size":100}`, 0, ""},
		{"page size 0", page("2024-02-01", "2024-02-07", 1, 0), CodeInvalidRequest, "page_size"},
		{"page size 101", page("2024-02-01", "2024-02-07", 1, 101), CodeInvalidRequest, "page_size"},
		{"no page size", `{"current_index":1}`, CodeInvalidRequest, "page_size is required"},
		{"index 0", page("2024-02-01", "2024-02-07", 0, 10), CodeInvalidRequest, "current_index"},
		{"no index", `{"page_size":10}`, CodeInvalidRequest, "current_index is required"},
		{"index float", `{"current_index":1.5,"page_size":10}`, CodeInvalidRequest, "body"},
		{"short date", page("2024-2-1", "2024-02-07", 1, 10), CodeInvalidRequest, "follow_time_start"},
		{"datetime", page("2024-02-01", "2024-02-07 00:00:00", 1, 10), CodeInvalidRequest, "follow_time_end"},
		{"unknown field", `{"current_index":1,"page_size":10,"pageSize":10}`, CodeInvalidRequest, "unknown field"},
		{"camel case", `{"currentIndex":1,"page_size":10}`, CodeInvalidRequest, "unknown field"},
		{"ids as numbers", `{"current_index":1,"page_size":10,"id_list":[1]}`, CodeInvalidRequest, "body"},
		{"not json", `current_index=1`, CodeInvalidRequest, "body"},
		{"trailing", `{"current_index":1,"page_size":10}{}`, CodeInvalidRequest, "trailing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := list(t, srv, "static", tt.body)
			if a.status != 200 || a.Code != tt.code || !strings.Contains(a.Msg, tt.want) {
				t.Errorf("HTTP %d code %d msg %q; want 200, %d, a message with %q", a.status, a.Code, a.Msg, tt.code, tt.want)
			}
		})
	}
	if n := s.Stats().Rejected["invalid_request"]; n != int64(len(tests)-5) {
		t.Errorf("%d invalid requests counted; want %d", n, len(tests)-5)
	}

	resp, err := http.Get(srv.URL + ListPath + "?access_token=static")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET on the list: HTTP %d; want 405", resp.StatusCode)
	}
	resp, err = http.Post(srv.URL+ListPath+"?access_token=static", "text/plain", strings.NewReader(page("2024-02-01", "2024-02-07", 1, 10)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain body: HTTP %d; want 415", resp.StatusCode)
	}
}

func TestFiltersSelect(t *testing.T) {
	s, srv, _ := start(t, Config{Count: 400})
	recs := s.Visible()
	var r0 Record
	if err := json.Unmarshal(recs[0].Raw, &struct {
		FollowUserID *string `json:"follow_user_id"`
		Title        *string `json:"title"`
	}{&r0.FollowUserID, &r0.Title}); err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf(`{"id_list":[%q],"current_index":1,"page_size":10}`, strconv.FormatInt(recs[0].ID, 10))
	if a := list(t, srv, "static", body); a.Data.Total != 1 || ids(t, a.Data.Records)[0] != recs[0].ID {
		t.Errorf("id_list: total %d", a.Data.Total)
	}
	body = fmt.Sprintf(`{"follow_user_ids":[%q],"title":%q,"current_index":1,"page_size":100}`, r0.FollowUserID, r0.Title)
	a := list(t, srv, "static", body)
	if a.Data.Total < 1 {
		t.Fatalf("user and title: total %d", a.Data.Total)
	}
	for _, raw := range a.Data.Records {
		var f struct {
			FollowUserID string `json:"follow_user_id"`
			Title        string `json:"title"`
		}
		_ = json.Unmarshal(raw, &f)
		if f.FollowUserID != r0.FollowUserID || f.Title != r0.Title {
			t.Errorf("filter let through %s", raw)
		}
	}
	for _, body := range []string{
		`{"target_type":4,"current_index":1,"page_size":100}`,
		`{"follow_dep_ids":[1001],"current_index":1,"page_size":100}`,
	} {
		if a := list(t, srv, "static", body); a.Data.Total == 0 || a.Data.Total >= 400 {
			t.Errorf("%s: total %d; want some but not all", body, a.Data.Total)
		}
	}
}

func TestTokens(t *testing.T) {
	s, srv, clk := start(t, Config{Count: 10, TokenTTL: time.Hour})
	get := func(query string) (code int64, tok string, expiresIn, createAt int64) {
		resp, err := http.Get(srv.URL + TokenPath + "?" + query)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var a struct {
			Code int64 `json:"code"`
			Data *struct {
				AccessToken string `json:"access_token"`
				ExpiresIn   int64  `json:"expires_in"`
				CreateAt    int64  `json:"create_at"`
			} `json:"data"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
			t.Fatal(err)
		}
		if a.Data != nil {
			return a.Code, a.Data.AccessToken, a.Data.ExpiresIn, a.Data.CreateAt
		}
		return a.Code, "", 0, 0
	}
	if code, _, _, _ := get("appid=sim-app&app_secret=nope"); code != CodeBadCredentials {
		t.Errorf("wrong secret: code %d; want %d", code, CodeBadCredentials)
	}
	code, tok, exp, created := get("appid=sim-app&app_secret=sim-secret")
	if code != 0 || tok == "" || exp != 3600 || created != testNow.Unix() {
		t.Fatalf("token answer: code %d token %q expires_in %d create_at %d", code, tok, exp, created)
	}
	body := page("2024-02-01", "2024-02-07", 1, 10)
	if a := list(t, srv, tok, body); a.Code != 0 {
		t.Fatalf("fresh token refused: %s", a.raw)
	}
	for _, tc := range []struct {
		tok  string
		code int64
	}{{"", CodeTokenInvalid}, {"bogus", CodeTokenInvalid}, {"static", 0}} {
		if a := list(t, srv, tc.tok, body); a.Code != tc.code {
			t.Errorf("token %q: code %d; want %d", tc.tok, a.Code, tc.code)
		}
	}
	clk.Add(time.Hour)
	if a := list(t, srv, tok, body); a.Code != CodeTokenExpired {
		t.Errorf("token past expires_in: code %d; want %d", a.Code, CodeTokenExpired)
	}
	_, tok2, _, _ := get("appid=sim-app&app_secret=sim-secret")
	s.ExpireTokens()
	if a := list(t, srv, tok2, body); a.Code != CodeTokenRevoked {
		t.Errorf("token expired early: code %d; want %d", a.Code, CodeTokenRevoked)
	}
	if st := s.Stats(); st.TokensIssued != 2 || st.Requests["access_token"] != 3 {
		t.Errorf("stats %+v", st)
	}
}

func TestLatencyDelaysEveryAnswer(t *testing.T) {
	// A lower bound only: the answer may come later on a busy machine, never sooner.
	const latency = 150 * time.Millisecond
	_, srv, _ := start(t, Config{Count: 10, Latency: latency})
	for _, ep := range []string{"access_token", "listForSystem"} {
		began := time.Now()
		var code int64
		switch ep {
		case "access_token":
			resp, err := http.Get(srv.URL + TokenPath + "?appid=sim-app&app_secret=sim-secret")
			if err != nil {
				t.Fatal(err)
			}
			var a answer
			err = json.NewDecoder(resp.Body).Decode(&a)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			code = a.Code
		default:
			code = list(t, srv, "static", page("2024-02-01", "2024-02-07", 1, 10)).Code
		}
		took := time.Since(began)
		if code != 0 {
			t.Fatalf("%s: code %d; want a successful answer", ep, code)
		}
		if took < latency {
			t.Errorf("%s answered after %v; want at least the configured latency %v", ep, took, latency)
		}
	}
}

func TestArrivalsOverTime(t *testing.T) {
	s, _, clk := start(t, Config{Count: 50, Rate: 10, LateFraction: 0.5, LateBy: 10 * time.Minute})
	if n := len(s.Visible()); n != 50 {
		t.Fatalf("%d visible at start; want 50", n)
	}
	clk.Add(2 * time.Second)
	if st := s.Stats(); st.Added != 20 || st.Visible != 70 {
		t.Fatalf("after 2s at 10/s: added %d visible %d; want 20, 70", st.Added, st.Visible)
	}
	// Late arrivals are older than arrivals already visible.
	var lateOnes int
	maxSeen := int64(0)
	for k := range int64(20) {
		r := generate(1, streamArrival, k, 0)
		var got schema.Record
		for _, v := range s.Visible() {
			if v.ID == r.ID {
				got = v
			}
		}
		if got.ID == 0 {
			t.Fatalf("arrival %d not visible", k)
		}
		if got.FollowTime < maxSeen {
			lateOnes++
		}
		maxSeen = max(maxSeen, got.FollowTime)
	}
	if lateOnes == 0 {
		t.Error("no arrival is late")
	}
}

func TestInsertBetweenPages(t *testing.T) {
	s, srv, _ := start(t, Config{Count: 100, InsertBetweenPages: 2, InsertLimit: 3})
	a := list(t, srv, "static", page("2024-02-06", "2024-02-07", 1, 10))
	total := a.Data.Total
	a = list(t, srv, "static", page("2024-02-06", "2024-02-07", 2, 10))
	if a.Data.Total != total+2 {
		t.Errorf("total %d after one page; want %d", a.Data.Total, total+2)
	}
	list(t, srv, "static", page("2024-02-06", "2024-02-07", 3, 10))
	a = list(t, srv, "static", page("2024-02-06", "2024-02-07", 1, 10))
	if st := s.Stats(); a.Data.Total != total+3 || st.Added != 3 || st.InsertedBetweenPages != 3 {
		t.Errorf("total %d, added %d, inserted between pages %d; want %d, 3, 3 (the limit)", a.Data.Total, st.Added, st.InsertedBetweenPages, total+3)
	}
	s.Insert(testNow.Add(-time.Second))
	if st := s.Stats(); st.Added != 4 || st.InsertedBetweenPages != 3 {
		t.Errorf("after an Insert: added %d, inserted between pages %d; want 4, 3", st.Added, st.InsertedBetweenPages)
	}
	lo := time.Date(2024, 2, 6, 0, 0, 0, 0, shanghaiLoc).UnixMilli()
	for k := range int64(3) {
		id := generatedID(streamInsert, k)
		for _, r := range s.Visible() {
			if r.ID == id && (r.FollowTime < lo || r.FollowTime > testNow.UnixMilli()) {
				t.Errorf("insert %d at %v: outside the window or in the future", id, r.Time())
			}
		}
	}
}

func TestFaults(t *testing.T) {
	s, srv, _ := start(t, Config{Count: 10, HangFor: 20 * time.Millisecond})
	body := page("2024-02-01", "2024-02-07", 1, 10)
	tests := []struct {
		fault  Fault
		status int
		check  func(a answer) bool
	}{
		{FaultHTTP500, 500, nil},
		{FaultHTTP429, 429, nil},
		{FaultCode3, 200, func(a answer) bool { return a.Code == 3 }},
		{FaultAuth, 200, func(a answer) bool { return a.Code == CodeTokenRevoked }},
		{FaultHang, 200, func(a answer) bool { return a.Code == 0 }}, // HangFor passed: the real answer
	}
	for _, tt := range tests {
		s.FailNext(tt.fault, 1)
		a := list(t, srv, "static", body)
		if a.status != tt.status || (tt.check != nil && !tt.check(a)) {
			t.Errorf("%s: HTTP %d %s", tt.fault, a.status, a.raw)
		}
	}
	for range len(malformedBodies) * 3 {
		s.FailNext(FaultMalformed, 1)
		resp, err := http.Post(srv.URL+ListPath+"?access_token=static", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var v struct {
			Data *struct {
				Records []struct {
					ID         *int64 `json:"id"`
					FollowTime *int64 `json:"follow_time"`
				} `json:"records"`
			} `json:"data"`
		}
		if json.Unmarshal(raw, &v) == nil && v.Data != nil && len(v.Data.Records) > 0 && v.Data.Records[0].FollowTime != nil {
			t.Errorf("malformed answer is well formed: %s", raw)
		}
	}
	if err := s.SetFaults(Faults{Code3: 1}); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if a := list(t, srv, "static", body); a.Code != 3 {
			t.Errorf("fault mix with code3=1: code %d", a.Code)
		}
	}
	if err := s.SetFaults(Faults{HTTP500: 0.6, HTTP429: 0.6}); err == nil {
		t.Error("SetFaults accepted probabilities summing above 1")
	}
	st := s.Stats()
	if st.Faults[FaultCode3] != 6 || st.Faults[FaultMalformed] != int64(len(malformedBodies)*3) || st.Faults[FaultHTTP500] != 1 {
		t.Errorf("fault counts %v", st.Faults)
	}
}

func TestHangEndsWhenTheClientLeaves(t *testing.T) {
	s, srv, _ := start(t, Config{Count: 10, HangFor: time.Hour})
	s.FailNext(FaultHang, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+ListPath+"?access_token=static",
		strings.NewReader(page("2024-02-01", "2024-02-07", 1, 10)))
	req.Header.Set("Content-Type", "application/json")
	if _, err := http.DefaultClient.Do(req); err == nil {
		t.Fatal("a hung request answered")
	}
	done := make(chan struct{})
	go func() { srv.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("the hung handler did not end when its client left")
	}
}

func TestRegisterFlags(t *testing.T) {
	var cfg Config
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg.RegisterFlags(fs)
	err := fs.Parse([]string{"-seed", "9", "-count", "200000", "-span", "480h", "-order", "shuffled",
		"-rate", "5", "-fault-500", "0.1", "-fault-hang", "0.01", "-token-ttl", "10m",
		"-timezone", "UTC", "-end", "2024-02-07", "-insert-between-pages", "1"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Seed != 9 || cfg.Count != 200000 || cfg.Span != 480*time.Hour || cfg.Order != OrderShuffled ||
		cfg.Rate != 5 || cfg.Faults.HTTP500 != 0.1 || cfg.Faults.Hang != 0.01 || cfg.TokenTTL != 10*time.Minute ||
		cfg.Location.String() != "UTC" || !cfg.End.Equal(time.Date(2024, 2, 7, 0, 0, 0, 0, time.UTC)) ||
		cfg.InsertBetweenPages != 1 {
		t.Errorf("flags not applied: %+v", cfg)
	}
	if err := fs.Parse([]string{"-end", "yesterday"}); err == nil {
		t.Error("-end yesterday accepted")
	}
	if _, err := New(Config{Order: "random"}); err == nil {
		t.Error("order random accepted")
	}
}

func TestListenAndServe(t *testing.T) {
	s, err := New(Config{Count: 10, AppSecret: "shh"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() { errc <- s.ListenAndServe(ctx, "127.0.0.1:0", pw); pw.Close() }()
	buf := make([]byte, 4096)
	n, _ := pr.Read(buf)
	banner := string(buf[:n])
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if !strings.Contains(banner, "FOLLOWPUB_API_BASE_URL=http://127.0.0.1:") || !strings.Contains(banner, "FOLLOWPUB_API_APP_SECRET=shh") {
		t.Errorf("banner:\n%s", banner)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Errorf("ListenAndServe: %v", err)
	}
}

// BenchmarkListPage200k serves pages of 100 from 200,000 records over 20 days, one day per window.
func BenchmarkListPage200k(b *testing.B) {
	for _, order := range []string{OrderNewest, OrderShuffled} {
		b.Run(order, func(b *testing.B) {
			s, srv, _ := start(b, Config{Count: 200_000, Span: 20 * 24 * time.Hour, Order: order})
			_ = s
			client := srv.Client()
			body := []byte(page("2024-02-01", "2024-02-01", 1, 100))
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				body = fmt.Appendf(body[:0], `{"follow_time_start":"2024-02-01","follow_time_end":"2024-02-01","current_index":%d,"page_size":100}`, i%100+1)
				resp, err := client.Post(srv.URL+ListPath+"?access_token=static", "application/json", bytes.NewReader(body))
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
}

func BenchmarkNew200k(b *testing.B) {
	for b.Loop() {
		if _, err := New(Config{Count: 200_000, Span: 20 * 24 * time.Hour, Clock: func() time.Time { return testNow }}); err != nil {
			b.Fatal(err)
		}
	}
}
