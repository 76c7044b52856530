// Package queue is scoreproxy's durable per-endpoint queue: every upstream
// block is appended to one fsynced segment log shared by all endpoints
// (concurrent writers, whatever their endpoint, share one fsync) before the
// producer is answered, so an acknowledged sample survives an upstream
// outage, a crash or SIGKILL. One delivery worker per endpoint forwards its
// blocks in order through the upstream client, grouping the consecutive
// blocks already queued into one request (splice.go), retrying with
// exponential backoff and jitter, and moves blocks the upstream rejects as
// bad to a readable rejected-data file.
//
// It implements tenantroute.Sender structurally and imports only remotewrite.
// The on-disk format is described in format.go.
package queue
