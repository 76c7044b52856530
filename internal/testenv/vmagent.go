package testenv

import "testing"

// StartVMAgent starts vmagent (v1.128.0 or newer) with
// -enableMultitenantHandlers, so that it accepts /insert/<tenant>/... and
// /insert/multitenant/... like vminsert and stores the tenant as
// vm_account_id/vm_project_id labels, remote-writing everything it receives to
// remoteWriteURL. Its persistent queue lives in a t.TempDir().
//
// What it does with the tenant, as in its app/vmagent sources: on
// /insert/A:B/... it replaces any vm_account_id/vm_project_id labels of the
// series by A and B (B defaults to 0); on /insert/multitenant/... it leaves
// the series' labels as they are (and adds none when they are missing).
func StartVMAgent(t testing.TB, remoteWriteURL string, extraArgs ...string) *Process {
	t.Helper()
	bin := VMAgentTool.Require(t)
	queue := t.TempDir()
	return Start(t, Spec{
		Name: "vmagent",
		Path: bin,
		Args: func(addr string) []string {
			return append([]string{
				"-httpListenAddr=" + addr,
				"-enableMultitenantHandlers",
				"-remoteWrite.url=" + remoteWriteURL,
				"-remoteWrite.tmpDataPath=" + queue,
				// VictoriaMetrics 1.79 predates the zstd VictoriaMetrics
				// remote-write protocol: speak plain Prometheus remote write.
				"-remoteWrite.forcePromProto=true",
				"-remoteWrite.flushInterval=100ms",
				"-loggerLevel=INFO",
			}, extraArgs...)
		},
		ReadyPath: "/health",
	})
}
