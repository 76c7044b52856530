package tenantroute

import (
	"strconv"
	"strings"
	"testing"
)

// FuzzParseTenant checks tenant parsing against strconv: ParseTenant
// accepts exactly "A" and "A:B" with base-10 uint32s, and its result
// round-trips through String; ParseTenantPattern accepts exactly "*",
// "A:*" and the tenants; parseLabelID (how vminsert reads a tenant label)
// accepts exactly the base-10 uint32s without sign.
func FuzzParseTenant(f *testing.F) {
	for _, s := range []string{"0", "0:0", "5:7", "4294967295:4294967295", "4294967296", "1:2:3", ":", "5:", ":5",
		"-1", "+1", "007", "multitenant", "*", "5:*", "*:5", " 5", "1_000", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		account, project, hasProject := strings.Cut(s, ":")
		uint32OK := func(v string) bool { _, err := strconv.ParseUint(v, 10, 32); return err == nil }
		wantOK := uint32OK(account) && (!hasProject || uint32OK(project))
		tenant, err := ParseTenant(s)
		if (err == nil) != wantOK {
			t.Fatalf("ParseTenant(%q): error %v, want ok=%v", s, err, wantOK)
		}
		if err == nil {
			back, err := ParseTenant(tenant.String())
			if err != nil || back != tenant {
				t.Fatalf("ParseTenant(%q) = %v does not round-trip: %v, %v", s, tenant, back, err)
			}
		}
		pattern, err := ParseTenantPattern(s)
		wantPattern := wantOK || s == "*" || (hasProject && project == "*" && uint32OK(account))
		if (err == nil) != wantPattern {
			t.Fatalf("ParseTenantPattern(%q): error %v, want ok=%v", s, err, wantPattern)
		}
		if err == nil && wantOK && !pattern.Match(tenant) {
			t.Fatalf("pattern %q does not match its own tenant %v", s, tenant)
		}
		// parseLabelID may refuse more than strconv (values of over 10
		// digits with leading zeros), but what it accepts strconv reads the
		// same; the tenant check reads the labels both ways (labelTenants).
		id, ok := parseLabelID([]byte(s))
		if n, err := strconv.ParseUint(s, 10, 32); ok && (err != nil || uint32(n) != id) {
			t.Fatalf("parseLabelID(%q) = %d, strconv: %d, %v", s, id, n, err)
		}
		if a, b := labelTenants([]byte(s), []byte(s)); ok && (a != b || a.AccountID != id) {
			t.Fatalf("labelTenants(%q) = %v, %v; want both %d", s, a, b, id)
		}
	})
}
