package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/scoreproxy/scoreproxy/internal/testenv"
)

// zstdBomb is a zstd frame of size zero bytes (a multiple of 128 KiB)
// written as RLE blocks, 4 bytes per 128 KiB, whose header has no content
// size: the receiver learns the size only by decoding.
func zstdBomb(size int) []byte {
	const block = 128 << 10
	// Magic, then a header of one Window_Descriptor byte: no content size,
	// not single-segment, window 2^(10+13) = 8 MiB.
	frame := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 13 << 3}
	for n := 0; n < size; n += block {
		last := 0
		if n+block >= size {
			last = 1
		}
		h := last | 1<<1 | block<<3 // RLE block regenerating block bytes
		frame = append(frame, byte(h), byte(h>>8), byte(h>>16), 0)
	}
	return frame
}

// rw2Amplifier is a snappy remote write 2.0 body that references one
// valueLen-byte symbol from labels labels of every series: its RW1
// transcoding is about series * labels * valueLen bytes.
func rw2Amplifier(t *testing.T, series, labels, valueLen int) []byte {
	t.Helper()
	symbols := []string{"", "__name__", "amplified", strings.Repeat("v", valueLen)}
	refs := []uint32{1, 2}
	for i := range labels {
		symbols = append(symbols, "l"+strconv.Itoa(i))
		refs = append(refs, uint32(len(symbols)-1), 3)
	}
	req := &writev2.Request{Symbols: symbols}
	for i := range series {
		req.Timeseries = append(req.Timeseries, writev2.TimeSeries{LabelsRefs: refs,
			Samples: []writev2.Sample{{Value: float64(i), Timestamp: 1}}})
	}
	raw, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return snappy.Encode(nil, raw)
}

// procStatusKB reads one "Name:  N kB" line of /proc/<pid>/status.
func procStatusKB(pid int, name string) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, name+":"); ok {
			return strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no %s", pid, name)
}

// statusCounts counts answers by status code.
type statusCounts struct {
	mu sync.Mutex
	n  map[int]int
}

func (s *statusCounts) add(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n == nil {
		s.n = map[int]int{}
	}
	s.n[code]++
}

func (s *statusCounts) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprint(s.n)
}

func (s *statusCounts) total() (all, ok int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for code, n := range s.n {
		all += n
		if code >= 200 && code < 300 {
			ok += n
		}
	}
	return all, ok
}

// sendBody POSTs body with the given headers and returns the status (0 when
// no answer came).
func sendBody(ctx context.Context, client *http.Client, url string, body []byte, headers ...string) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// hostileLoad sends body from each of workers goroutines, one request at
// a time each, until ctx ends.
func hostileLoad(ctx context.Context, wg *sync.WaitGroup, url string, workers int, body []byte, counts *statusCounts, headers ...string) {
	client := &http.Client{Timeout: 30 * time.Second}
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				if code := sendBody(ctx, client, url, body, headers...); ctx.Err() == nil {
					counts.add(code)
				}
			}
		})
	}
}

// TestHostileBodiesKeepMemoryBounded: with the default limits, 32 clients
// sending zstd bombs (1 GiB of zeros in a 33 KB frame without a content
// size) and 32 sending remote write 2.0 bodies of 17 KB that expand to
// 256 MiB when transcoded, each one request after another, keep the real
// binary's peak RSS (VmHWM) under 512 MiB; every hostile request is
// refused (413 or 429, never 2xx or 5xx), and a normal producer sending
// 100 requests at 20 per second alongside gets at least 99% 2xx. A
// watchdog stops the load as soon as the RSS passes the bound, so that the
// test fails without taking the machine's memory.
func TestHostileBodiesKeepMemoryBounded(t *testing.T) {
	const maxRSS = 512 << 20
	bin := scoreproxy(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer up.Close()
	proxy := testenv.StartScoreproxy(t, bin, "listen: {{LISTEN}}\nwriter:\n  datasource_url: "+up.URL+"\n")
	proxy.WaitReady(t, 15*time.Second)
	url := proxy.URL + "/api/v1/write"

	bomb := zstdBomb(1 << 30)
	amplifier := rw2Amplifier(t, 2000, 32, 4096) // 256 MiB as RW1
	t.Logf("zstd bomb: %d bytes; rw2 amplifier: %d bytes", len(bomb), len(amplifier))

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var overLimit atomic.Int64
	watchdogDone := make(chan struct{})
	go func() { // stops the load once the RSS passes the bound
		defer close(watchdogDone)
		for ctx.Err() == nil {
			if rss, err := procStatusKB(proxy.Pid(), "VmRSS"); err == nil && rss<<10 > maxRSS {
				overLimit.Store(rss << 10)
				cancel()
				return
			}
			time.Sleep(10 * time.Millisecond) // the sampling period
		}
	}()

	var hostile sync.WaitGroup
	var bombs, amplified, normal statusCounts
	hostileLoad(ctx, &hostile, url, 32, bomb, &bombs, "Content-Encoding", "zstd", "Content-Type", "application/x-protobuf")
	hostileLoad(ctx, &hostile, url, 32, amplifier, &amplified, "Content-Encoding", "snappy",
		"Content-Type", "application/x-protobuf;proto=io.prometheus.write.v2.Request", "X-Prometheus-Remote-Write-Version", "2.0.0")
	runProducer(ctx, url, 100, 50*time.Millisecond, &normal)
	cancel()
	hostile.Wait()
	<-watchdogDone

	peak, err := procStatusKB(proxy.Pid(), "VmHWM")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("peak RSS %d MiB; zstd bombs %s; rw2 amplifiers %s; normal producer %s", peak>>10, &bombs, &amplified, &normal)
	if rss := overLimit.Load(); rss > 0 {
		t.Fatalf("RSS reached %d MiB, over %d MiB: load stopped", rss>>20, maxRSS>>20)
	}
	if peak<<10 > maxRSS {
		t.Errorf("peak RSS %d MiB, want under %d MiB", peak>>10, maxRSS>>20)
	}
	for name, c := range map[string]*statusCounts{"zstd bomb": &bombs, "rw2 amplifier": &amplified} {
		if all, _ := c.total(); all == 0 {
			t.Errorf("no %s got an answer", name)
		}
		for code := range c.n {
			if code != http.StatusRequestEntityTooLarge && code != http.StatusTooManyRequests {
				t.Errorf("%s answered %d (%s), want only 413 or 429", name, code, c)
			}
		}
	}
	if all, ok := normal.total(); all < 100 || ok*100 < all*99 {
		t.Errorf("normal producer: %d of %d requests got 2xx (%s), want at least 99%% of 100", ok, all, &normal)
	}
}

// runProducer sends n small valid writes, one every interval, counting
// the answers; it stops early when ctx ends.
func runProducer(ctx context.Context, url string, n int, interval time.Duration, counts *statusCounts) {
	raw, _ := (&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  testenv.Labels("__name__", "normal_producer", "job", "e2e"),
		Samples: []prompb.Sample{{Value: 1, Timestamp: time.Now().UnixMilli()}},
	}}}).Marshal()
	body := snappy.Encode(nil, raw)
	client := &http.Client{Timeout: 10 * time.Second}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for range n {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		counts.add(sendBody(ctx, client, url, body, "Content-Encoding", "snappy", "Content-Type", "application/x-protobuf"))
	}
}
