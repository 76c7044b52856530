// Package remotewrite owns the wire formats and the two HTTP ends of the proxy:
// the receive handler that accepts Prometheus remote write from producers, a
// streaming, allocation-free codec for the RW1 protobuf (checked against the
// gogo prompb types in tests), and the upstream client that sends snappy RW1 to
// VictoriaMetrics with the writer's auth and TLS options (or, with
// writer.debug, the DebugWriter that prints each request instead). The
// client posts remote write through its own HTTP/1.1 client where it can
// (h1.go) and through net/http otherwise; it can send zstd instead,
// negotiated as vmagent does (client_zstd.go),
// and ImportJSON turns the batches into VictoriaMetrics JSON lines for
// writer.output: import_json (importjson.go).
//
// It knows nothing about tenants or label rules: the handler hands each decoded
// request to a Processor, which the wiring in internal/app supplies.
//
// The handler's 2xx means that every sample of the request was forwarded or
// durably queued, except those the user's relabel_configs dropped: it answers
// 2xx only when the Processor took the whole request, and refuses with 400 a
// non-empty body that decodes to no series and no metadata as the message
// its Content-Type names (most often the other remote-write message: see
// ackrule.go). TestAckRule and FuzzAckRule check this against Prometheus'
// decoders.
package remotewrite
