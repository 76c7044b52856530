package e2e

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/proto"

	"github.com/scoreproxy/scoreproxy/internal/testenv"
)

// protoExpositionType is the Content-Type of the protobuf exposition format,
// the only one that carries native histograms to Prometheus.
const protoExpositionType = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"

// histogramExporter serves, in the protobuf exposition format, metrics whose
// values follow the scrape number n (1, 2, ...): an integer native histogram
// (latencyHistogram), a float native histogram (errorRatioHistogram), a
// classic histogram (batchSizeHistogram, which Prometheus may convert to a
// native histogram with custom buckets), a counter and a gauge.
func histogramExporter(t *testing.T) *httptest.Server {
	var scrapes atomic.Int64
	srv := loopbackServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := float64(scrapes.Add(1))
		w.Header().Set("Content-Type", protoExpositionType)
		for _, mf := range histogramFamilies(n) {
			if _, err := protodelim.MarshalTo(w, mf); err != nil {
				t.Errorf("histogram exporter: %v", err)
				return
			}
		}
	}))
	return srv
}

// The names of the exporter's metrics.
const (
	latencyHistogram    = "model_latency_seconds"
	errorRatioHistogram = "model_error_ratio"
	batchSizeHistogram  = "model_batch_size"
	runsCounter         = "model_runs_total"
)

// exponentialHistograms are the exporter's native histograms with
// exponential buckets; batchSizeHistogram becomes one with custom buckets.
var exponentialHistograms = []string{latencyHistogram, errorRatioHistogram}

// histogramFamilies are the exporter's metrics at scrape n.
func histogramFamilies(n float64) []*dto.MetricFamily {
	un := uint64(n)
	return []*dto.MetricFamily{
		{
			// Schema 0: buckets (0.5,1], (1,2], (2,4] holding n, 2n, 3n
			// (deltas n, n, n) and a zero bucket of n.
			Name: proto.String(latencyHistogram), Help: proto.String("integer native histogram"), Type: dto.MetricType_HISTOGRAM.Enum(),
			Metric: []*dto.Metric{{Histogram: &dto.Histogram{
				SampleCount: proto.Uint64(7 * un), SampleSum: proto.Float64(10.5 * n),
				Schema: proto.Int32(0), ZeroThreshold: proto.Float64(0.001), ZeroCount: proto.Uint64(un),
				PositiveSpan:  []*dto.BucketSpan{{Offset: proto.Int32(0), Length: proto.Uint32(3)}},
				PositiveDelta: []int64{int64(n), int64(n), int64(n)},
			}}},
		},
		{
			// Schema 1, float counts: buckets (0.5,√½], (√½,1] holding
			// 0.25n and 0.75n, and a zero bucket of 0.5n.
			Name: proto.String(errorRatioHistogram), Help: proto.String("float native histogram"), Type: dto.MetricType_HISTOGRAM.Enum(),
			Metric: []*dto.Metric{{Histogram: &dto.Histogram{
				SampleCountFloat: proto.Float64(1.5 * n), SampleSum: proto.Float64(0.375 * n),
				Schema: proto.Int32(1), ZeroThreshold: proto.Float64(0.001), ZeroCountFloat: proto.Float64(0.5 * n),
				PositiveSpan:  []*dto.BucketSpan{{Offset: proto.Int32(-1), Length: proto.Uint32(2)}},
				PositiveCount: []float64{0.25 * n, 0.75 * n},
			}}},
		},
		{
			Name: proto.String(batchSizeHistogram), Help: proto.String("classic histogram"), Type: dto.MetricType_HISTOGRAM.Enum(),
			Metric: []*dto.Metric{{Histogram: &dto.Histogram{
				SampleCount: proto.Uint64(4 * un), SampleSum: proto.Float64(42 * n),
				Bucket: []*dto.Bucket{
					{UpperBound: proto.Float64(1), CumulativeCount: proto.Uint64(un)},
					{UpperBound: proto.Float64(10), CumulativeCount: proto.Uint64(3 * un)},
					{UpperBound: proto.Float64(100), CumulativeCount: proto.Uint64(4 * un)},
				},
			}}},
		},
		{
			Name: proto.String(runsCounter), Help: proto.String("scrapes served"), Type: dto.MetricType_COUNTER.Enum(),
			Metric: []*dto.Metric{{Counter: &dto.Counter{Value: proto.Float64(n)}}},
		},
		{
			Name: proto.String("anomaly_score"), Help: proto.String("model output"), Type: dto.MetricType_GAUGE.Enum(),
			Metric: []*dto.Metric{{
				Label: []*dto.LabelPair{{Name: proto.String("for"), Value: proto.String("cpu_rate")}},
				Gauge: &dto.Gauge{Value: proto.Float64(n / 4)},
			}},
		},
	}
}

// wantHistogramValues checks that got has the exporter's native histograms
// named in names, and that each of their samples is the one of some scrape
// n, counting up: what the exporter served, not only what another store
// holds.
func wantHistogramValues(got []testenv.HistogramSeries, names ...string) error {
	found := map[string]bool{}
	for _, s := range got {
		name := s.Labels["__name__"]
		check, ok := histogramChecks[name]
		if !ok || !slices.Contains(names, name) {
			continue
		}
		found[name] = true
		last := 0.0
		for _, smp := range s.Samples {
			n, err := check(smp)
			if err != nil {
				return fmt.Errorf("%s at %d: %v (%+v)", s.Key(), smp.Timestamp, err, smp)
			}
			if n <= last {
				return fmt.Errorf("%s at %d: scrape %v after %v", s.Key(), smp.Timestamp, n, last)
			}
			last = n
		}
	}
	for _, name := range names {
		if !found[name] {
			return fmt.Errorf("no native histogram %s", name)
		}
	}
	return nil
}

// histogramChecks return the scrape number a sample of each native
// histogram belongs to, or an error when it is not what the exporter served.
var histogramChecks = map[string]func(testenv.HistogramSample) (float64, error){
	latencyHistogram: func(h testenv.HistogramSample) (float64, error) {
		n := h.Count / 7
		return n, wantBuckets(h, 10.5*n, []testenv.HistogramBucket{
			{Boundaries: 3, Lower: -0.001, Upper: 0.001, Count: n},
			{Boundaries: 0, Lower: 0.5, Upper: 1, Count: n},
			{Boundaries: 0, Lower: 1, Upper: 2, Count: 2 * n},
			{Boundaries: 0, Lower: 2, Upper: 4, Count: 3 * n},
		})
	},
	errorRatioHistogram: func(h testenv.HistogramSample) (float64, error) {
		n := h.Count / 1.5
		return n, wantBuckets(h, 0.375*n, []testenv.HistogramBucket{
			{Boundaries: 3, Lower: -0.001, Upper: 0.001, Count: 0.5 * n},
			{Boundaries: 0, Lower: 0.5, Upper: sqrtHalf, Count: 0.25 * n},
			{Boundaries: 0, Lower: sqrtHalf, Upper: 1, Count: 0.75 * n},
		})
	},
	batchSizeHistogram: func(h testenv.HistogramSample) (float64, error) {
		n := h.Count / 4
		// Custom buckets: the first one starts at -Inf.
		return n, wantBuckets(h, 42*n, []testenv.HistogramBucket{
			{Boundaries: 3, Lower: math.Inf(-1), Upper: 1, Count: n},
			{Boundaries: 0, Lower: 1, Upper: 10, Count: 2 * n},
			{Boundaries: 0, Lower: 10, Upper: 100, Count: n},
		})
	},
}

// sqrtHalf is √½, the bound between the two buckets of schema 1 below 1,
// as Prometheus' bucket table has it (one ulp below math.Sqrt2 / 2).
const sqrtHalf = 0.7071067811865475

func wantBuckets(h testenv.HistogramSample, sum float64, buckets []testenv.HistogramBucket) error {
	if sum != h.Sum {
		return fmt.Errorf("sum %v, want %v", h.Sum, sum)
	}
	if fmt.Sprint(h.Buckets) != fmt.Sprint(buckets) {
		return fmt.Errorf("buckets %v, want %v", h.Buckets, buckets)
	}
	return nil
}
