// Package e2e runs scoreproxy between real producers and real receivers:
// Prometheus 2.42 and 3, vmagent and a Go model runner in front;
// single-node VictoriaMetrics, a VictoriaMetrics cluster, vmagent's
// multitenant handlers and a Prometheus 3 remote-write receiver behind; all
// on 127.0.0.1 (see internal/testenv). It also checks the deployment files users run with
// Docker (docker-compose.yml, deploy/, the Grafana dashboard, examples/)
// without a Docker engine: every file, port, URL and metric name they refer to.
package e2e

import (
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/scoreproxy/scoreproxy/internal/testenv"
)

// scoreproxyBinary is the binary TestMain built, or "" with buildErr set.
var (
	scoreproxyBinary string
	buildErr         error
	// touchOnce opens the product's sources from inside the test (see
	// testenv.TouchSources): go test logs file opens only once m.Run started.
	touchOnce sync.Once
	touchErr  error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "scoreproxy-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	scoreproxyBinary, buildErr = testenv.BuildScoreproxy(dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// scoreproxy returns the path of the scoreproxy binary built by TestMain; the
// test fails (never skips: the product must build) when the build failed.
func scoreproxy(t *testing.T) string {
	t.Helper()
	if buildErr != nil {
		t.Fatalf("building scoreproxy failed: %v", buildErr)
	}
	touchOnce.Do(func() { touchErr = testenv.TouchSources() })
	if touchErr != nil {
		t.Fatalf("open the product's sources: %v", touchErr)
	}
	return scoreproxyBinary
}

// scoreproxyBeforeVM starts VictoriaMetrics and, in front of it, scoreproxy
// with configFormat (whose one %s is VictoriaMetrics' URL), and waits until
// scoreproxy is ready: the opening of most end-to-end tests.
func scoreproxyBeforeVM(t *testing.T, configFormat string) (*testenv.VictoriaMetrics, *testenv.Scoreproxy) {
	t.Helper()
	bin := scoreproxy(t)
	vm := testenv.StartVictoriaMetrics(t)
	proxy := testenv.StartScoreproxy(t, bin, fmt.Sprintf(configFormat, vm.URL))
	proxy.WaitReady(t, 15*time.Second)
	return vm, proxy
}
