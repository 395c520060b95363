// Package kubernetes holds followpub's Kubernetes manifests (followpub.yaml, and
// secret.example.yaml for the keys of its Secret) and their test, which decodes every document
// strictly with the Kubernetes API types and holds the manifests to what the binary reads.
//
// It is a Go module of its own so that the Kubernetes API types never become dependencies of
// followpub itself. `make test` runs its test (cd deploy/kubernetes && go test ./...).
package kubernetes
