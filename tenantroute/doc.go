// Package tenantroute decides where every series goes: it parses tenant ids,
// resolves the tenant of each series from the writer mode (single-node, fixed
// tenant_id, multitenant, or multitenant split into per-tenant requests),
// raises the writer docs' tenant warnings, and groups the rewritten series
// into one encoded batch per upstream endpoint. It does no I/O itself: batches
// go to a Sender (the upstream client or the durable queue).
package tenantroute
