// Package modroot finds the root of the followpub module (the directory holding go.mod), for the
// tools and tests that need the source tree's files: scripts/kafka, the compose file, cmd/followpub
// to build. The service never uses it.
package modroot

import (
	"errors"
	"os"
	"path/filepath"
)

// Dir walks up from the working directory to the directory holding go.mod.
func Dir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory: run from the followpub repository")
		}
		dir = parent
	}
}
