package tenantroute

import (
	"context"
	"time"
)

// detachedContext is a request's context without its cancellation, as
// context.WithoutCancel makes it, but kept in the pooled work so that
// detaching allocates nothing.
//
// Upstream sends outlive the producer's connection: a batch may lead a
// coalesced group carrying other producers' batches (coalesce.go), so one
// producer hanging up must not abort the group; and a started upstream
// request is better finished (the writer's timeout bounds it) than cut
// mid-body. It is also cheaper: each send's timeout context no longer
// registers with the request's cancelable context (about 3% of split mode's
// CPU). Values (the SendGate, for one) are still the request's.
type detachedContext struct{ parent context.Context }

func (detachedContext) Deadline() (time.Time, bool) { return time.Time{}, false }
func (detachedContext) Done() <-chan struct{}       { return nil }
func (detachedContext) Err() error                  { return nil }
func (d *detachedContext) Value(key any) any        { return d.parent.Value(key) }
