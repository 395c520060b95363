package main

import (
	"os"
	"strconv"
	"testing"
)

// TestInstanceID: FOLLOWPUB_INSTANCE_ID names the instance to the group (and so in watermark
// show's owner); unset, the host name and pid do.
func TestInstanceID(t *testing.T) {
	t.Setenv("FOLLOWPUB_INSTANCE_ID", "replica-2")
	cfg, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if got := instanceName(cfg); got != "replica-2" {
		t.Errorf("with FOLLOWPUB_INSTANCE_ID=replica-2 the instance is named %q", got)
	}
	t.Setenv("FOLLOWPUB_INSTANCE_ID", "")
	if cfg, err = loadConfig(); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if got, want := instanceName(cfg), host+"/"+strconv.Itoa(os.Getpid()); got != want {
		t.Errorf("without FOLLOWPUB_INSTANCE_ID the instance is named %q, want %q", got, want)
	}
}
