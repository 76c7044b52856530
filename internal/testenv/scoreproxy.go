package testenv

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ScoreproxyPackage is the import path of the scoreproxy command.
const ScoreproxyPackage = "github.com/scoreproxy/scoreproxy/cmd/scoreproxy"

// BuildScoreproxy builds the scoreproxy binary into dir with
// `go build -o DIR/scoreproxy ./cmd/scoreproxy` run at the module root, and
// returns its path. It is meant for TestMain, once per test binary.
func BuildScoreproxy(dir string) (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "scoreproxy")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/scoreproxy")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stdout = &stderr
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build -o %s ./cmd/scoreproxy: %v\n%s", out, err, stderr.String())
	}
	return out, nil
}

// ModuleRoot returns the folder holding this module's go.mod, found by
// walking up from the working directory (a package folder under go test).
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
			bytes.Contains(data, []byte("module github.com/scoreproxy/scoreproxy")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod of github.com/scoreproxy/scoreproxy not found above the working directory")
		}
		dir = parent
	}
}

// Scoreproxy is a running scoreproxy.
type Scoreproxy struct {
	*Process
	// ConfigPath is the config file it was started with.
	ConfigPath string
}

// StartScoreproxy starts the scoreproxy binary bin with the YAML config
// config, in which every {{LISTEN}} is replaced by the 127.0.0.1:PORT chosen
// for it (write `listen: {{LISTEN}}`), and waits for GET /health.
func StartScoreproxy(t testing.TB, bin, config string) *Scoreproxy {
	t.Helper()
	return StartScoreproxyTLS(t, bin, config, nil)
}

// StartScoreproxyTLS is StartScoreproxy for a config with server.tls_*: its
// URL is https://ADDR and readiness is polled with the client TLS config tc
// (the CA that signed the server certificate, and a client certificate for
// mTLS). With a nil tc it is StartScoreproxy.
func StartScoreproxyTLS(t testing.TB, bin, config string, tc *tls.Config) *Scoreproxy {
	t.Helper()
	if !strings.Contains(config, "{{LISTEN}}") {
		t.Fatal("StartScoreproxy: the config must contain `listen: {{LISTEN}}`")
	}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "scoreproxy.yaml")
	p := Start(t, Spec{
		Name: "scoreproxy",
		Path: bin,
		Dir:  dir,
		Args: func(addr string) []string {
			text := strings.ReplaceAll(config, "{{LISTEN}}", addr)
			if err := os.WriteFile(cfgPath, []byte(text), 0o644); err != nil {
				t.Fatalf("write scoreproxy config: %v", err)
			}
			return []string{"-config", cfgPath}
		},
		ReadyPath:    "/health",
		ReadyTimeout: 20 * time.Second,
		TLS:          tc,
	})
	return &Scoreproxy{Process: p, ConfigPath: cfgPath}
}

// WaitReady polls GET /ready until it answers 200 (the upstream's health_path
// answered) or timeout passes; the test fails then.
func (s *Scoreproxy) WaitReady(t testing.TB, timeout time.Duration) {
	t.Helper()
	if err := s.waitReady("/ready", timeout); err != nil {
		t.Fatalf("scoreproxy: %v", err)
	}
}

// Metrics scrapes scoreproxy's /metrics.
func (s *Scoreproxy) Metrics(ctx context.Context) (Metrics, error) {
	return ScrapeMetrics(ctx, s.URL+"/metrics")
}

// TouchSources opens every file the scoreproxy binary is built from (the
// module's non-test .go files, go.mod and go.sum). The binary is built by a
// `go build` child process, whose reads go test does not see; opening them
// from the test process makes go test's result cache depend on them, so a
// plain `go test ./...` reruns the end-to-end tests whenever the product
// changes instead of replaying an old pass.
func TouchSources() error {
	root, err := ModuleRoot()
	if err != nil {
		return err
	}
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "e2e") {
				return filepath.SkipDir
			}
			return nil
		}
		if (strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go")) || name == "go.mod" || name == "go.sum" {
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			return f.Close()
		}
		return nil
	})
}
