// Package pollertest holds what tests of poller.Store implementations share: an in-memory Store
// and StoreSuite, the one test suite every Store must pass.
package pollertest
