// Package testenv finds, starts and stops the real programs the end-to-end
// tests run against (Prometheus 2.42 and 3, single-node VictoriaMetrics, a
// one-node VictoriaMetrics cluster, vmagent and the scoreproxy binary
// itself), and talks to them: remote-write pushes, VictoriaMetrics exports
// (per tenant through vmselect), Prometheus queries (floats and native
// histograms) and /metrics scrapes.
//
// Every process listens on a free 127.0.0.1 port chosen at run time, keeps its
// data in the test's t.TempDir(), is waited for with a bounded deadline, and is
// stopped by process group in t.Cleanup (SIGTERM, then SIGKILL). Its output is
// captured and printed when the test fails. A binary that cannot be found
// skips the test on a developer machine and fails it under CI=true, where
// .ci/run is expected to have installed it.
package testenv
