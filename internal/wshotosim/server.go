package wshotosim

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"mime"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/followpub/followpub/schema"
)

// Paths the simulator serves.
const (
	TokenPath = "/openapi/access_token"
	ListPath  = "/openapi/crm/follow/listForSystem"
)

// Codes the simulator answers besides 0. The vendor does not document its error table; these are
// the codes public client code has seen (10001, 10010, 10011, 3) and two of our choosing.
const (
	CodeServerBusy     = 3     // a server error
	CodeTokenInvalid   = 10001 // missing or unknown access_token
	CodeTokenExpired   = 10010 // an access_token past its expires_in
	CodeTokenRevoked   = 10011 // an access_token that "expired early" (fault Auth, ExpireTokens)
	CodeBadCredentials = 10002 // wrong appid or app_secret
	CodeInvalidRequest = 400   // a request body that does not follow the vendor page
)

// Fault is a kind of misbehaviour.
type Fault string

// Faults the simulator can inject.
const (
	FaultHTTP500   Fault = "http_500"
	FaultHTTP429   Fault = "http_429"
	FaultMalformed Fault = "malformed"
	FaultCode3     Fault = "code_3"
	FaultHang      Fault = "hang"
	FaultAuth      Fault = "auth"
)

// Stats counts what the simulator did since New.
type Stats struct {
	// Requests counts requests by endpoint: "access_token", "listForSystem", "other".
	Requests map[string]int64
	// Faults counts injected faults by kind.
	Faults map[Fault]int64
	// Rejected counts answers with a non-zero code that were not injected faults, by reason:
	// "token_missing", "token_invalid", "token_expired", "token_revoked", "bad_credentials",
	// "invalid_request".
	Rejected map[string]int64
	// TokensIssued counts tokens issued by the token endpoint.
	TokensIssued int64
	// Added counts records added after New: arrivals, inserts between pages, Add and Insert.
	Added int64
	// InsertedBetweenPages counts the records of Added that Config.InsertBetweenPages inserted.
	InsertedBetweenPages int64
	// Visible is the number of records visible now.
	Visible int
}

// Server is the simulated API, an http.Handler. It is safe for concurrent use.
type Server struct {
	cfg Config
	t0  time.Time

	mu        sync.Mutex
	recs      []*rec // sorted by (FollowTime, ID)
	byID      map[int64]*rec
	version   uint64
	view      viewCache
	arrivals  int64 // arrivals made visible
	inserted  int   // records inserted between pages
	insertSeq int64
	explSeq   int64
	tokens    map[string]time.Time // token → expiry
	revoked   map[string]bool
	// refused: the credentials are revoked (SetRevoked); every token is refused.
	refused       bool
	rng           *rand.Rand
	faults        Faults
	faultsOnToken bool
	// issued, when set (by a Multi, before serving), learns every token issued.
	issued   func(token string)
	failNext []Fault
	stats    Stats
	bodies   [][]byte

	late lateness // how late the latency's timers wake
}

// rec is a stored record with its JSON rendered once.
type rec struct {
	Record
	raw  []byte
	hash uint64 // for the shuffled order
}

// viewCache is the last filtered or shuffled answer order computed, valid for one store version.
type viewCache struct {
	key     string
	version uint64
	recs    []*rec
}

// maxBodies is how many list request bodies ListBodies keeps.
const maxBodies = 256

// New returns a simulator for cfg after filling defaults and validating it. It generates the
// initial records at once.
func New(cfg Config) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("wshotosim config: %w", err)
	}
	s := &Server{
		cfg:     cfg,
		t0:      cfg.Clock(),
		byID:    make(map[int64]*rec, max(cfg.Count, 0)),
		tokens:  make(map[string]time.Time),
		revoked: make(map[string]bool),
		rng:     rand.New(rand.NewPCG(uint64(cfg.Seed), 0xfa17)),
		faults:  cfg.Faults,
		// The fault mix can change at run time; these start from the configuration.
		faultsOnToken: cfg.FaultsOnToken,
		stats: Stats{
			Requests: map[string]int64{}, Faults: map[Fault]int64{}, Rejected: map[string]int64{},
		},
	}
	times := initialTimes(cfg.Seed, cfg.Count, cfg.Start, cfg.End, cfg.Location)
	// Generation is deterministic per record, so it parallelizes: 200,000 records take a fraction
	// of a second.
	s.recs = make([]*rec, len(times))
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Go(func() {
			for k := w; k < len(times); k += workers {
				s.recs[k] = s.newRec(s.generate(streamInitial, int64(k), times[k]))
			}
		})
	}
	wg.Wait()
	for _, r := range s.recs {
		s.byID[r.ID] = r
	}
	slices.SortFunc(s.recs, compareRec)
	return s, nil
}

func compareRec(a, b *rec) int {
	return cmp.Or(cmp.Compare(a.FollowTime, b.FollowTime), cmp.Compare(a.ID, b.ID))
}

// generate returns record k of a stream, its id shifted by Config.IDOffset.
func (s *Server) generate(stream int, k, followTime int64) Record {
	r := generate(s.cfg.Seed, stream, k, followTime)
	r.ID += s.cfg.IDOffset
	return r
}

// newRec renders r.
func (s *Server) newRec(r Record) *rec {
	// The shuffled order must not depend on the process (maphash seeds do), so hash with the
	// configured seed instead.
	h := rand.New(rand.NewPCG(uint64(s.cfg.Seed), uint64(r.ID))).Uint64()
	return &rec{Record: r, raw: bytes.Clone(r.appendJSON(make([]byte, 0, 640))), hash: h}
}

// insertLocked adds r to the store; s.mu is held.
func (s *Server) insertLocked(r *rec) error {
	if _, dup := s.byID[r.ID]; dup {
		return fmt.Errorf("record id %d already exists", r.ID)
	}
	i, _ := slices.BinarySearchFunc(s.recs, r, compareRec)
	s.recs = slices.Insert(s.recs, i, r)
	s.byID[r.ID] = r
	s.version++
	s.stats.Added++
	return nil
}

// Add adds records, visible at once. It fails on an id that already exists (nothing is added
// then). Extra must be valid JSON object members.
func (s *Server) Add(recs ...Record) error {
	rendered := make([]*rec, len(recs))
	ids := make(map[int64]bool, len(recs))
	for i, r := range recs {
		rendered[i] = s.newRec(r)
		if !json.Valid(rendered[i].raw) {
			return fmt.Errorf("record id %d: Extra %q makes invalid JSON", r.ID, r.Extra)
		}
		if ids[r.ID] {
			return fmt.Errorf("record id %d given twice", r.ID)
		}
		ids[r.ID] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range rendered {
		if _, dup := s.byID[r.ID]; dup {
			return fmt.Errorf("record id %d already exists", r.ID)
		}
	}
	for _, r := range rendered {
		_ = s.insertLocked(r)
	}
	return nil
}

// Insert adds one generated record per follow time, visible at once, and returns them.
func (s *Server) Insert(followTimes ...time.Time) []schema.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]schema.Record, 0, len(followTimes))
	for _, t := range followTimes {
		r := s.newRec(s.generate(streamExplicit, s.explSeq, t.UnixMilli()))
		s.explSeq++
		_ = s.insertLocked(r)
		out = append(out, r.schema())
	}
	return out
}

func (r *rec) schema() schema.Record {
	return schema.Record{ID: r.ID, FollowTime: r.FollowTime, Raw: json.RawMessage(r.raw)}
}

// Visible returns every record visible now, in ascending (follow_time, id): the ground truth tests
// compare against. Raw shares the simulator's bytes: do not modify it.
func (s *Server) Visible() []schema.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceLocked(s.cfg.Clock())
	out := make([]schema.Record, len(s.recs))
	for i, r := range s.recs {
		out[i] = r.schema()
	}
	return out
}

// VisibleDays returns the records visible now whose follow_time falls on the days from through to
// (both inclusive, in Config.Location), as a list request with those dates selects them, in
// ascending (follow_time, id).
func (s *Server) VisibleDays(from, to time.Time) []schema.Record {
	lo, hi := s.dayStart(from), s.dayStart(to.In(s.cfg.Location).AddDate(0, 0, 1))
	var out []schema.Record
	for _, r := range s.Visible() {
		if r.FollowTime >= lo && r.FollowTime < hi {
			out = append(out, r)
		}
	}
	return out
}

// dayStart returns the epoch ms of the start of t's day in the API's zone.
func (s *Server) dayStart(t time.Time) int64 {
	y, m, d := t.In(s.cfg.Location).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, s.cfg.Location).UnixMilli()
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceLocked(s.cfg.Clock())
	st := s.stats
	st.Requests = maps(s.stats.Requests)
	st.Faults = maps(s.stats.Faults)
	st.Rejected = maps(s.stats.Rejected)
	st.Visible = len(s.recs)
	st.InsertedBetweenPages = int64(s.inserted)
	return st
}

func maps[K comparable](m map[K]int64) map[K]int64 {
	out := make(map[K]int64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// SetFaults replaces the fault mix.
func (s *Server) SetFaults(f Faults) error {
	if err := f.validate(); err != nil {
		return err
	}
	s.mu.Lock()
	s.faults = f
	s.mu.Unlock()
	return nil
}

// SetFaultsOnToken says whether the fault mix applies to the token endpoint too (Config.FaultsOnToken
// at New): with SetFaults(Faults{HTTP500: 1}) it makes the API answer 500 to everything.
func (s *Server) SetFaultsOnToken(on bool) {
	s.mu.Lock()
	s.faultsOnToken = on
	s.mu.Unlock()
}

// SetRevoked revokes the credentials (true) or restores them (false). While they are revoked, the
// token endpoint refuses the app id and secret (code 10002) and every token, the static one
// included, is refused as revoked (code 10011); tokens issued before a revocation stay refused
// after it is lifted, as with ExpireTokens.
func (s *Server) SetRevoked(revoked bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refused = revoked
	if revoked {
		for t := range s.tokens {
			s.revoked[t] = true
		}
	}
}

// FailNext makes the next n requests (to the list endpoint, or to either endpoint with
// Config.FaultsOnToken; FaultAuth only on the list) answer with fault f, before any random fault.
func (s *Server) FailNext(f Fault, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failNext = append(s.failNext, f)
	}
}

// ExpireTokens makes every token issued so far invalid (code 10011), as the vendor warns tokens
// may expire early.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for t := range s.tokens {
		s.revoked[t] = true
	}
}

// ListBodies returns the bodies of the last list requests (at most 256), oldest first.
func (s *Server) ListBodies() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.bodies)
}

// Config returns the configuration in use, defaults filled.
func (s *Server) Config() Config { return s.cfg }

// advanceLocked makes the arrivals due by now visible; s.mu is held.
func (s *Server) advanceLocked(now time.Time) {
	if s.cfg.Rate <= 0 {
		return
	}
	due := int64(now.Sub(s.t0).Seconds() * s.cfg.Rate)
	for s.arrivals < due {
		k := s.arrivals
		at := s.t0.Add(time.Duration(float64(k+1) / s.cfg.Rate * float64(time.Second)))
		ft := at.UnixMilli()
		rng := rand.New(rand.NewPCG(uint64(s.cfg.Seed), uint64(k)<<3|7))
		if rng.Float64() < s.cfg.LateFraction && s.cfg.LateBy >= time.Millisecond {
			ft -= 1 + rng.Int64N(s.cfg.LateBy.Milliseconds())
		}
		_ = s.insertLocked(s.newRec(s.generate(streamArrival, k, ft)))
		s.arrivals++
	}
}

// ServeHTTP answers the token and list endpoints; anything else is 404.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var ep string
	switch r.URL.Path {
	case TokenPath:
		ep = "access_token"
	case ListPath:
		ep = "listForSystem"
	default:
		s.count("other")
		writeJSON(w, http.StatusNotFound, []byte(`{"code":404,"msg":"not found","data":null,"sub_code":"A0404"}`))
		return
	}
	arrived := time.Now()
	s.count(ep)
	// Read the body first: only then does net/http notice a client that goes away, which ends a
	// hang or a latency sleep early.
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return
	}
	if s.cfg.Latency > 0 && !s.late.sleepUntil(r.Context(), arrived.Add(s.cfg.Latency)) {
		return
	}
	f := s.pickFault(ep == "listForSystem")
	switch f {
	case FaultHTTP500:
		writeJSON(w, http.StatusInternalServerError, []byte(`{"timestamp":"now","status":500,"error":"Internal Server Error"}`))
		return
	case FaultHTTP429:
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusTooManyRequests, []byte(`{"code":429,"msg":"请求过于频繁"}`))
		return
	case FaultMalformed:
		s.malformed(w)
		return
	case FaultCode3:
		writeJSON(w, http.StatusOK, []byte(`{"code":3,"msg":"系统繁忙,请稍后再试","data":null,"sub_code":"B0001"}`))
		return
	case FaultAuth:
		writeJSON(w, http.StatusOK, codeBody(CodeTokenRevoked, "access_token已失效"))
		return
	case FaultHang:
		if !sleep(r.Context(), s.cfg.HangFor) {
			return
		}
	}
	if ep == "access_token" {
		s.serveToken(w, r)
		return
	}
	s.serveList(w, r, body)
}

func (s *Server) count(ep string) {
	s.mu.Lock()
	s.stats.Requests[ep]++
	s.mu.Unlock()
}

func (s *Server) reject(w http.ResponseWriter, reason string, code int, msg string) {
	s.mu.Lock()
	s.stats.Rejected[reason]++
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, codeBody(code, msg))
}

// pickFault draws the fault for one request (FaultNext first), or "".
func (s *Server) pickFault(list bool) Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !list && !s.faultsOnToken {
		return ""
	}
	var f Fault
	if len(s.failNext) > 0 && (list || s.failNext[0] != FaultAuth) {
		f, s.failNext = s.failNext[0], s.failNext[1:]
	} else if s.faults.sum() > 0 {
		u := s.rng.Float64()
		for _, c := range []struct {
			p float64
			f Fault
		}{
			{s.faults.HTTP500, FaultHTTP500}, {s.faults.HTTP429, FaultHTTP429},
			{s.faults.Malformed, FaultMalformed}, {s.faults.Code3, FaultCode3},
			{s.faults.Hang, FaultHang}, {s.faults.Auth, FaultAuth},
		} {
			if u < c.p {
				f = c.f
				break
			}
			u -= c.p
		}
		if f == FaultAuth && !list {
			f = ""
		}
	}
	if f != "" {
		s.stats.Faults[f]++
		s.cfg.Logger.Debug("injecting fault", "fault", string(f))
	}
	return f
}

// malformedBodies are the shapes a malformed answer takes, in turn.
var malformedBodies = [][]byte{
	[]byte(`{"code":0,"msg":"请求成功","data":{"total":3,"records":[{"id":1234567890,"follow_user_id":"wx_`),
	[]byte("<html><body><h1>502 Bad Gateway</h1></body></html>"),
	[]byte(`{"code":0,"msg":"请求成功","data":{"total":1,"records":{"id":1}},"sub_code":"00000"}`),
	[]byte(`{"code":0,"msg":"请求成功","sub_code":"00000"}`),
	[]byte(`{"code":0,"msg":"请求成功","data":{"total":1,"records":[{"id":1234567890,"title":"客户状态变更"}]},"sub_code":"00000"}`),
	[]byte(``),
}

func (s *Server) malformed(w http.ResponseWriter) {
	s.mu.Lock()
	b := malformedBodies[s.rng.IntN(len(malformedBodies))]
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, b)
}

// serveToken answers GET /openapi/access_token?appid=…&app_secret=….
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeJSON(w, http.StatusMethodNotAllowed, codeBody(405, "method not allowed"))
		return
	}
	q := r.URL.Query()
	s.mu.Lock()
	refused := s.refused
	s.mu.Unlock()
	if refused || q.Get("appid") != s.cfg.AppID || q.Get("app_secret") != s.cfg.AppSecret {
		s.reject(w, "bad_credentials", CodeBadCredentials, "appid或app_secret错误")
		return
	}
	now := s.cfg.Clock()
	s.mu.Lock()
	tok := fmt.Sprintf("simtok_%016x%016x", s.rng.Uint64(), s.rng.Uint64())
	ttl := s.cfg.TokenTTL.Truncate(time.Second)
	s.tokens[tok] = now.Add(ttl)
	s.stats.TokensIssued++
	issued := s.issued
	s.mu.Unlock()
	if issued != nil {
		issued(tok)
	}
	body := fmt.Appendf(nil, `{"code":0,"msg":"ok","data":{"access_token":%q,"expires_in":%d,"create_at":%d},"sub_code":"00000"}`,
		tok, int64(ttl/time.Second), now.Unix())
	writeJSON(w, http.StatusOK, body)
}

// listRequest is the list body as the vendor page documents it; anything else is rejected.
type listRequest struct {
	TargetType      *int64   `json:"target_type"`
	TargetIDList    []string `json:"target_id_list"`
	IDList          []string `json:"id_list"`
	FollowUserIDs   []string `json:"follow_user_ids"`
	FollowDepIDs    []int64  `json:"follow_dep_ids"`
	Title           *string  `json:"title"`
	FollowTimeStart *string  `json:"follow_time_start"`
	FollowTimeEnd   *string  `json:"follow_time_end"`
	CurrentIndex    *int64   `json:"current_index"`
	PageSize        *int64   `json:"page_size"`
}

// query is a validated list request.
type query struct {
	lo, hi     int64 // follow_time range [lo, hi) in epoch ms
	index      int64
	size       int64
	targetType *int64
	targetIDs  map[string]bool
	ids        map[int64]bool
	users      map[string]bool
	deps       map[int64]bool
	title      string
	key        string // canonical form of the filters, for the view cache
}

func (q *query) filtered() bool {
	return q.targetType != nil || q.targetIDs != nil || q.ids != nil || q.users != nil || q.deps != nil || q.title != ""
}

func (q *query) match(r *rec) bool {
	if q.targetType != nil && int64(r.TargetType) != *q.targetType {
		return false
	}
	if q.ids != nil && !q.ids[r.ID] {
		return false
	}
	if q.users != nil && !q.users[r.FollowUserID] {
		return false
	}
	if q.deps != nil && !q.deps[r.FollowDepID] {
		return false
	}
	if q.title != "" && r.Title != q.title {
		return false
	}
	if q.targetIDs != nil {
		t := r.Target
		if !q.targetIDs[t.ContactID] && !q.targetIDs[t.ExternalID] && !q.targetIDs[t.CompanyID] &&
			!q.targetIDs[t.ChatID] && !q.targetIDs[t.ClueID] && !q.targetIDs[r.BusinessID] {
			return false
		}
	}
	return true
}

// parseList validates a list body.
func (s *Server) parseList(body []byte) (*query, error) {
	var req listRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, fmt.Errorf("body: %v", err)
	}
	if dec.More() {
		return nil, errors.New("body: trailing data")
	}
	q := &query{lo: math.MinInt64, hi: math.MaxInt64}
	switch {
	case req.CurrentIndex == nil:
		return nil, errors.New("current_index is required")
	case *req.CurrentIndex < 1:
		return nil, fmt.Errorf("current_index %d: must be at least 1", *req.CurrentIndex)
	case req.PageSize == nil:
		return nil, errors.New("page_size is required")
	case *req.PageSize < 1 || *req.PageSize > 100:
		return nil, fmt.Errorf("page_size %d: must be 1–100", *req.PageSize)
	}
	q.index, q.size = *req.CurrentIndex, *req.PageSize
	day := func(name string, v *string) (time.Time, error) {
		t, err := time.ParseInLocation(time.DateOnly, *v, s.cfg.Location)
		if err != nil || len(*v) != len(time.DateOnly) {
			return time.Time{}, fmt.Errorf("%s %q: must be yyyy-MM-dd", name, *v)
		}
		return t, nil
	}
	if req.FollowTimeStart != nil && *req.FollowTimeStart != "" {
		t, err := day("follow_time_start", req.FollowTimeStart)
		if err != nil {
			return nil, err
		}
		q.lo = t.UnixMilli()
	}
	if req.FollowTimeEnd != nil && *req.FollowTimeEnd != "" {
		t, err := day("follow_time_end", req.FollowTimeEnd)
		if err != nil {
			return nil, err
		}
		q.hi = t.AddDate(0, 0, 1).UnixMilli()
	}
	q.targetType = req.TargetType
	if len(req.TargetIDList) > 0 {
		q.targetIDs = set(req.TargetIDList)
	}
	if len(req.IDList) > 0 {
		q.ids = make(map[int64]bool, len(req.IDList))
		for _, s := range req.IDList {
			if id, err := strconv.ParseInt(s, 10, 64); err == nil {
				q.ids[id] = true
			}
		}
	}
	if len(req.FollowUserIDs) > 0 {
		q.users = set(req.FollowUserIDs)
	}
	if len(req.FollowDepIDs) > 0 {
		q.deps = set(req.FollowDepIDs)
	}
	if req.Title != nil {
		q.title = *req.Title
	}
	if q.filtered() {
		k, _ := json.Marshal([]any{req.TargetType, req.TargetIDList, req.IDList, req.FollowUserIDs, req.FollowDepIDs, q.title})
		q.key = string(k)
	}
	return q, nil
}

func set[K comparable](vs []K) map[K]bool {
	m := make(map[K]bool, len(vs))
	for _, v := range vs {
		m[v] = true
	}
	return m
}

// serveList answers POST /openapi/crm/follow/listForSystem?access_token=….
func (s *Server) serveList(w http.ResponseWriter, r *http.Request, body []byte) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, codeBody(405, "method not allowed"))
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeJSON(w, http.StatusUnsupportedMediaType, codeBody(415, "Content-Type must be application/json"))
		return
	}
	now := s.cfg.Clock()
	if reason, code, msg := s.checkToken(r.URL.Query().Get("access_token"), now); reason != "" {
		s.reject(w, reason, code, msg)
		return
	}
	s.mu.Lock()
	if len(s.bodies) == maxBodies {
		s.bodies = slices.Delete(s.bodies, 0, 1)
	}
	s.bodies = append(s.bodies, body)
	s.mu.Unlock()
	q, err := s.parseList(body)
	if err != nil {
		s.reject(w, "invalid_request", CodeInvalidRequest, "参数错误: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, s.page(q, now))
}

// checkToken says why tok is refused, or "".
func (s *Server) checkToken(tok string, now time.Time) (reason string, code int, msg string) {
	if tok == "" {
		return "token_missing", CodeTokenInvalid, "access_token缺失"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.StaticToken != "" && tok == s.cfg.StaticToken {
		if s.refused {
			return "token_revoked", CodeTokenRevoked, "access_token已失效"
		}
		return "", 0, ""
	}
	exp, ok := s.tokens[tok]
	switch {
	case !ok:
		return "token_invalid", CodeTokenInvalid, "access_token无效"
	case s.revoked[tok]:
		return "token_revoked", CodeTokenRevoked, "access_token已失效"
	case !now.Before(exp):
		return "token_expired", CodeTokenExpired, "access_token已过期"
	}
	return "", 0, ""
}

// page renders the answer to q, then inserts records between pages if configured.
func (s *Server) page(q *query, now time.Time) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceLocked(now)
	lo, _ := slices.BinarySearchFunc(s.recs, q.lo, func(r *rec, t int64) int { return cmp.Compare(r.FollowTime, t) })
	hi, _ := slices.BinarySearchFunc(s.recs, q.hi, func(r *rec, t int64) int { return cmp.Compare(r.FollowTime, t) })
	if hi < lo {
		hi = lo // start after end
	}
	var (
		total int64
		at    func(i int64) *rec
	)
	if !q.filtered() && s.cfg.Order != OrderShuffled {
		window := s.recs[lo:hi]
		total = int64(len(window))
		if s.cfg.Order == OrderOldest {
			at = func(i int64) *rec { return window[i] }
		} else {
			at = func(i int64) *rec { return window[total-1-i] }
		}
	} else {
		view := s.viewLocked(q, lo, hi)
		total = int64(len(view))
		at = func(i int64) *rec { return view[i] }
	}
	from := total // a page past the end: no records
	if q.index-1 < (total+q.size-1)/q.size {
		from = (q.index - 1) * q.size
	}
	to := min(from+q.size, total)
	size := 96
	for i := from; i < to; i++ {
		size += len(at(i).raw) + 1
	}
	b := make([]byte, 0, size)
	b = append(b, `{"code":0,"msg":"请求成功","data":{"total":`...)
	b = strconv.AppendInt(b, total, 10)
	b = append(b, `,"records":[`...)
	for i := from; i < to; i++ {
		if i > from {
			b = append(b, ',')
		}
		b = append(b, at(i).raw...)
	}
	b = append(b, `]},"sub_code":"00000"}`...)
	s.insertBetweenPagesLocked(q, now)
	return b
}

// viewLocked returns the matching records of s.recs[lo:hi] in answer order, cached per store
// version; s.mu is held.
func (s *Server) viewLocked(q *query, lo, hi int) []*rec {
	key := fmt.Sprintf("%d|%d|%s", q.lo, q.hi, q.key)
	if s.view.recs != nil && s.view.key == key && s.view.version == s.version {
		return s.view.recs
	}
	view := make([]*rec, 0, hi-lo)
	for _, r := range s.recs[lo:hi] {
		if q.match(r) {
			view = append(view, r)
		}
	}
	switch s.cfg.Order {
	case OrderNewest:
		slices.Reverse(view)
	case OrderShuffled:
		slices.SortFunc(view, func(a, b *rec) int { return cmp.Or(cmp.Compare(a.hash, b.hash), cmp.Compare(a.ID, b.ID)) })
	}
	s.view = viewCache{key: key, version: s.version, recs: view}
	return view
}

// insertBetweenPagesLocked inserts Config.InsertBetweenPages records into q's window, at times no
// later than now; s.mu is held.
func (s *Server) insertBetweenPagesLocked(q *query, now time.Time) {
	n := s.cfg.InsertBetweenPages
	if s.cfg.InsertLimit > 0 {
		n = min(n, s.cfg.InsertLimit-s.inserted)
	}
	const day = 24 * 3600 * 1000
	nowMs := now.UnixMilli()
	hi := min(q.hi-1, nowMs)
	if q.lo != math.MinInt64 && hi < q.lo { // a window after now: anywhere in it
		hi = min(q.hi-1, q.lo+day)
	}
	lo := q.lo
	if lo == math.MinInt64 {
		lo = hi - day
	}
	if lo > hi {
		return
	}
	for range max(n, 0) {
		ft := lo + s.rng.Int64N(hi-lo+1)
		_ = s.insertLocked(s.newRec(s.generate(streamInsert, s.insertSeq, ft)))
		s.insertSeq++
		s.inserted++
	}
}

func codeBody(code int, msg string) []byte {
	b := fmt.Appendf(nil, `{"code":%d,"msg":`, code)
	b = appendString(b, msg)
	return append(b, `,"data":null,"sub_code":"A0001"}`...)
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// lateness makes the answers of Config.Latency begin that long after the request arrived, not
// that long plus the time a timer takes to wake on a busy machine, which would skew the
// benchmarks' API bound (docs/BENCHMARKS.md). Its zero value is ready to use.
type lateness struct {
	avg atomic.Int64 // moving average of how late the timers woke, in nanoseconds
}

// maxLateness caps the timer's expected lateness, so that one stall does not turn the sleeps
// into spinning.
const maxLateness = 2 * time.Millisecond

// sleepUntil waits until deadline, or until ctx ends; it reports whether deadline passed. It sleeps
// until the deadline less the timers' recent lateness, then yields until the deadline itself:
// never sooner, and on average only a little later.
func (l *lateness) sleepUntil(ctx context.Context, deadline time.Time) bool {
	// At most half the wait is left to yielding, so that a timer sleeps every time and the
	// average keeps following the machine, whatever the latency.
	lead := min(time.Duration(l.avg.Load()), time.Until(deadline)/2)
	wake := deadline.Add(-lead)
	if d := time.Until(wake); d > 0 {
		if !sleep(ctx, d) {
			return false
		}
		late := min(time.Since(wake), maxLateness)
		old := l.avg.Load()
		l.avg.Store(old + (int64(late)-old)/8) // concurrent updates may lose one: an estimate
	}
	for time.Now().Before(deadline) {
		if ctx.Err() != nil {
			return false
		}
		runtime.Gosched()
	}
	return true
}

// sleep waits for d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Describe returns the lines `followpub sim` prints: where the simulator is and the environment
// that points followpub at it.
func (s *Server) Describe(baseURL string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "WeShoto API simulator at %s (%d records, order %s, zone %s)\n",
		baseURL, s.Stats().Visible, s.cfg.Order, s.cfg.Location)
	fmt.Fprintf(&b, "  token: GET  %s%s?appid=%s&app_secret=%s\n", baseURL, TokenPath, s.cfg.AppID, s.cfg.AppSecret)
	fmt.Fprintf(&b, "  list:  POST %s%s?access_token=TOKEN\n", baseURL, ListPath)
	b.WriteString("point followpub at it with:\n")
	fmt.Fprintf(&b, "  FOLLOWPUB_API_BASE_URL=%s\n", baseURL)
	if s.cfg.StaticToken != "" {
		fmt.Fprintf(&b, "  FOLLOWPUB_API_ACCESS_TOKEN=%s\n", s.cfg.StaticToken)
	} else {
		fmt.Fprintf(&b, "  FOLLOWPUB_API_APP_ID=%s\n  FOLLOWPUB_API_APP_SECRET=%s\n", s.cfg.AppID, s.cfg.AppSecret)
	}
	if s.cfg.Location.String() != schema.APITimeZone {
		fmt.Fprintf(&b, "  FOLLOWPUB_API_TIMEZONE=%s\n", s.cfg.Location)
	}
	return b.String()
}
