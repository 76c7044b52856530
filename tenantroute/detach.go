package tenantroute

import "context"

// sendContext returns the context of a request's upstream sends:
// context.Background, not the producer's request context.
//
// Upstream sends outlive the producer's connection: a batch may lead a
// coalesced group carrying other producers' batches (coalesce.go), so one
// producer hanging up must not abort the group; and a started upstream
// request is better finished (the writer's timeout bounds it) than cut
// mid-body. It is also cheaper: each send's timeout context no longer
// registers with the request's cancelable context (about 3% of split mode's
// CPU).
//
// It carries none of the request's values either: nothing below a Sender
// reads any (the SendGate and the auth Permit are read from the request's
// context before sending). If a Sender ever needs them, use
// context.WithoutCancel(ctx), at one allocation per request. A context kept
// in the pooled work is not safe: net/http goes on using a request's context
// after the request returned (a dial it started continues in the background).
func sendContext(context.Context) context.Context { return context.Background() }
