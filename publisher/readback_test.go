package publisher_test

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/followpub/followpub/internal/kafkatest"
	"github.com/followpub/followpub/poller"
	"github.com/followpub/followpub/publisher"
	"github.com/followpub/followpub/schema"
)

// readBackRig is a publisher on a fresh topic of a real broker, with the tail it accounted for.
type readBackRig struct {
	t       *testing.T
	brokers []string
	topic   string
	p       *publisher.Publisher
	tail    poller.Tail
}

func newReadBackRig(t *testing.T, partitions int, via []string) *readBackRig {
	t.Helper()
	brokers := kafkatest.Brokers(t)
	r := &readBackRig{t: t, brokers: brokers, topic: kafkatest.Topic(t, brokers, partitions)}
	if via == nil {
		via = brokers
	}
	r.p = publisher.NewTestPublisher(t, publisher.Config{Brokers: via, Topic: r.topic, WriteTimeout: 5 * time.Second})
	rb := r.readBack(poller.Tail{})
	if !rb.Fresh || len(rb.Tail.Next) != partitions {
		t.Fatalf("the first read-back = %+v, want a fresh tail of %d partitions", rb, partitions)
	}
	r.tail = rb.Tail
	return r
}

func (r *readBackRig) readBack(from poller.Tail) poller.ReadBack {
	r.t.Helper()
	rb, err := r.p.ReadBack(context.Background(), from)
	if err != nil {
		r.t.Fatalf("ReadBack(%+v): %v", from, err)
	}
	return rb
}

// publish publishes recs, which must all be acknowledged, and advances the tail.
func (r *readBackRig) publish(recs []schema.Record) {
	r.t.Helper()
	w, err := r.p.Publish(context.Background(), recs)
	if err != nil {
		r.t.Fatalf("Publish: %v", err)
	}
	r.tail = r.tail.Advance(w.Next)
}

// ids returns the ids of found, sorted.
func ids(found []poller.Published) []int64 {
	out := make([]int64, 0, len(found))
	for _, f := range found {
		out = append(out, f.ID)
	}
	slices.Sort(out)
	return out
}

// recIDs returns the ids of recs, sorted.
func recIDs(recs []schema.Record) []int64 {
	found := make([]poller.Published, len(recs))
	for i, r := range recs {
		found[i].ID = r.ID
	}
	return ids(found)
}

// keysOnce consumes the topic and fails unless it holds each of want exactly once and nothing
// else: it reads until it has len(want) records, then half a second more for any extra.
func keysOnce(t *testing.T, brokers []string, topic string, want []schema.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got := map[string]int{}
	n := 0
	var settle time.Time
	for deadline := time.Now().Add(60 * time.Second); settle.IsZero() || time.Now().Before(settle); {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got[string(r.Key)]++; n++ })
		cancel()
		if n >= len(want) && settle.IsZero() {
			settle = time.Now().Add(500 * time.Millisecond)
		}
		if time.Now().After(deadline) {
			t.Fatalf("read %d records of %s, want %d", n, topic, len(want))
		}
	}
	for _, w := range want {
		k := strconv.FormatInt(w.ID, 10)
		if got[k] != 1 {
			t.Errorf("id %s is in the topic %d times, want once", k, got[k])
		}
		delete(got, k)
	}
	for k, c := range got {
		t.Errorf("id %s is in the topic %d times, want never", k, c)
	}
}

// figures logs a test's measured figures under the prefix docs/RELIABILITY.md collects.
func figures(t *testing.T, format string, args ...any) {
	t.Helper()
	t.Logf("FIGURES: "+format, args...)
}

// TestLostAcknowledgementIsFoundByReadBack: a proxy between the publisher and the broker drops
// the response to a produce request after the broker appended its records. Publish fails; the
// read-back from the tail finds every record of the call in the topic (the ones whose
// acknowledgement was lost too), so nothing has to be sent again, and the topic holds each once.
func TestLostAcknowledgementIsFoundByReadBack(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	proxy := kafkatest.StartProxy(t, brokers[0])
	r := newReadBackRig(t, 3, []string{proxy.Addr()})
	first := records(t, 1, 40)
	r.publish(first)

	second := records(t, 100_000, 40)
	proxy.DropProduceResponses(1)
	w, err := r.p.Publish(context.Background(), second)
	if err == nil {
		t.Fatal("Publish succeeded although the proxy dropped a produce response")
	}
	if proxy.Injected() != 1 {
		t.Fatalf("the proxy injected %d faults, want 1", proxy.Injected())
	}
	acked := 0
	for _, a := range w.Acked {
		if a {
			acked++
		}
	}
	t.Logf("with a lost acknowledgement: %d of %d acknowledged: %v", acked, len(second), err)
	if acked == len(second) {
		t.Fatal("every record was acknowledged although a response was dropped")
	}
	rb := r.readBack(r.tail)
	if got, want := ids(rb.Found), recIDs(second); !slices.Equal(got, want) {
		t.Fatalf("the read-back found %v, want every record of the failed call %v", got, want)
	}
	if rb.Foreign != 0 || rb.Unrecognised != 0 || rb.Removed != 0 || rb.Rewound != 0 || rb.Fresh {
		t.Fatalf("read-back = %+v, want only our records", rb)
	}
	for i, f := range rb.Found {
		if rec := second[slices.IndexFunc(second, func(s schema.Record) bool { return s.ID == f.ID })]; rec.FollowTime != f.FollowTime {
			t.Fatalf("found %d: follow_time %d, want %d", i, f.FollowTime, rec.FollowTime)
		}
	}
	// Nothing more is found from the new tail.
	if again := r.readBack(rb.Tail); len(again.Found) != 0 || again.Read != 0 {
		t.Fatalf("a read-back from the new tail found %d records (read %d), want none", len(again.Found), again.Read)
	}
	keysOnce(t, brokers, r.topic, append(first, second...))
	figures(t, "lost acknowledgement: injected=%d lost=0 duplicated=0 found_by_readback=%d acknowledged=%d", proxy.Injected(), len(rb.Found), acked)
}

// TestResetMidRequestIsFoundMissingByReadBack: the proxy cuts a produce request in the middle and
// resets the connection. The broker appended nothing of it; the read-back finds the records of
// the other partitions only, and sending the missing ones again leaves each once in the topic.
func TestResetMidRequestIsFoundMissingByReadBack(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	proxy := kafkatest.StartProxy(t, brokers[0])
	r := newReadBackRig(t, 3, []string{proxy.Addr()})
	recs := records(t, 1, 60)
	proxy.CutProduceRequests(1)
	if _, err := r.p.Publish(context.Background(), recs); err == nil {
		t.Fatal("Publish succeeded although the proxy cut a produce request")
	}
	rb := r.readBack(r.tail)
	found := map[int64]bool{}
	for _, f := range rb.Found {
		found[f.ID] = true
	}
	var missing []schema.Record
	for _, rec := range recs {
		if !found[rec.ID] {
			missing = append(missing, rec)
		}
	}
	if len(missing) == 0 || len(missing) == len(recs) {
		t.Fatalf("%d of %d records missing after a cut request, want those of one partition", len(missing), len(recs))
	}
	r.tail = rb.Tail
	r.publish(missing)
	keysOnce(t, brokers, r.topic, recs)
	figures(t, "reset mid-request: injected=%d lost=0 duplicated=0 missing_resent=%d", proxy.Injected(), len(missing))
}

// TestReadBackLeavesOtherProducersAlone: another producer writes to the same topic: records with
// another ce_source or none are Foreign, records with our ce_source that are not followpub's
// records are Unrecognised; neither is taken as ours.
func TestReadBackLeavesOtherProducersAlone(t *testing.T) {
	r := newReadBackRig(t, 2, nil)
	ours := records(t, 1, 10)
	r.publish(ours[:5])
	from := r.tail
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.brokers...), kgo.DefaultProduceTopic(r.topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	h := func(k, v string) kgo.RecordHeader { return kgo.RecordHeader{Key: k, Value: []byte(v)} }
	others := []*kgo.Record{
		{Key: []byte("1"), Value: []byte(`{"id":1,"follow_time":1}`)}, // no headers
		{Key: []byte("2"), Value: []byte(`{"id":2,"follow_time":2}`), Headers: []kgo.RecordHeader{h("ce_source", "urn:someone-else"), h("ce_id", "2")}},
		{Key: []byte("3"), Value: []byte(`not json`), Headers: []kgo.RecordHeader{h("ce_source", schema.DefaultSource), h("ce_id", "3")}},
		{Key: []byte("4"), Value: []byte(`{"id":5,"follow_time":1}`), Headers: []kgo.RecordHeader{h("ce_source", schema.DefaultSource), h("ce_id", "4")}},
		{Key: []byte("6"), Value: []byte(`{"id":6,"follow_time":1}`), Headers: []kgo.RecordHeader{h("ce_source", schema.DefaultSource), h("ce_id", "6"), h("ce_time", "2024-02-07T08:00:00.000Z")}},
	}
	if err := cl.ProduceSync(context.Background(), others...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	r.publish(ours[5:])
	rb := r.readBack(from)
	if got, want := ids(rb.Found), recIDs(ours[5:]); !slices.Equal(got, want) {
		t.Errorf("found %v, want only our records %v", got, want)
	}
	if rb.Foreign != 2 || rb.Unrecognised != 3 || rb.Read != 10 {
		t.Errorf("read %d, foreign %d, unrecognised %d; want 10, 2 and 3", rb.Read, rb.Foreign, rb.Unrecognised)
	}
}

// admin sends req to the brokers with franz-go and fails the test on a transport error.
func admin[R kmsg.Response](t *testing.T, brokers []string, req interface {
	RequestWith(context.Context, kmsg.Requestor) (R, error)
}) R {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("%T: %v", req, err)
	}
	return resp
}

// TestReadBackAfterRetention: records above the tail are deleted (DeleteRecords, as retention
// would) before the read-back: it counts them in Removed, reads the rest, and finds ours there.
func TestReadBackAfterRetention(t *testing.T) {
	r := newReadBackRig(t, 1, nil)
	from := r.tail
	recs := records(t, 1, 20)
	r.publish(recs)
	req := kmsg.NewPtrDeleteRecordsRequest()
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = r.topic
	rp := kmsg.NewDeleteRecordsRequestTopicPartition()
	rp.Partition, rp.Offset = 0, from.Next[0]+8
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := admin(t, r.brokers, req)
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("DeleteRecords: error code %d", code)
	}
	rb := r.readBack(from)
	if rb.Removed != 8 {
		t.Errorf("removed = %d, want the 8 records deleted", rb.Removed)
	}
	if got, want := ids(rb.Found), recIDs(recs[8:]); !slices.Equal(got, want) {
		t.Errorf("found %v, want the 12 records left %v", got, want)
	}
}

// TestReadBackAfterTheTopicWasRecreated: the topic is deleted and created again, so its offsets
// went back below the tail: the read-back counts the partitions in Rewound, reads them from their
// start and finds our records there.
func TestReadBackAfterTheTopicWasRecreated(t *testing.T) {
	r := newReadBackRig(t, 2, nil)
	r.publish(records(t, 1, 40))
	del := kmsg.NewPtrDeleteTopicsRequest()
	dt := kmsg.NewDeleteTopicsRequestTopic()
	dt.Topic = kmsg.StringPtr(r.topic)
	del.Topics = append(del.Topics, dt)
	del.TopicNames = append(del.TopicNames, r.topic)
	if code := admin(t, r.brokers, del).Topics[0].ErrorCode; code != 0 {
		t.Fatalf("DeleteTopics: error code %d", code)
	}
	var created bool
	for deadline := time.Now().Add(30 * time.Second); !created && time.Now().Before(deadline); {
		cr := kmsg.NewPtrCreateTopicsRequest()
		ct := kmsg.NewCreateTopicsRequestTopic()
		ct.Topic, ct.NumPartitions, ct.ReplicationFactor = r.topic, 2, 1
		cr.Topics = append(cr.Topics, ct)
		code := admin(t, r.brokers, cr).Topics[0].ErrorCode
		created = code == 0
		if !created {
			time.Sleep(200 * time.Millisecond) // the deletion is still under way
		}
	}
	if !created {
		t.Fatal("could not create the topic again")
	}
	again := records(t, 500_000, 6)
	pending := slices.Clone(again)
	for deadline := time.Now().Add(30 * time.Second); len(pending) > 0; {
		_, err := r.p.Publish(context.Background(), pending)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Publish to the re-created topic: %v", err)
		}
		t.Logf("publishing to the re-created topic: %v", err)
		// Settle, as the poller does, then send only what is missing; the read-back too may
		// fail while the new topic propagates, and then nothing is sent.
		rb, err := r.p.ReadBack(context.Background(), r.tail)
		if err != nil {
			t.Logf("reading the re-created topic back: %v", err)
			time.Sleep(200 * time.Millisecond)
			continue
		}
		found := map[int64]bool{}
		for _, f := range rb.Found {
			found[f.ID] = true
		}
		pending = slices.DeleteFunc(pending, func(s schema.Record) bool { return found[s.ID] })
		time.Sleep(200 * time.Millisecond)
	}
	rb := r.readBack(r.tail) // the tail of the old topic
	if rb.Rewound != 2 {
		t.Errorf("rewound = %d partitions, want both seen going back", rb.Rewound)
	}
	if got, want := ids(rb.Found), recIDs(again); !slices.Equal(got, want) {
		t.Errorf("found %v in the re-created topic, want %v", got, want)
	}
	keysOnce(t, r.brokers, r.topic, again)
}

// TestReadBackAfterThePartitionsGrew: partitions added to the topic are not in the tail; the
// read-back reads them from their start and finds our records there.
func TestReadBackAfterThePartitionsGrew(t *testing.T) {
	r := newReadBackRig(t, 2, nil)
	from := r.tail
	req := kmsg.NewPtrCreatePartitionsRequest()
	rt := kmsg.NewCreatePartitionsRequestTopic()
	rt.Topic, rt.Count = r.topic, 4
	req.Topics = append(req.Topics, rt)
	if code := admin(t, r.brokers, req).Topics[0].ErrorCode; code != 0 {
		t.Fatalf("CreatePartitions: error code %d", code)
	}
	// kafka-go sees the new partitions at its next metadata refresh: publish until a batch lands
	// on one of them.
	var all []schema.Record
	for base, deadline := int64(1), time.Now().Add(30*time.Second); ; base += 1_000_000 {
		recs := records(t, base, 40)
		w, err := r.p.Publish(context.Background(), recs)
		if err != nil {
			t.Fatalf("Publish: %v", err)
		}
		all = append(all, recs...)
		if w.Next[2] > 0 || w.Next[3] > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no record landed on the new partitions within 30 s")
		}
		time.Sleep(500 * time.Millisecond)
	}
	rb := r.readBack(from)
	if len(rb.Tail.Next) != 4 || rb.Tail.Next[2]+rb.Tail.Next[3] == 0 {
		t.Fatalf("tail after the read-back = %v, want 4 partitions, the new ones written", rb.Tail.Next)
	}
	if got, want := ids(rb.Found), recIDs(all); !slices.Equal(got, want) {
		t.Errorf("found %d records, want the %d published (on the old partitions and the new)", len(got), len(want))
	}
}

// TestReadBackTellsTenantsApart: two tenants publish to one topic with the same ce_source, over
// one shared Transport; each read-back takes only its own tenant's records (ce_tenant), and a
// record of ours without ce_tenant (written before tenants existed) is the default tenant's.
func TestReadBackTellsTenantsApart(t *testing.T) {
	r := newReadBackRig(t, 2, nil)
	transport, _, err := publisher.NewTransport(publisher.Config{Brokers: r.brokers, Topic: r.topic})
	if err != nil {
		t.Fatal(err)
	}
	acme := publisher.NewTestPublisher(t, publisher.Config{Brokers: r.brokers, Topic: r.topic, Tenant: "acme", Transport: transport, WriteTimeout: 5 * time.Second})
	from := r.tail
	mine, theirs := records(t, 1, 6), records(t, 100_000, 4)
	r.publish(mine[:3])
	if _, err := acme.Publish(context.Background(), theirs); err != nil {
		t.Fatal(err)
	}
	// A record of the default tenant written before ce_tenant existed: no such header.
	old := mine[3]
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.brokers...), kgo.DefaultProduceTopic(r.topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var hs []kgo.RecordHeader
	for _, h := range schema.AppendHeaders(nil, old, schema.DefaultSource, schema.DefaultTenant)[:schema.NumHeaders-1] {
		hs = append(hs, kgo.RecordHeader{Key: h.Key, Value: h.Value})
	}
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Key: old.Key(), Value: old.Raw, Headers: hs}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	r.publish(mine[4:])
	rb := r.readBack(from)
	if got, want := ids(rb.Found), recIDs(mine); !slices.Equal(got, want) {
		t.Errorf("the default tenant found %v, want its own %v", got, want)
	}
	if rb.Foreign != len(theirs) {
		t.Errorf("the default tenant counted %d records as another's, want acme's %d", rb.Foreign, len(theirs))
	}
	rb, err = acme.ReadBack(context.Background(), from)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(rb.Found), recIDs(theirs); !slices.Equal(got, want) {
		t.Errorf("acme found %v, want its own %v", got, want)
	}
	if rb.Foreign != len(mine) {
		t.Errorf("acme counted %d records as another's, want the default tenant's %d", rb.Foreign, len(mine))
	}
}
