package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

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
	return StartVMAgentConfig(t, VMAgentConfig{
		RemoteWriteURL:      remoteWriteURL,
		MultitenantHandlers: true,
		// VictoriaMetrics 1.79 predates the zstd VictoriaMetrics
		// remote-write protocol: speak plain Prometheus remote write.
		ForcePromProto: true,
		ExtraArgs:      extraArgs,
	})
}

// VMAgentConfig says how StartVMAgentConfig runs vmagent. The zero value of
// every field but RemoteWriteURL is vmagent's default.
type VMAgentConfig struct {
	// RemoteWriteURL is -remoteWrite.url.
	RemoteWriteURL string
	// ScrapeConfig, when set, is the text of the -promscrape.config file.
	ScrapeConfig string
	// MultitenantHandlers sets -enableMultitenantHandlers.
	MultitenantHandlers bool
	// ForcePromProto sets -remoteWrite.forcePromProto: Prometheus remote
	// write (snappy) from the first request. Without it vmagent starts with
	// the VictoriaMetrics protocol (zstd) and downgrades to Prometheus remote
	// write for good when a zstd request is answered 400 or 415.
	ForcePromProto bool
	// ExtraArgs are appended to the command line.
	ExtraArgs []string
}

// StartVMAgentConfig starts vmagent (v1.128.0 or newer) as cfg says, with
// its persistent queue in a t.TempDir(), flushing every 100ms, and waits for
// GET /health.
func StartVMAgentConfig(t testing.TB, cfg VMAgentConfig) *Process {
	t.Helper()
	bin := VMAgentTool.Require(t)
	dir := t.TempDir()
	args := []string{
		"-remoteWrite.url=" + cfg.RemoteWriteURL,
		"-remoteWrite.tmpDataPath=" + filepath.Join(dir, "queue"),
		"-remoteWrite.flushInterval=100ms",
		"-loggerLevel=INFO",
	}
	if cfg.ScrapeConfig != "" {
		path := filepath.Join(dir, "scrape.yml")
		if err := os.WriteFile(path, []byte(cfg.ScrapeConfig), 0o644); err != nil {
			t.Fatalf("write vmagent scrape config: %v", err)
		}
		args = append(args, "-promscrape.config="+path)
	}
	if cfg.MultitenantHandlers {
		args = append(args, "-enableMultitenantHandlers")
	}
	if cfg.ForcePromProto {
		args = append(args, "-remoteWrite.forcePromProto=true")
	}
	args = append(args, cfg.ExtraArgs...)
	return Start(t, Spec{
		Name: "vmagent",
		Path: bin,
		Dir:  dir,
		Args: func(addr string) []string {
			return append([]string{"-httpListenAddr=" + addr}, args...)
		},
		ReadyPath: "/health",
	})
}
