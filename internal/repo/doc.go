// Package repo locates the followpub source tree for the tools and tests that need its files
// (scripts/kafka, the compose file, cmd/followpub to build). It is not used by the service.
package repo
