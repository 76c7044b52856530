package config

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const queueDS = "writer:\n  datasource_url: http://localhost:8428\n"

// Without queue.path the queue is off: the zero Queue, as before the section existed.
func TestQueueOffByDefault(t *testing.T) {
	cfg, warnings := mustParse(t, queueDS)
	if cfg.Queue.Enabled() || !reflect.DeepEqual(cfg.Queue, Queue{}) {
		t.Errorf("Queue = %+v; want the zero value (off)", cfg.Queue)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings = %q; want none", warnings)
	}
}

func TestQueueDefaultsAndValues(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		yaml string
		want Queue
	}{
		{"defaults", "queue:\n  path: $DIR/q\n", Queue{
			Path: "$DIR/q", MaxDiskBytes: 1 << 30, SegmentBytes: 32 << 20, MaxRejectedBytes: 256 << 20,
			RetryMinInterval: time.Second, RetryMaxInterval: time.Minute, DeliveryConcurrency: 1, MaxBatchBytes: 4 << 20}},
		{"every key", "queue:\n  path: $DIR\n  max_disk_bytes: 10GiB\n  segment_bytes: 64 MB\n  max_rejected_bytes: 1GB\n" +
			"  retry_min_interval: 500ms\n  retry_max_interval: 2m\n  delivery_concurrency: 4\n  max_batch_bytes: 8MiB\n", Queue{
			Path: "$DIR", MaxDiskBytes: 10 << 30, SegmentBytes: 64e6, MaxRejectedBytes: 1e9,
			RetryMinInterval: 500 * time.Millisecond, RetryMaxInterval: 2 * time.Minute, DeliveryConcurrency: 4, MaxBatchBytes: 8 << 20}},
		{"bare seconds", "queue:\n  path: $DIR\n  retry_min_interval: 0.25\n  retry_max_interval: 30\n", Queue{
			Path: "$DIR", MaxDiskBytes: 1 << 30, SegmentBytes: 32 << 20, MaxRejectedBytes: 256 << 20,
			RetryMinInterval: 250 * time.Millisecond, RetryMaxInterval: 30 * time.Second, DeliveryConcurrency: 1, MaxBatchBytes: 4 << 20}},
		{"equal retry bounds", "queue:\n  path: $DIR\n  retry_min_interval: 5s\n  retry_max_interval: 5s\n", Queue{
			Path: "$DIR", MaxDiskBytes: 1 << 30, SegmentBytes: 32 << 20, MaxRejectedBytes: 256 << 20,
			RetryMinInterval: 5 * time.Second, RetryMaxInterval: 5 * time.Second, DeliveryConcurrency: 1, MaxBatchBytes: 4 << 20}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, warnings := mustParse(t, queueDS+strings.ReplaceAll(tt.yaml, "$DIR", dir))
			want := tt.want
			want.Path = strings.ReplaceAll(want.Path, "$DIR", dir)
			if !reflect.DeepEqual(cfg.Queue, want) || !cfg.Queue.Enabled() {
				t.Errorf("Queue:\n got %+v\nwant %+v", cfg.Queue, want)
			}
			if len(warnings) != 0 {
				t.Errorf("warnings = %q; want none", warnings)
			}
		})
	}
}

func TestQueueErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	writeFile(t, file, "x")
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"path is a directory", "queue:\n  path: $FILE\n",
			[]string{`queue.path: "$FILE" is not a directory; write the path of a directory (created if missing)`}},
		{"path is one value", "queue:\n  path: [a, b]\n",
			[]string{`queue.path: must be a single value, got a list`}},
		{"max_disk_bytes is a size", "queue:\n  path: $DIR\n  max_disk_bytes: lots\n",
			[]string{`queue.max_disk_bytes: "lots" is not a size; write a number of bytes`}},
		{"max_disk_bytes is positive", "queue:\n  path: $DIR\n  max_disk_bytes: 0\n",
			[]string{`queue.max_disk_bytes: "0" must be positive`}},
		{"segment_bytes is not tiny", "queue:\n  path: $DIR\n  segment_bytes: 1KiB\n",
			[]string{`queue.segment_bytes: 1024 bytes is outside 64KiB..1GiB; write e.g. "32MiB"`}},
		{"segment_bytes is not huge", "queue:\n  path: $DIR\n  segment_bytes: 2GiB\n",
			[]string{`queue.segment_bytes: 2147483648 bytes is outside 64KiB..1GiB`}},
		{"max_rejected_bytes holds a block", "queue:\n  path: $DIR\n  max_rejected_bytes: 1000\n",
			[]string{`queue.max_rejected_bytes: 1000 bytes is too small`, `at least "128KiB"`}},
		{"retry intervals are durations", "queue:\n  path: $DIR\n  retry_min_interval: soon\n",
			[]string{`queue.retry_min_interval: "soon" is not a duration`}},
		{"retry intervals are positive", "queue:\n  path: $DIR\n  retry_max_interval: 0\n",
			[]string{`queue.retry_max_interval: "0" must be positive, e.g. "1m0s"`}},
		{"retry_max_interval is not below retry_min_interval", "queue:\n  path: $DIR\n  retry_min_interval: 10s\n  retry_max_interval: 5s\n",
			[]string{`queue.retry_max_interval: 5s is shorter than queue.retry_min_interval (10s); raise it to at least 10s`}},
		{"delivery_concurrency is a number", "queue:\n  path: $DIR\n  delivery_concurrency: many\n",
			[]string{`queue.delivery_concurrency: "many" is not a whole number from 1 to 64; write e.g. 1`}},
		{"delivery_concurrency is at least 1", "queue:\n  path: $DIR\n  delivery_concurrency: 0\n",
			[]string{`queue.delivery_concurrency: "0" is not a whole number from 1 to 64`}},
		{"max_batch_bytes is a size", "queue:\n  path: $DIR\n  max_batch_bytes: big\n",
			[]string{`queue.max_batch_bytes: "big" is not a size`}},
		{"max_batch_bytes is not above 16MiB", "queue:\n  path: $DIR\n  max_batch_bytes: 32MiB\n",
			[]string{`queue.max_batch_bytes: 33554432 bytes is above 16MiB, too large a request for most upstreams; write e.g. "4MiB"`}},
		{"unknown key", "queue:\n  path: $DIR\n  max_disk_size: 1GiB\n",
			[]string{`queue: unknown key "max_disk_size" (line 5); valid keys are: path, max_disk_bytes, segment_bytes, ` +
				`max_rejected_bytes, retry_min_interval, retry_max_interval, delivery_concurrency, max_batch_bytes; did you mean "max_disk_bytes"?`}},
		{"a queue key at the top level", "max_disk_bytes: 1GiB\n",
			[]string{`did you mean queue.max_disk_bytes? it belongs under queue:`}},
		{"the section is a mapping", "queue: /var/lib/scoreproxy\n",
			[]string{`queue: must be a mapping of keys (path, max_disk_bytes,`, `got !!str`}},
		{"every problem at once, even with the queue off", "queue:\n  max_disk_bytes: x\n  retry_min_interval: y\n",
			[]string{`queue.max_disk_bytes: "x" is not a size`, `queue.retry_min_interval: "y" is not a duration`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := strings.NewReplacer("$DIR", dir, "$FILE", file)
			_, _, err := Parse([]byte(queueDS + r.Replace(tt.yaml)))
			if err == nil {
				t.Fatalf("Parse succeeded; want an error for:\n%s", tt.yaml)
			}
			for _, w := range tt.want {
				if w = r.Replace(w); !strings.Contains(err.Error(), w) {
					t.Errorf("error:\n%v\nwant it to contain:\n%s", err, w)
				}
			}
		})
	}
}

// Queue keys without a path are accepted, with a warning that the queue is off.
func TestQueueKeysWithoutPathWarn(t *testing.T) {
	cfg, warnings := mustParse(t, queueDS+"queue:\n  max_disk_bytes: 1GiB\n  retry_max_interval: 30s\n")
	if cfg.Queue.Enabled() {
		t.Fatalf("queue enabled without a path: %+v", cfg.Queue)
	}
	want := "queue.max_disk_bytes, queue.retry_max_interval set but queue.path is empty: the queue is off"
	if len(warnings) != 1 || !strings.Contains(warnings[0], want) {
		t.Errorf("warnings = %q; want one containing %q", warnings, want)
	}
}
