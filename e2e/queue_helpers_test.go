package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/scoreproxy/scoreproxy/internal/testenv"
)

// Helpers of the durable-queue tests (queue_*_test.go): a relay that keeps
// the upstream address fixed while VictoriaMetrics is stopped and started,
// a producer loop that records which samples were acknowledged, and the
// check that every one of them can be read back.

// relay forwards TCP connections from a fixed loopback address to the
// current VictoriaMetrics. scoreproxy's queue is keyed by the upstream URL,
// so the URL must survive a restart of VictoriaMetrics (which testenv starts
// on a new port each time); while the relay is down the address refuses
// connections, exactly as a stopped upstream does.
type relay struct {
	addr string

	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]bool
	active sync.WaitGroup
}

func newRelay(t *testing.T) *relay {
	r := &relay{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(testenv.FreePort(t))), conns: map[net.Conn]bool{}}
	t.Cleanup(r.down)
	return r
}

func (r *relay) url() string { return "http://" + r.addr }

// up starts forwarding to target (host:port).
func (r *relay) up(t *testing.T, target string) {
	t.Helper()
	var ln net.Listener
	var err error
	for range 50 { // the port may linger briefly after down
		if ln, err = net.Listen("tcp", r.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("relay: listen on %s: %v", r.addr, err)
	}
	r.mu.Lock()
	r.ln = ln
	r.mu.Unlock()
	r.active.Add(1)
	go func() {
		defer r.active.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.active.Add(1)
			go func() { defer r.active.Done(); r.pipe(c, target) }()
		}
	}()
}

func (r *relay) pipe(c net.Conn, target string) {
	defer c.Close()
	u, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		return
	}
	defer u.Close()
	if !r.track(c, u) {
		return
	}
	defer r.untrack(c, u)
	done := make(chan struct{}, 2)
	go func() { io.Copy(u, c); done <- struct{}{} }()
	go func() { io.Copy(c, u); done <- struct{}{} }()
	<-done
}

func (r *relay) track(conns ...net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ln == nil {
		return false
	}
	for _, c := range conns {
		r.conns[c] = true
	}
	return true
}

func (r *relay) untrack(conns ...net.Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range conns {
		delete(r.conns, c)
	}
}

// down stops listening and cuts every relayed connection.
func (r *relay) down() {
	r.mu.Lock()
	if r.ln != nil {
		r.ln.Close()
		r.ln = nil
	}
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.active.Wait()
}

// startVMWithData starts single-node VictoriaMetrics on data, so that a
// stopped one can be started again with what it had stored.
func startVMWithData(t *testing.T, data string) *testenv.VictoriaMetrics {
	t.Helper()
	p := testenv.Start(t, testenv.Spec{
		Name: "victoria-metrics",
		Path: testenv.VictoriaMetricsTool.Require(t),
		Args: func(addr string) []string {
			return []string{"-httpListenAddr=" + addr, "-storageDataPath=" + data, "-retentionPeriod=100y",
				"-search.latencyOffset=0s", "-loggerLevel=WARN"}
		},
		ReadyPath: "/health",
	})
	return &testenv.VictoriaMetrics{Process: p}
}

// queueConfig is a scoreproxy config with a durable queue in dir, writing
// to upstream, with retries fast enough for tests.
func queueConfig(upstream, dir, extra string) string {
	return fmt.Sprintf(`listen: {{LISTEN}}
writer:
  datasource_url: %s
  timeout: 2s
queue:
  path: %s
  retry_min_interval: 100ms
  retry_max_interval: 1s
%sserver:
  health_check_interval: 1s
  shutdown_timeout: 5s
`, upstream, dir, extra)
}

// loadSeries is the number of series in each request of the producer loop.
const loadSeries = 100

// loadBase is the timestamp of request 0; request i carries base+i ms, so
// every (series, timestamp) pair names one request.
var loadBase = time.Now().Add(-2 * time.Hour).Truncate(time.Hour).UnixMilli()

// loadRequest is request id of the producer loop.
func loadRequest(id int64) *prompb.WriteRequest {
	wr := &prompb.WriteRequest{Timeseries: make([]prompb.TimeSeries, loadSeries)}
	for s := range loadSeries {
		wr.Timeseries[s] = prompb.TimeSeries{
			Labels:  testenv.Labels("__name__", "queue_e2e", "series", strconv.Itoa(s)),
			Samples: []prompb.Sample{{Timestamp: loadBase + id, Value: float64(id)}},
		}
	}
	return wr
}

// producers sends requests as producers do: each one until it is
// acknowledged (retrying after 429, 503 or no answer, a bounded number of
// times), and records which ones were.
type producers struct {
	target atomic.Pointer[string] // scoreproxy's write URL; changes on restart
	next   atomic.Int64
	status sync.Map // int -> *atomic.Int64: answers seen, by status (0: no answer)

	mu    sync.Mutex
	acked map[int64]bool
}

func newProducers(url string) *producers {
	p := &producers{acked: map[int64]bool{}}
	p.setTarget(url)
	return p
}

// start runs n producers until the returned stop is called or the test
// ends; stop waits for them and may be called more than once.
func (p *producers) start(t *testing.T, n int, interval time.Duration) (stop func()) {
	stopc := make(chan struct{})
	wait := p.run(n, interval, stopc)
	var once sync.Once
	stop = func() { once.Do(func() { close(stopc); wait() }) }
	t.Cleanup(stop)
	return stop
}

func (p *producers) setTarget(url string) { p.target.Store(&url) }

// run starts n producers that send a request every interval until stop is
// closed, and returns a function waiting for them.
func (p *producers) run(n int, interval time.Duration, stop <-chan struct{}) (wait func()) {
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(interval):
				}
				p.sendOne(stop)
			}
		})
	}
	return wg.Wait
}

// sendOne sends the next request until it is acknowledged or stop is closed.
func (p *producers) sendOne(stop <-chan struct{}) {
	id := p.next.Add(1) - 1
	req := loadRequest(id)
	for range 600 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		res, err := testenv.Push(ctx, *p.target.Load()+"/api/v1/write", req)
		cancel()
		p.count(res.StatusCode)
		if err == nil && res.StatusCode == http.StatusNoContent {
			p.mu.Lock()
			p.acked[id] = true
			p.mu.Unlock()
			return
		}
		select {
		case <-stop:
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (p *producers) count(status int) {
	c, _ := p.status.LoadOrStore(status, new(atomic.Int64))
	c.(*atomic.Int64).Add(1)
}

// answers returns how many answers had status (0: no answer).
func (p *producers) answers(status int) int64 {
	if c, ok := p.status.Load(status); ok {
		return c.(*atomic.Int64).Load()
	}
	return 0
}

func (p *producers) ackedIDs() []int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	ids := make([]int64, 0, len(p.acked))
	for id := range p.acked {
		ids = append(ids, id)
	}
	return ids
}

// waitAllAcked waits until VictoriaMetrics holds every sample of the
// requests in ids (duplicates allowed) and returns how many it holds.
func waitAllAcked(t *testing.T, vm *testenv.VictoriaMetrics, ids []int64, timeout time.Duration) (stored int) {
	t.Helper()
	want := map[int64]bool{}
	for _, id := range ids {
		want[loadBase+id] = true
	}
	vm.WaitExport(t, `{__name__="queue_e2e"}`, timeout, func(got []testenv.Series) error {
		stored = 0
		missing := 0
		bySeries := map[string]map[int64]bool{}
		for _, s := range got {
			ts := map[int64]bool{}
			for _, x := range s.Timestamps {
				ts[x] = true
			}
			stored += len(ts)
			bySeries[s.Labels["series"]] = ts
		}
		for s := range loadSeries {
			have := bySeries[strconv.Itoa(s)]
			for ts := range want {
				if !have[ts] {
					missing++
				}
			}
		}
		if missing > 0 {
			return fmt.Errorf("%d of %d acknowledged samples missing", missing, len(want)*loadSeries)
		}
		return nil
	})
	return stored
}

// kill sends SIGKILL to p and waits (bounded) until it has exited.
func kill(t *testing.T, p *testenv.Process) {
	t.Helper()
	if err := syscall.Kill(p.Pid(), syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("kill %s: %v", p.Name, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !p.Exited() {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not exit after SIGKILL", p.Name)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// segmentFiles returns the queue's segment files, oldest first.
func segmentFiles(t *testing.T, queueDir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(queueDir, "*", "*.seg"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// metricValue scrapes one metric of scoreproxy (0 when absent).
func metricValue(t *testing.T, sp *testenv.Scoreproxy, name string, match map[string]string) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := sp.Metrics(ctx)
	if err != nil {
		t.Fatalf("scrape scoreproxy: %v", err)
	}
	v, _ := m.Sum(name, match)
	return v
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// eventually polls cond until it holds, failing the test after timeout.
func eventually(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// vmExport returns every series of the producer loop stored in vm.
func vmExport(t *testing.T, vm *testenv.VictoriaMetrics) []testenv.Series {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := vm.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := vm.Export(ctx, `{__name__="queue_e2e"}`)
	if err != nil {
		t.Fatal(err)
	}
	return got
}
