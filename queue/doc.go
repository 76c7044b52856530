// Package queue is scoreproxy's durable per-endpoint queue: every upstream
// block is appended to one fsynced segment log shared by all endpoints
// (concurrent writers, whatever their endpoint, share one fsync) before the
// producer is answered, so an acknowledged sample survives an upstream
// outage, a crash or SIGKILL. One delivery worker per endpoint forwards its
// blocks in order through the upstream client, grouping the consecutive
// blocks already queued into one request (splice.go), retrying with
// exponential backoff and jitter (cut short by Wake, which the upstream's
// health check calls when it answers again), and moves blocks the upstream
// rejects as bad to a readable rejected-data file.
//
// Disk. Options.MaxDiskBytes bounds the disk undelivered data holds; a
// sealed segment counts whole while any endpoint needs a record in it.
// Beyond the bound Send answers 429. Because one stalled endpoint holds every
// segment its records are in, an endpoint holding more than half of the
// bound is refused alone (429 naming it) while another endpoint sent data in
// the last minute holds at most half: the others keep the other half. When
// every active endpoint is stalled, they share the whole bound. A write that
// fails (the disk is full) is answered 503 and cut back; the segment it
// failed in is sealed once it holds records, so that its space comes back
// as soon as they are delivered, and a worker closes the segment it reads
// whenever it has nothing left to read, so a deleted segment's space is
// freed at once.
//
// Damage. Each segment has an index of the records committed to it, so
// damage found at start-up or while delivering is reported exactly in the
// blocks and samples that will never be delivered, per endpoint (log line
// and scoreproxy_queue_lost_blocks_total, _lost_samples_total).
//
// It implements tenantroute.Sender structurally and imports only remotewrite.
// The on-disk format is described in format.go.
package queue
