package tenantroute

import (
	"fmt"
	"strconv"
	"strings"
)

// Label names vminsert reads the tenant from on its multitenant endpoint.
const (
	AccountLabel = "vm_account_id"
	ProjectLabel = "vm_project_id"
)

// Multitenant is the tenant_id value that selects vminsert's multitenant endpoint.
const Multitenant = "multitenant"

// Tenant is a VictoriaMetrics cluster tenant.
type Tenant struct {
	AccountID, ProjectID uint32
}

// String returns the canonical "accountID:projectID" form used in URLs.
func (t Tenant) String() string {
	return strconv.FormatUint(uint64(t.AccountID), 10) + ":" + strconv.FormatUint(uint64(t.ProjectID), 10)
}

// ParseTenant parses "accountID" or "accountID:projectID", each a uint32 in
// base 10, as vminsert does for the tenant in a URL path.
func ParseTenant(s string) (Tenant, error) {
	account, project, hasProject := strings.Cut(s, ":")
	a, err := strconv.ParseUint(account, 10, 32)
	if err != nil {
		return Tenant{}, tenantSyntaxError(s)
	}
	t := Tenant{AccountID: uint32(a)}
	if hasProject {
		p, err := strconv.ParseUint(project, 10, 32)
		if err != nil {
			return Tenant{}, tenantSyntaxError(s)
		}
		t.ProjectID = uint32(p)
	}
	return t, nil
}

func tenantSyntaxError(s string) error {
	return fmt.Errorf(`%q is not a tenant: write "<accountID>" or "<accountID>:<projectID>" with numbers 0..4294967295 (e.g. "0:0"), or "multitenant"`, s)
}

// parseLabelID parses a vm_account_id / vm_project_id label value the way
// vminsert does: a uint32 in base 10, anything else counts as 0. ok is false
// for a value vminsert would have replaced by 0.
func parseLabelID(v []byte) (id uint32, ok bool) {
	if len(v) == 0 {
		return 0, false
	}
	var n uint64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		// Leading zeros do not count against the range, as in
		// strconv.ParseUint: "0000000000005" is 5.
		if n = n*10 + uint64(c-'0'); n > 1<<32-1 {
			return 0, false
		}
	}
	return uint32(n), true
}
