package tenantroute

import (
	"cmp"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/scoreproxy/scoreproxy/remotewrite"
)

func TestTenantPatterns(t *testing.T) {
	tests := []struct {
		pattern      string
		allow, block []Tenant
		err          string
	}{
		{pattern: "*", allow: []Tenant{{}, {5, 0}, {1 << 31, 7}}},
		{pattern: "5:*", allow: []Tenant{{5, 0}, {5, 9}}, block: []Tenant{{6, 0}, {0, 5}}},
		{pattern: "5", allow: []Tenant{{5, 0}}, block: []Tenant{{5, 1}}},
		{pattern: "5:3", allow: []Tenant{{5, 3}}, block: []Tenant{{5, 0}, {3, 5}}},
		{pattern: "5:3:*", err: "is not a tenant pattern"},
		{pattern: "*:1", err: "is not a tenant pattern"},
		{pattern: "", err: "is not a tenant pattern"},
		{pattern: "-1", err: "is not a tenant pattern"},
		{pattern: "4294967296:*", err: "is not a tenant pattern"},
	}
	for _, tt := range tests {
		p, err := ParseTenantPattern(tt.pattern)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: error %v, want %q", tt.pattern, err, tt.err)
			}
			continue
		}
		if want := map[string]string{"5": "5:0"}[tt.pattern]; err != nil || p.String() != cmp.Or(want, tt.pattern) {
			t.Errorf("%q: parsed as %q, %v", tt.pattern, p, err)
		}
		permit := NewPermit("c", []TenantPattern{p})
		for _, a := range tt.allow {
			if !permit.Allows(a) {
				t.Errorf("%q does not allow %s", tt.pattern, a)
			}
		}
		for _, b := range tt.block {
			if permit.Allows(b) {
				t.Errorf("%q allows %s", tt.pattern, b)
			}
		}
	}
}

// TestTenantRateBucket drives the token bucket with a fake clock.
func TestTenantRateBucket(t *testing.T) {
	now := time.Unix(0, 0)
	tr := NewTenantRate(100)
	tr.now = func() time.Time { return now }
	five, six := Tenant{5, 0}, Tenant{6, 0}
	steps := []struct {
		advance    time.Duration
		counts     []tenantCount
		retryAfter string // "" = admitted
	}{
		{0, []tenantCount{{five, 60}}, ""},
		{0, []tenantCount{{five, 60}}, "1"},                     // 40 left
		{0, []tenantCount{{six, 10}, {five, 50}}, "1"},          // refused whole: six not charged
		{200 * time.Millisecond, []tenantCount{{five, 60}}, ""}, // 40+20 = 60
		{0, []tenantCount{{six, 100}}, ""},                      // six still full
		{0, []tenantCount{{five, 500}}, "1"},                    // empty bucket: needs a full one
		{time.Second, []tenantCount{{five, 500}}, ""},           // full: passes, 400 in debt
		{time.Second, []tenantCount{{five, 1}}, "4"},            // -300: 4 s to one sample
	}
	for i, s := range steps {
		now = now.Add(s.advance)
		err := tr.admit(s.counts)
		var se *remotewrite.StatusError
		switch {
		case s.retryAfter == "" && err != nil:
			t.Errorf("step %d: %v, want admitted", i, err)
		case s.retryAfter != "" && (!errors.As(err, &se) || se.Code != http.StatusTooManyRequests || se.RetryAfter != s.retryAfter):
			t.Errorf("step %d: %v, want 429 with Retry-After %s", i, err, s.retryAfter)
		}
	}
}

// TestAuthorizeBatchReadsLabelsAsVminsert: a tenant label spelled with
// leading zeros beyond 10 digits (which the router reads as 0, and
// strconv.ParseUint, as vminsert, as 6) does not pass a 0:0-only permit.
func TestAuthorizeBatchReadsLabelsAsVminsert(t *testing.T) {
	permit := NewPermit("zero", []TenantPattern{{Tenant: Tenant{0, 0}}})
	for _, tt := range []struct {
		account string
		wantErr string
	}{
		{"0", ""},
		{"00000000000", ""},
		{"00000000006", "tenant 6:0"},
		{"6", "tenant 6:0"},
		{"x", ""}, // vminsert: 0
	} {
		labels := []remotewrite.Label{{Name: []byte("__name__"), Value: []byte("y")},
			{Name: []byte(AccountLabel), Value: []byte(tt.account)}}
		buf := remotewrite.AppendSeries(nil, labels, &remotewrite.Series{})
		err := authorizeBatch(permit, buf)
		if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("vm_account_id=%q: %v, want %q", tt.account, err, tt.wantErr)
		}
	}
}
