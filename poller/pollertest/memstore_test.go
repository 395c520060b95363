package pollertest

import (
	"testing"

	"github.com/followpub/followpub/poller"
)

func TestMemStore(t *testing.T) {
	StoreSuite(t, func(t *testing.T) func() (poller.Store, func()) {
		m := &MemStore{}
		return func() (poller.Store, func()) { return m, func() {} }
	})
}
