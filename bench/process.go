package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// child is a proxy process started by compare. It is stopped by its own
// pid only, never by name.
type child struct {
	name    string
	cmd     *exec.Cmd
	logPath string        // combined stdout and stderr of the process
	exited  chan struct{} // closed when the process has exited
	waitErr error         // the exit status, valid once exited is closed
}

// startChild starts bin with args, its output going to a log file in dir.
func startChild(name, bin string, args []string, dir string) (*child, error) {
	logPath := fmt.Sprintf("%s/%s.log", dir, name)
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s (%s): %w", name, bin, err)
	}
	c := &child{name: name, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		c.waitErr = cmd.Wait()
		logf.Close()
		close(c.exited)
	}()
	return c, nil
}

// pid returns the process id.
func (c *child) pid() int { return c.cmd.Process.Pid }

// waitReady polls url until it answers 200, the process exits, or timeout.
func (c *child) waitReady(url string, timeout time.Duration) error {
	client := loopbackClient(1, time.Second)
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-c.exited:
			return fmt.Errorf("%s exited during start-up (%v); log:\n%s", c.name, c.waitErr, c.logTail(20))
		default:
		}
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready at %s after %s; log:\n%s", c.name, url, timeout, c.logTail(20))
}

// stop sends SIGTERM, waits up to grace, then SIGKILLs the process.
func (c *child) stop(grace time.Duration) error {
	select {
	case <-c.exited:
		return fmt.Errorf("%s had already exited: %v", c.name, c.waitErr)
	default:
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-c.exited:
		return nil
	case <-time.After(grace):
	}
	c.cmd.Process.Kill()
	<-c.exited
	return fmt.Errorf("%s did not stop within %s of SIGTERM; killed", c.name, grace)
}

// logTail returns the last n lines of the process log.
func (c *child) logTail(n int) string {
	b, err := os.ReadFile(c.logPath)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "    " + strings.Join(lines, "\n    ")
}

// freePort asks the kernel for a free TCP port on 127.0.0.1.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// serveSink serves sink on a free loopback port until ctx is done and
// returns its base URL.
func serveSink(ctx context.Context, sink *Sink) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: sink, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	return "http://" + ln.Addr().String(), nil
}
