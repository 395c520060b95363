package main

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestDemoLiveViewGivesUpOnATopicItCannotRead(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	t.Setenv("FOLLOWPUB_KAFKA_BROKERS", addr)
	t.Setenv("FOLLOWPUB_KAFKA_WRITE_TIMEOUT", "1s")
	cfg, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	view := &liveView{w: io.Discard, start: time.Now()}

	began := time.Now()
	err = followTopic(context.Background(), cfg, view, io.Discard, time.Second)
	if err == nil {
		t.Fatal("the live view read a topic from a broker that does not exist")
	}
	for _, s := range []string{"topic wshoto.crm.follow.system", "FOLLOWPUB_KAFKA_BROKERS=" + addr, "check"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
	if took := time.Since(began); took > 10*time.Second {
		t.Fatalf("the live view took %v to give up, given 1 s", took)
	}

	// Stopped (Ctrl-C) while it waits: no error.
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	if err := followTopic(ctx, cfg, view, io.Discard, time.Minute); err != nil {
		t.Fatalf("the live view stopped by its context returned %v, want nil", err)
	}
}
