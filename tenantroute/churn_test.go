package tenantroute

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/s2"
	"github.com/prometheus/prometheus/prompb"

	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// BenchmarkProcessNewSeries is the miss path: every series of every request
// is new to the rewrite cache (snappy-decoded, decoded in full, rewritten,
// routed, encoded, compressed and, as far as the cache admits them, added
// to it), the cost of series churn. Requests are the standard 1,000-series
// anomaly request, each with its own pod label and model-like samples (see
// distinctBodies), with the seed
// metric_format, forwarded unchanged (pass-through, as Prometheus traffic
// into a multitenant writer) or split across their ten tenants; the
// router is replaced (untimed) every 64 requests, so that none of its
// series is known. "floor" is what no proxy that rebuilds the body can
// avoid: snappy decode and encode of the same bodies, with the codec the
// receiver and the batches use. The targets are pass-through within 2x of
// the floor and metric_format within 3x.
func BenchmarkProcessNewSeries(b *testing.B) {
	const distinct = 64
	compressed := distinctBodies(b, distinct)
	b.Run("floor", func(b *testing.B) {
		var raw, out []byte
		cpu := processCPU(b)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			var err error
			if raw, err = s2.Decode(raw[:cap(raw)], compressed[i%distinct]); err != nil {
				b.Fatal(err)
			}
			out = s2.EncodeSnappy(out[:cap(out)], raw)
		}
		b.StopTimer()
		reportPerSample(b, 2000, cpu)
	})
	for _, bc := range missPathCases {
		b.Run(bc.name, func(b *testing.B) {
			var r *Router
			var p processor
			cpu := processCPU(b)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if i%distinct == 0 {
					b.StopTimer()
					r = newTestRouter(b, Options{BaseURL: base, TenantID: Multitenant, SplitTenants: bc.split}, bc.format, discard{})
					b.StartTimer()
				}
				p.process(b, r, compressed[i%distinct])
			}
			b.StopTimer()
			reportPerSample(b, 2000, cpu)
		})
	}
}

// BenchmarkProcessSeriesSet is the steady state of one router whose
// producers cycle through a series set far larger than its rewrite cache:
// 256 standard requests of 1,000 series each, 256,000 distinct series, as
// BenchmarkProcessNewSeries builds them. The router has seen the whole set
// twice before the timer starts, so its cache's admission has adapted (see
// admission): this is what a series set of that size costs for as long as
// it lasts, where BenchmarkProcessNewSeries measures a router that has
// just started.
func BenchmarkProcessSeriesSet(b *testing.B) {
	const distinct = 256
	compressed := distinctBodies(b, distinct)
	for _, bc := range missPathCases {
		b.Run(bc.name, func(b *testing.B) {
			r := newTestRouter(b, Options{BaseURL: base, TenantID: Multitenant, SplitTenants: bc.split}, bc.format, discard{})
			var p processor
			for i := 0; i < 2*distinct; i++ {
				p.process(b, r, compressed[i%distinct])
			}
			cpu := processCPU(b)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				p.process(b, r, compressed[i%distinct])
			}
			b.StopTimer()
			reportPerSample(b, 2000, cpu)
		})
	}
}

// missPathCases are the routers the miss-path benchmarks run: with the seed
// metric_format, forwarding unchanged (pass-through, as Prometheus traffic
// into a multitenant writer; the handler keeps the compressed body) or
// splitting across the ten tenants (ten bodies encoded and compressed).
var missPathCases = []struct {
	name   string
	format map[string]string
	split  bool
}{
	{"metric_format", seedFormat, false},
	{"passthrough", nil, false},
	{"split", nil, true},
}

// distinctBodies returns n snappy-compressed standard anomaly requests of
// 1,000 series, each series with a pod label of its request's own, so that
// no two requests share a series, and with samples as a model writes them:
// arbitrary float values at millisecond timestamps a minute apart. (Such
// bodies compress about 5:1, near bench's 6:1; with the constant samples of
// anomalyRequest they would compress 16:1, and snappy would cost a third
// of what it costs on real traffic.)
func distinctBodies(b testing.TB, n int) [][]byte {
	compressed := make([][]byte, n)
	rng := rand.New(rand.NewPCG(uint64(n), 1))
	for k := range compressed {
		wr := anomalyRequest(1000, 10)
		for i := range wr.Timeseries {
			s := &wr.Timeseries[i]
			s.Labels = append(s.Labels, prompb.Label{Name: "zpod", Value: fmt.Sprint("pod-", k)})
			start := 1_765_000_000_000 + int64(k)*120_000 + rng.Int64N(1000)
			for j := range s.Samples {
				s.Samples[j] = prompb.Sample{Value: rng.NormFloat64() * 100, Timestamp: start + int64(j)*60_000}
			}
		}
		body, err := wr.Marshal()
		if err != nil {
			b.Fatal(err)
		}
		compressed[k] = snappy.Encode(nil, body)
	}
	return compressed
}

// processor decodes and routes requests as the handler does, reusing its
// buffers across requests.
type processor struct {
	req remotewrite.Request
	raw []byte
}

func (p *processor) process(b testing.TB, r *Router, compressed []byte) {
	var err error
	if p.raw, err = s2.Decode(p.raw[:cap(p.raw)], compressed); err != nil {
		b.Fatal(err)
	}
	if err := remotewrite.DecodeWriteRequestKnown(p.raw, &p.req, r); err != nil {
		b.Fatal(err)
	}
	p.req.Compressed = compressed
	if err := r.Process(context.Background(), &p.req, ""); err != nil {
		b.Fatal(err)
	}
}

// entrySinkKey and entrySinkFields keep what the allocation counts make
// escaping, as an entry does.
var (
	entrySinkKey    string
	entrySinkFields []byte
)

// A new series' entry takes its key and encoded labels from one allocation
// (one from the key alone when the labels are unchanged), copied from the
// decoder's buffer; the fields' capacity ends at their length, so an append
// to them copies. The cache counts shared bytes once.
func TestNewEntryBytes(t *testing.T) {
	labels := []remotewrite.Label{
		{Name: []byte("__name__"), Value: []byte("vmanomaly_y")},
		{Name: []byte("for"), Value: []byte("q1")},
		{Name: []byte("job"), Value: []byte("")},
	}
	key := remotewrite.AppendLabelFields(nil, labels[1:])
	wantFields := remotewrite.AppendLabelFields(nil, labels)

	k, fields := keyAndFields(key, labels)
	if k != string(key) || string(fields) != string(wantFields) || cap(fields) != len(fields) {
		t.Fatalf("key %q fields %q (cap %d), want %q and %q", k, fields, cap(fields), key, wantFields)
	}
	key[0] ^= 0xff // the caller's buffer is reused by the decoder: the entry must not see it
	if k == string(key) || string(fields) != string(wantFields) {
		t.Fatalf("entry shares the caller's bytes: key %q fields %q", k, fields)
	}
	key[0] ^= 0xff
	if n := testing.AllocsPerRun(100, func() { entrySinkKey, entrySinkFields = keyAndFields(key, labels) }); n != 1 {
		t.Errorf("keyAndFields: %.0f allocations, want 1", n)
	}

	sk, sf := sameBytes(key)
	if sk != string(key) || string(sf) != string(key) || cap(sf) != len(sf) {
		t.Fatalf("sameBytes: %q %q", sk, sf)
	}
	if n := testing.AllocsPerRun(100, func() { entrySinkKey, entrySinkFields = sameBytes(key) }); n != 1 {
		t.Errorf("sameBytes: %.0f allocations, want 1", n)
	}
	shared := entryBytes(&rewrite{key: sk, labelFields: sf})
	separate := entryBytes(&rewrite{key: k, labelFields: fields})
	if shared != len(key)+entryOverhead || separate != len(key)+len(fields)+entryOverhead {
		t.Errorf("entryBytes: shared %d, separate %d; want %d and %d", shared, separate,
			len(key)+entryOverhead, len(key)+len(fields)+entryOverhead)
	}
}
