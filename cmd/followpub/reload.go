package main

import (
	"context"
	"os"
	"os/signal"
	"reflect"
	"slices"
	"syscall"

	"github.com/segmentio/kafka-go"
)

// poll is one tenant's poller running in its goroutine (STATE_STORE=file).
type poll struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// pollTenants is `run` with STATE_STORE=file (not --once): every tenant polls in its own
// goroutine until ctx ends. SIGHUP reads TENANTS_FILE again (reload).
func (s *service) pollTenants(ctx context.Context) error {
	hup := s.hangups()
	polls := map[string]*poll{}
	for _, t := range s.tenantList() {
		polls[t.conf.ID] = s.startPoll(ctx, t)
	}
	for {
		select {
		case <-ctx.Done():
			for _, p := range polls {
				<-p.done
			}
			return nil
		case <-hup:
			s.reload(ctx, polls)
		}
	}
}

// hangups returns the channel of SIGHUPs (nil, which never delivers, when run did not ask for them).
func (s *service) hangups() <-chan os.Signal { return s.hup }

// notifyHangups makes SIGHUP a request to read TENANTS_FILE again rather than the end of the
// process; stop undoes it.
func notifyHangups() (hup chan os.Signal, stop func()) {
	hup = make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	return hup, func() { signal.Stop(hup) }
}

// startPoll runs t's poller until ctx ends or the tenant is stopped.
func (s *service) startPoll(ctx context.Context, t *tenantRun) *poll {
	tctx, cancel := context.WithCancel(ctx)
	p := &poll{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		_ = t.run(tctx, false) // Run returns nil: a failed cycle is logged and retried
	}()
	return p
}

// reload reads TENANTS_FILE again: tenants added start, removed ones stop (their state stays in
// its file, their series leave /metrics), changed ones restart with their new settings. A file
// that does not load changes nothing, and the log says why. A tenant that cannot be opened (its
// state file locked by another process, say) is logged and left out.
func (s *service) reload(ctx context.Context, polls map[string]*poll) {
	if s.cfg.TenantsFile == "" {
		s.log.Info("SIGHUP: no FOLLOWPUB_TENANTS_FILE to read again; nothing changes")
		return
	}
	next, err := s.cfg.tenantConfs()
	if err != nil {
		s.log.Error("SIGHUP: reading FOLLOWPUB_TENANTS_FILE again failed; the running tenants go on unchanged", "tenants_file", s.cfg.TenantsFile, "err", err)
		return
	}
	opened, added, removed, changed, failed := s.applyTenants(next, polls)
	for _, t := range opened {
		if s.serving.Load() {
			go t.status.watchState(ctx, t)
		}
		polls[t.conf.ID] = s.startPoll(ctx, t)
	}
	s.log.Info("SIGHUP: FOLLOWPUB_TENANTS_FILE read again", "tenants", len(polls), "added", added, "removed", removed, "changed", changed, "failed", failed)
}

// applyTenants makes the open tenants those of next: removed and changed ones stop (polls: the
// file store's running polls, nil with the group's) and removed ones' series leave /metrics;
// added and changed ones open, over a new Kafka transport if their topics need one. It returns
// the tenants it opened, in next's order, and what changed; a tenant that cannot be opened is
// logged and left out (failed).
func (s *service) applyTenants(next []tenantConf, polls map[string]*poll) (opened []*tenantRun, added, removed, changed, failed []string) {
	if s.mask != nil {
		s.mask.add(secretsOf(next))
	}
	added, removed, changed = diffTenants(s.tenantList(), next)
	for _, id := range append(slices.Clone(removed), changed...) {
		s.stopTenant(id, polls)
	}
	for _, id := range removed {
		s.metrics.forget(id)
	}
	if !s.covers(next) {
		if err := s.newTransport(next); err != nil {
			s.log.Error("SIGHUP: a Kafka transport for the new topics could not be made", "err", err)
		}
	}
	for _, tc := range next {
		if s.tenant(tc.ID) != nil {
			continue
		}
		t, err := s.openTenant(tc)
		if err != nil {
			s.log.Error("SIGHUP: the tenant could not be started", "tenant", tc.ID, "err", err)
			failed = append(failed, tc.ID)
			continue
		}
		s.mu.Lock()
		s.tenants = append(s.tenants, t)
		s.mu.Unlock()
		opened = append(opened, t)
	}
	s.sortTenants(next)
	s.closeUnusedTransports()
	return opened, added, removed, changed, failed
}

// closeUnusedTransports closes the connections of every Kafka transport but the current one
// that no open tenant uses any more: a reload that added topics left the old one behind.
func (s *service) closeUnusedTransports() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.transports = slices.DeleteFunc(s.transports, func(tr *kafka.Transport) bool {
		if tr == s.transport || slices.ContainsFunc(s.tenants, func(t *tenantRun) bool { return t.kafka == tr }) {
			return false
		}
		tr.CloseIdleConnections()
		return true
	})
}

// diffTenants compares the tenants running with next, by id: added are only in next, removed
// only running, changed in both with other settings. Removed is sorted; the others are in next's
// order.
func diffTenants(running []*tenantRun, next []tenantConf) (added, removed, changed []string) {
	prev := map[string]tenantConf{}
	for _, t := range running {
		prev[t.conf.ID] = t.conf
	}
	keep := map[string]bool{}
	for _, tc := range next {
		keep[tc.ID] = true
		old, ok := prev[tc.ID]
		switch {
		case !ok:
			added = append(added, tc.ID)
		case !reflect.DeepEqual(old, tc):
			changed = append(changed, tc.ID)
		}
	}
	for id := range prev {
		if !keep[id] {
			removed = append(removed, id)
		}
	}
	slices.Sort(removed)
	return added, removed, changed
}

// stopTenant stops tenant id's poller after its batch in flight and closes it.
func (s *service) stopTenant(id string, polls map[string]*poll) {
	if p := polls[id]; p != nil { // nil with STATE_STORE=kafka: the tenant runs in the group
		p.cancel()
		<-p.done
		delete(polls, id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tenants = slices.DeleteFunc(s.tenants, func(t *tenantRun) bool {
		if t.conf.ID == id {
			t.close()
			return true
		}
		return false
	})
}

// sortTenants puts the tenants in the order of tcs (the file's), for /status.
func (s *service) sortTenants(tcs []tenantConf) {
	order := map[string]int{}
	for i, tc := range tcs {
		order[tc.ID] = i
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	slices.SortStableFunc(s.tenants, func(a, b *tenantRun) int { return order[a.conf.ID] - order[b.conf.ID] })
}
