package tenantroute

import (
	"context"
	"sync"
	"testing"

	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// ctxSender records what the context of each send looked like.
type ctxSender struct {
	mu    sync.Mutex
	errs  []error
	dones []bool
}

func (c *ctxSender) Send(ctx context.Context, url string, _ []byte, _ remotewrite.BatchStats) remotewrite.SendResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.errs = append(c.errs, ctx.Err())
	c.dones = append(c.dones, ctx.Done() != nil)
	return remotewrite.SendResult{StatusCode: 204, URL: url}
}

// TestSendsOutliveTheProducersContext: a producer that hung up (its request
// context cancelled) does not abort the upstream sends it started, in every
// mode, and cannot: the sends' context has no cancellation at all.
func TestSendsOutliveTheProducersContext(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   Options
		format map[string]string
	}{
		{"pass-through", Options{BaseURL: base, TenantID: "multitenant"}, nil},
		{"metric_format", Options{BaseURL: base, TenantID: "multitenant"}, seedFormat},
		{"split", Options{BaseURL: base, TenantID: "multitenant", SplitTenants: true}, seedFormat},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &ctxSender{}
			r := newTestRouter(t, tc.opts, tc.format, s)
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if err := r.Process(ctx, decoded(t, anomalyRequest(20, 3)), ""); err != nil {
				t.Fatal(err)
			}
			if len(s.errs) == 0 {
				t.Fatal("nothing was sent")
			}
			for i := range s.errs {
				if s.errs[i] != nil || s.dones[i] {
					t.Errorf("send %d: ctx.Err() = %v, cancelable %v; want nil, false", i, s.errs[i], s.dones[i])
				}
			}
		})
	}
}
