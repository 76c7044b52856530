package testenv

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Bounds of a process' life in a test.
const (
	// DefaultReadyTimeout bounds the wait for a started process to answer
	// its readiness URL.
	DefaultReadyTimeout = 60 * time.Second
	// StopTimeout is how long a process gets after SIGTERM before SIGKILL.
	StopTimeout = 10 * time.Second
	// startAttempts bounds the restarts after a port picked free was taken by
	// someone else before the process could bind it.
	startAttempts = 3
)

// Spec says how to start one process.
type Spec struct {
	// Name labels the process in logs and errors, e.g. "victoria-metrics".
	Name string
	// Path is the executable.
	Path string
	// Args returns the command line for the listen address addr
	// ("127.0.0.1:PORT"), chosen free at run time.
	Args func(addr string) []string
	// Dir is the working directory; t.TempDir() when empty.
	Dir string
	// Env is added to the test's environment.
	Env []string
	// ReadyPath is requested with GET on addr until it answers 200,
	// e.g. "/health" or "/-/ready".
	ReadyPath string
	// ReadyTimeout bounds that wait; DefaultReadyTimeout when zero.
	ReadyTimeout time.Duration
	// TLS, when set, says the process serves HTTPS: URL is https://ADDR and
	// readiness is polled with this client TLS config (trusted CA and, for
	// mTLS, a client certificate).
	TLS *tls.Config
}

// Process is a started program. It is stopped by t.Cleanup of the test that
// started it; Stop may be called earlier.
type Process struct {
	// Name is Spec.Name.
	Name string
	// Addr is the 127.0.0.1:PORT address the process listens on.
	Addr string
	// URL is "http://" + Addr, or "https://" + Addr with Spec.TLS.
	URL string

	cmd  *exec.Cmd
	logs *logBuffer
	// client polls readiness (with Spec.TLS when set).
	client *http.Client
	// done is closed when the process has exited; waitErr is its exit error.
	done    chan struct{}
	waitErr error

	stopOnce sync.Once
	stopErr  error
}

// Start starts spec's process on a free loopback port and waits until it is
// ready. The test fails when it does not start or get ready in time. The
// process is stopped in t.Cleanup, and its output is logged if the test failed.
func Start(t testing.TB, spec Spec) *Process {
	t.Helper()
	var lastErr error
	for attempt := 1; attempt <= startAttempts; attempt++ {
		p, err := start(t, spec)
		if err == nil {
			return p
		}
		lastErr = err
		// Only a lost race for the port is worth another try.
		if !strings.Contains(strings.ToLower(p.Logs()), "address already in use") {
			break
		}
		t.Logf("%s: port %s was taken meanwhile, retrying on another one", spec.Name, p.Addr)
	}
	t.Fatalf("start %s: %v", spec.Name, lastErr)
	return nil
}

func start(t testing.TB, spec Spec) (*Process, error) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
	p := &Process{
		Name:   spec.Name,
		Addr:   addr,
		URL:    "http://" + addr,
		logs:   newLogBuffer(256 << 10),
		done:   make(chan struct{}),
		client: &http.Client{Timeout: 2 * time.Second},
	}
	if spec.TLS != nil {
		p.URL = "https://" + addr
		p.client.Transport = &http.Transport{TLSClientConfig: spec.TLS}
	}
	dir := spec.Dir
	if dir == "" {
		dir = t.TempDir()
	}
	cmd := exec.Command(spec.Path, spec.Args(addr)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), spec.Env...)
	cmd.Stdout = p.logs
	cmd.Stderr = p.logs
	// Its own process group, so that stopping it also stops anything it forks.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		close(p.done)
		return p, err
	}
	p.cmd = cmd
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Logf("stop %s: %v", p.Name, err)
		}
		if t.Failed() {
			t.Logf("---- output of %s (%s %s) ----\n%s---- end of %s ----",
				p.Name, spec.Path, strings.Join(cmd.Args[1:], " "), p.Logs(), p.Name)
		}
	})
	timeout := spec.ReadyTimeout
	if timeout == 0 {
		timeout = DefaultReadyTimeout
	}
	if err := p.waitReady(spec.ReadyPath, timeout); err != nil {
		_ = p.Stop()
		return p, err
	}
	return p, nil
}

// waitReady polls GET URL+path until it answers 200, the process exits, or
// timeout passes.
func (p *Process) waitReady(path string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last string
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+path, nil)
		resp, err := p.client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-p.done:
			return fmt.Errorf("exited before it was ready: %v (its output follows the test log)", p.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("not ready at %s%s after %v (last: %s)", p.URL, path, timeout, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop sends SIGTERM to the process group, waits up to StopTimeout, then
// sends SIGKILL. It returns an error if the process had to be killed or had
// already exited with an error before Stop. Calling it again is a no-op.
func (p *Process) Stop() error {
	p.stopOnce.Do(func() {
		if p.cmd == nil || p.cmd.Process == nil {
			return
		}
		select {
		case <-p.done:
			if p.waitErr != nil {
				p.stopErr = fmt.Errorf("had exited by itself: %v", p.waitErr)
			}
			return
		default:
		}
		pgid := p.cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(StopTimeout):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-p.done
			p.stopErr = fmt.Errorf("did not stop within %v of SIGTERM; killed", StopTimeout)
		}
	})
	return p.stopErr
}

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Pid is the process id (also its process group id).
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Logs returns the captured stdout and stderr (the last 256 KiB).
func (p *Process) Logs() string { return p.logs.String() }

// WaitLogs waits until the captured output holds every one of want, for at
// most timeout, and returns it. A line the process has written may not be in
// Logs yet (it goes through a pipe), and a process may update a metric a
// moment before it logs what the metric counts: read logs with WaitLogs
// after something else showed that the event happened.
func (p *Process) WaitLogs(timeout time.Duration, want ...string) (logs string, ok bool) {
	deadline := time.Now().Add(timeout)
	for {
		logs = p.Logs()
		missing := false
		for _, w := range want {
			missing = missing || !strings.Contains(logs, w)
		}
		if !missing || time.Now().After(deadline) {
			return logs, !missing
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("pick a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// logBuffer keeps the last max bytes written to it; safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
	cut bool // whether older output was dropped
}

func newLogBuffer(max int) *logBuffer { return &logBuffer{max: max} }

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
		b.cut = true
	}
	return len(p), nil
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cut {
		return "[... earlier output dropped ...]\n" + string(b.buf)
	}
	return string(b.buf)
}
