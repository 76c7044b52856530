package config

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Defaults of the queue: section's keys.
const (
	DefaultQueueMaxDiskBytes     = 1 << 30
	DefaultQueueSegmentBytes     = 32 << 20
	DefaultQueueMaxRejectedBytes = 256 << 20
	DefaultQueueRetryMinInterval = time.Second
	DefaultQueueRetryMaxInterval = time.Minute
	DefaultQueueDeliveryConc     = 1
	DefaultQueueMaxBatchBytes    = 4 << 20
	// maxBatchBytes stays below the 32 MB request limit of vminsert's
	// default -maxInsertRequestSize, with room for the largest block.
	maxBatchBytes          = 16 << 20
	maxDeliveryConcurrency = 64

	// minSegmentBytes keeps segment files from being so small that creating
	// them (each creation fsyncs the directory) dominates the cost of writing.
	minSegmentBytes = 64 << 10
	// maxSegmentBytes keeps a segment, read whole when a damaged record is
	// searched past, a reasonable amount of memory.
	maxSegmentBytes = 1 << 30
)

// Queue configures the durable queue. It is the zero value when queue.path is
// empty: the queue is off and the producer is answered after the upstream,
// as without a queue: section.
type Queue struct {
	// Path is the directory holding one queue per upstream endpoint; created if missing.
	Path string `yaml:"path"`
	// MaxDiskBytes bounds the disk the undelivered data of all endpoints
	// holds; beyond it producers get 429 with Retry-After.
	MaxDiskBytes int64 `yaml:"max_disk_bytes"`
	// SegmentBytes is the size of the segment files; delivered data is
	// deleted one segment file at a time.
	SegmentBytes int64 `yaml:"segment_bytes"`
	// MaxRejectedBytes bounds each endpoint's rejected-data files (blocks the
	// upstream refused with a 4xx); the oldest rejections go first.
	MaxRejectedBytes int64 `yaml:"max_rejected_bytes"`
	// RetryMinInterval and RetryMaxInterval bound the exponential backoff
	// between delivery attempts of a block.
	RetryMinInterval time.Duration `yaml:"retry_min_interval"`
	RetryMaxInterval time.Duration `yaml:"retry_max_interval"`
	// DeliveryConcurrency is the number of upstream requests in flight per
	// endpoint: 1 delivers strictly in order; more send in order but may
	// land out of order, which VictoriaMetrics accepts.
	DeliveryConcurrency int `yaml:"delivery_concurrency"`
	// MaxBatchBytes bounds the decoded size of one upstream request made of
	// consecutive queued blocks; a value below one block's size turns
	// grouping off.
	MaxBatchBytes int64 `yaml:"max_batch_bytes"`
}

// Enabled reports whether the durable queue is on.
func (q Queue) Enabled() bool { return q.Path != "" }

// rawQueue is the queue: section as written.
type rawQueue struct {
	Path                value `yaml:"path"`
	MaxDiskBytes        value `yaml:"max_disk_bytes"`
	SegmentBytes        value `yaml:"segment_bytes"`
	MaxRejectedBytes    value `yaml:"max_rejected_bytes"`
	RetryMinInterval    value `yaml:"retry_min_interval"`
	RetryMaxInterval    value `yaml:"retry_max_interval"`
	DeliveryConcurrency value `yaml:"delivery_concurrency"`
	MaxBatchBytes       value `yaml:"max_batch_bytes"`
}

// queue builds and checks the queue: section. Its keys are checked even when
// path is empty, so a typo shows before the queue is turned on.
func (c *checker) queue(raw rawQueue) Queue {
	q := Queue{
		Path:             c.checkedStr("queue.path", raw.Path, "", checkQueuePath),
		MaxDiskBytes:     c.byteSize("queue.max_disk_bytes", raw.MaxDiskBytes, DefaultQueueMaxDiskBytes),
		SegmentBytes:     c.byteSize("queue.segment_bytes", raw.SegmentBytes, DefaultQueueSegmentBytes),
		MaxRejectedBytes: c.byteSize("queue.max_rejected_bytes", raw.MaxRejectedBytes, DefaultQueueMaxRejectedBytes),
		RetryMinInterval: c.duration("queue.retry_min_interval", raw.RetryMinInterval, DefaultQueueRetryMinInterval),
		RetryMaxInterval: c.duration("queue.retry_max_interval", raw.RetryMaxInterval, DefaultQueueRetryMaxInterval),
		DeliveryConcurrency: c.count("queue.delivery_concurrency", raw.DeliveryConcurrency, DefaultQueueDeliveryConc,
			maxDeliveryConcurrency),
		MaxBatchBytes: c.byteSize("queue.max_batch_bytes", raw.MaxBatchBytes, DefaultQueueMaxBatchBytes),
	}
	if q.MaxBatchBytes > maxBatchBytes {
		c.errorf("queue.max_batch_bytes", "%d bytes is above 16MiB, too large a request for most upstreams; write e.g. \"4MiB\"", q.MaxBatchBytes)
	}
	if q.SegmentBytes > 0 && (q.SegmentBytes < minSegmentBytes || q.SegmentBytes > maxSegmentBytes) {
		c.errorf("queue.segment_bytes", "%d bytes is outside 64KiB..1GiB; write e.g. \"32MiB\"", q.SegmentBytes)
	}
	if q.MaxRejectedBytes > 0 && q.MaxRejectedBytes < 2*minSegmentBytes {
		c.errorf("queue.max_rejected_bytes", "%d bytes is too small to hold a rejected block; write at least \"128KiB\", e.g. \"256MiB\"", q.MaxRejectedBytes)
	}
	if q.RetryMinInterval > 0 && q.RetryMaxInterval > 0 && q.RetryMaxInterval < q.RetryMinInterval {
		c.errorf("queue.retry_max_interval", "%s is shorter than queue.retry_min_interval (%s); raise it to at least %s",
			q.RetryMaxInterval, q.RetryMinInterval, q.RetryMinInterval)
	}
	if q.Path == "" {
		if set := setKeys(raw); len(set) > 0 {
			c.warnf("queue.%s set but queue.path is empty: the queue is off and producers are answered after the upstream; "+
				"set queue.path to a directory to turn it on", strings.Join(set, ", queue."))
		}
		return Queue{}
	}
	return q
}

// setKeys lists the keys of raw other than path that are written.
func setKeys(raw rawQueue) []string {
	var set []string
	for _, k := range []struct {
		name string
		v    value
	}{
		{"max_disk_bytes", raw.MaxDiskBytes}, {"segment_bytes", raw.SegmentBytes}, {"max_rejected_bytes", raw.MaxRejectedBytes},
		{"retry_min_interval", raw.RetryMinInterval}, {"retry_max_interval", raw.RetryMaxInterval},
		{"delivery_concurrency", raw.DeliveryConcurrency}, {"max_batch_bytes", raw.MaxBatchBytes},
	} {
		if k.v.set() {
			set = append(set, k.name)
		}
	}
	return set
}

// checkQueuePath accepts "" (no queue), a missing path (created at start-up)
// or an existing directory.
func checkQueuePath(path string) error {
	if path == "" {
		return nil
	}
	st, err := os.Stat(path)
	switch {
	case os.IsNotExist(err):
		return nil
	case err != nil:
		return fmt.Errorf("cannot use %q: %v", path, err)
	case !st.IsDir():
		return fmt.Errorf("%q is not a directory; write the path of a directory (created if missing), "+
			"e.g. \"/var/lib/scoreproxy/queue\"", path)
	}
	return nil
}

// count reads a whole number in 1..limit.
func (c *checker) count(path string, v value, def, limit int) int {
	n := c.scalar(path, v)
	if n == nil {
		return def
	}
	i, err := strconv.Atoi(n.Value)
	if err != nil || i < 1 || i > limit {
		c.errorf(path, "%q is not a whole number from 1 to %d; write e.g. %d", n.Value, limit, def)
		return def
	}
	return i
}
