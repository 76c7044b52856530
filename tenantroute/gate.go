package tenantroute

import (
	"context"
	"errors"
	"sync"
)

// ErrRefusedElsewhere is what a router returns when it was ready to send but
// another router processing the same request (another writer) refused it:
// nothing of a refused request may be forwarded anywhere.
var ErrRefusedElsewhere = errors.New("tenantroute: the request was refused by another writer")

// SendGate makes the routers of several writers, each processing its copy
// of one request, send only when every one of them has routed and
// authorized it. Without it, a writer whose permit check passed could
// forward the request before another writer refused it with 403.
type SendGate struct {
	mu      sync.Mutex
	missing int  // guarded by mu: votes not yet cast
	ok      bool // guarded by mu: no vote was against
	all     chan struct{}
}

// NewSendGate returns a gate for n routers; each must vote exactly once
// (Router.Process does, on every path, when ctx carries the gate).
func NewSendGate(n int) *SendGate {
	return &SendGate{missing: n, ok: true, all: make(chan struct{})}
}

type gateKey struct{}

// WithSendGate returns ctx carrying g for the routers that process it.
func WithSendGate(ctx context.Context, g *SendGate) context.Context {
	return context.WithValue(ctx, gateKey{}, g)
}

func sendGateFrom(ctx context.Context) *SendGate {
	g, _ := ctx.Value(gateKey{}).(*SendGate)
	return g
}

// vote casts one router's vote and waits for the others; it reports
// whether every vote was for sending.
func (g *SendGate) vote(ok bool) bool {
	g.mu.Lock()
	g.ok = g.ok && ok
	g.missing--
	if g.missing == 0 {
		close(g.all)
	}
	g.mu.Unlock()
	<-g.all
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.ok
}

// gateVote is one Process call's part in the gate of its context: pass
// before sending, and finish (deferred) to vote on the paths that return
// without sending. Without a gate both do nothing.
type gateVote struct {
	gate  *SendGate
	voted bool
}

// pass votes for sending and reports whether every router did.
func (v *gateVote) pass() bool {
	if v.gate == nil {
		return true
	}
	v.voted = true
	return v.gate.vote(true)
}

// finish votes by the outcome of a Process call that did not reach pass:
// a refusal or error votes against, nothing to send votes for.
func (v *gateVote) finish(err error) {
	if v.gate != nil && !v.voted {
		v.gate.vote(err == nil)
	}
}
