package remotewrite

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// Label is one name/value pair. Both slices usually point into a request body
// or a reused scratch buffer: a Label is valid only while the buffer it points
// into is, and must be copied to be kept.
type Label struct {
	Name  []byte
	Value []byte
}

// MetricNameLabel is the reserved label that holds the metric name.
const MetricNameLabel = "__name__"

// Series is one decoded prompb.TimeSeries. Labels are sub-slices of the
// decoded body; everything that is not a label (samples, exemplars, native
// histograms, and any unknown field) stays encoded in Body and is copied to the
// output verbatim, so nothing the producer sent is lost or re-encoded.
type Series struct {
	// Labels sorted by name and unique (the decoder sorts them when they
	// arrive out of order, see Reordered).
	Labels []Label
	// Reordered is true when the labels arrived out of order: Labels holds
	// them sorted, and the label fields in Body are not in output order, so
	// the series is never forwarded verbatim (see AppendSeriesVerbatim).
	Reordered bool
	// Body is the whole encoded TimeSeries message (labels included).
	Body []byte
	// RestOffset is where the non-label fields start in Body when all label
	// fields come first (the usual case); -1 when fields are interleaved and
	// the encoder must skip label fields itself.
	RestOffset int
	// Counts of the repeated fields found in Body.
	Samples, Exemplars, Histograms int
	// Known is what the decoder's KnownLabelSets returned for this series'
	// encoded labels. When it is non-nil the labels were validated when first
	// seen, the decoder did not parse them again, and Labels is nil.
	Known any
	// KnownHash is the hash of LabelFields that the KnownLabelSets
	// computed when it looked them up (0 when it computed none): a
	// processor that hashes label sets the same way uses it instead of
	// hashing them again.
	KnownHash uint64
}

// Request is one decoded prompb.WriteRequest. It is reused across requests:
// Reset keeps the capacity of its slices so steady-state decoding does not
// allocate.
type Request struct {
	Series []Series
	// Metadata holds each encoded MetricMetadata message (field 3), verbatim.
	Metadata [][]byte
	// Compressed is the snappy body as received, when the request came in as
	// snappy RW1 with every series' labels in order (nil otherwise). A
	// processor that changes nothing forwards it as is instead of encoding
	// and compressing the same bytes again.
	Compressed []byte
	// Reordered is true when the decoder sorted the labels of a series
	// (Series.Reordered): the body as received is not what goes upstream.
	Reordered bool
	// KnownBy is the KnownLabelSets the decoder consulted for every series
	// whose labels it could look up (see DecodeWriteRequestKnown), nil when
	// none: a series with Known nil was not known to it then, which spares
	// its owner a second lookup.
	KnownBy KnownLabelSets
	// labels is the arena that every Series.Labels is a sub-slice of.
	labels []Label
	// known is consulted by the decoder for the duration of one decode.
	known KnownLabelSets
	// done and total are how far the decoder is into the body, for sizing
	// the slices above when they fill up (see grownCap).
	done, total int
	// lastLabels is how many labels the last decode parsed (see trimArena).
	lastLabels int
	// parsed is the start of the array the last decode parsed; keptLabels
	// is how many slots of the label arena may still point into it (see
	// ResetKeepingArena).
	parsed     *byte
	keptLabels int
}

// Reset empties the request while keeping its buffers.
func (r *Request) Reset() {
	// Drop references into the old body so it can be collected.
	clear(r.labels[:min(max(len(r.labels), r.keptLabels), cap(r.labels))])
	r.labels = r.labels[:0]
	r.keptLabels, r.parsed = 0, nil
	r.resetSeries()
}

// ResetKeepingArena is Reset for a Request pooled together with the buffer
// it decoded from, one of buffers: the label arena's references point into
// that buffer, which stays referenced anyway, and the next decode of the
// same buffer overwrites them (see resetFor), so clearing them (48 bytes a
// label, 430 KB for a request of 1,000 series) is left out. Any other
// Request is reset in full.
func (r *Request) ResetKeepingArena(buffers ...[]byte) {
	for _, b := range buffers {
		if r.parsed != nil && unsafe.SliceData(b) == r.parsed {
			r.keepArena()
			return
		}
	}
	r.Reset()
}

// resetFor resets the request before a decode of body: the label arena's
// references are kept (see ResetKeepingArena) when they point into body's
// array, and cleared otherwise, so that they never hold another array.
func (r *Request) resetFor(body []byte) {
	base := unsafe.SliceData(body)
	if r.parsed != nil && base == r.parsed {
		r.keepArena()
	} else {
		r.Reset()
	}
	r.parsed = base
}

// keepArena empties the request, noting how far the label arena holds
// references into the array r.parsed starts.
func (r *Request) keepArena() {
	r.keptLabels = max(r.keptLabels, len(r.labels))
	r.labels = r.labels[:0]
	r.resetSeries()
}

// resetSeries empties everything but the label arena.
func (r *Request) resetSeries() {
	clear(r.Series)
	r.Series = r.Series[:0]
	clear(r.Metadata)
	r.Metadata = r.Metadata[:0]
	r.Compressed = nil
	r.Reordered = false
	r.KnownBy = nil
}

// retainedLabels is the label arena size a Request always keeps for reuse.
const retainedLabels = 4096

// trimArena, called by a decode before it starts, lets the label arena go
// when the decode before used less than an eighth of it: once the rewrite
// cache knows a producer's series the decoder stops parsing their labels
// (see DecodeWriteRequestKnown), and an arena that warm-up grew to every
// label of a request (48 bytes each: 400 KB for the standard 1,000-series
// request) would otherwise stay in every pooled Request for good. A
// workload that keeps parsing labels keeps its arena. (The count is the
// last decode's, not the arena's length: a Reset between two decodes must
// not look like a decode that parsed nothing.)
func (r *Request) trimArena() {
	if cap(r.labels) > retainedLabels && r.lastLabels < cap(r.labels)/8 {
		r.labels, r.keptLabels = nil, 0
	}
}

// grownCap is the capacity for a slice that is full at n items, decoded
// from the first done of total body bytes: n extrapolated to the whole
// body, plus an eighth. Growing to the estimate once, rather than by
// append's factor of 1.25 for large slices, keeps the copies a cold request
// leaves behind (a dozen for 9,000 labels) from setting the process's peak
// memory while the caches warm up. A skewed body costs at most another
// growth; the estimate is bounded by what the body can hold, each item
// taking at least minBytes of it.
func grownCap(n, done, total, minBytes int) int {
	c := 2*n + 16
	if done > 0 && n > 0 {
		est := int(min(int64(n)*int64(total)/int64(done), int64(total/minBytes)))
		c = max(c, est+est/8)
	}
	return c
}

// Totals returns the number of series, samples, exemplars and histograms.
func (r *Request) Totals() (series, samples, exemplars, histograms int) {
	for i := range r.Series {
		s := &r.Series[i]
		samples += s.Samples
		exemplars += s.Exemplars
		histograms += s.Histograms
	}
	return len(r.Series), samples, exemplars, histograms
}

// FormatLabels renders labels as Prometheus text, e.g.
// `up{instance="a:9100",job="node"}`; a metric or label name that is not
// valid UTF-8 is quoted with its bytes escaped, so that a message naming
// it stays readable. It allocates and is meant for log messages and
// errors, never for the hot path.
func FormatLabels(labels []Label) string {
	var b strings.Builder
	var name []byte
	for _, l := range labels {
		if string(l.Name) == MetricNameLabel {
			name = l.Value
		}
	}
	writeName(&b, name)
	b.WriteByte('{')
	first := true
	for _, l := range labels {
		if string(l.Name) == MetricNameLabel {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		writeName(&b, l.Name)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(string(l.Value)))
	}
	b.WriteByte('}')
	return b.String()
}

// writeName writes a metric or label name, quoted when it is not valid UTF-8.
func writeName(b *strings.Builder, name []byte) {
	if utf8.Valid(name) {
		b.Write(name)
	} else {
		b.WriteString(strconv.Quote(string(name)))
	}
}

// LabelsEqual reports whether two label lists are identical.
func LabelsEqual(a, b []Label) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i].Name, b[i].Name) || !bytes.Equal(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}

// Processor takes a decoded, validated request and delivers it (rewriting,
// routing, forwarding or queueing). It is implemented outside this package so
// that the receiver stays free of tenant and label rules.
//
// pathTenant is the tenant named in a vminsert-shaped request path
// (`/insert/<tenant>/...`), verbatim, or "" for the plain paths.
//
// A nil error means the data is delivered (or durably queued) and the producer
// gets 204. An error of type *StatusError is passed to the producer as is; any
// other error becomes 500.
type Processor interface {
	Process(ctx context.Context, req *Request, pathTenant string) error
}

// StatusError is an error that carries the HTTP status to answer the producer with.
type StatusError struct {
	Code int
	// RetryAfter, when set, is sent as the Retry-After header (seconds or HTTP date).
	RetryAfter string
	Msg        string
	// Reason is the label for scoreproxy_requests_rejected_total; when empty
	// the handler derives it from Code.
	Reason string
}

func (e *StatusError) Error() string { return fmt.Sprintf("%d: %s", e.Code, e.Msg) }

// Errorf builds a *StatusError.
func Errorf(code int, format string, args ...any) *StatusError {
	return &StatusError{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// RedactURL returns u without user info (credentials), for logs and metric labels.
func RedactURL(u string) string { return redactURL(u) }
