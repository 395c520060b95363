package ownership

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// TestRetryGroup: a retriable coordinator error (a fresh broker's "Not Coordinator For Group") is
// tried again, at most groupAttempts times; any other error, or an ended context, ends it at once.
func TestRetryGroup(t *testing.T) {
	saved := groupRetryWait
	groupRetryWait = [2]time.Duration{time.Millisecond, 2 * time.Millisecond}
	t.Cleanup(func() { groupRetryWait = saved })
	failing := func(err error, times int) (func() error, *int) {
		calls := 0
		return func() error {
			calls++
			if calls <= times {
				return err
			}
			return nil
		}, &calls
	}
	ctx := context.Background()

	f, calls := failing(kafka.NotCoordinatorForGroup, 2)
	if err := retryGroup(ctx, f); err != nil || *calls != 3 {
		t.Errorf("two Not Coordinator For Group answers, then an answer: err %v after %d calls, want nil after 3", err, *calls)
	}
	f, calls = failing(fmt.Errorf("describing: %w", kafka.GroupCoordinatorNotAvailable), 1000)
	if err := retryGroup(ctx, f); !errors.Is(err, kafka.GroupCoordinatorNotAvailable) || *calls != groupAttempts {
		t.Errorf("a coordinator never available: err %v after %d calls, want it after %d", err, *calls, groupAttempts)
	}
	f, calls = failing(kafka.GroupAuthorizationFailed, 1000)
	if err := retryGroup(ctx, f); !errors.Is(err, kafka.GroupAuthorizationFailed) || *calls != 1 {
		t.Errorf("an authorization failure: err %v after %d calls, want it after 1", err, *calls)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	f, calls = failing(kafka.NotCoordinatorForGroup, 1000)
	if err := retryGroup(cancelled, f); !errors.Is(err, kafka.NotCoordinatorForGroup) || *calls != 1 {
		t.Errorf("an ended context: err %v after %d calls, want the error after 1", err, *calls)
	}
}
