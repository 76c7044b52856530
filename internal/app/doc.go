// Package app wires scoreproxy's packages into a running proxy: receiver ->
// tenantroute -> [queue ->] upstream sender, the HTTP routes (/api/v1/write,
// /health, /ready, /metrics) and the http.Server life cycle. cmd/scoreproxy
// keeps flags, signals and logging and calls Serve; `go run ./bench demo`
// calls ServeListener, so the demo runs the binary's exact code paths.
package app
