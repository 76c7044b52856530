package main

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
)

// sampleStep is the distance between consecutive timestamps of one series.
const sampleStep = time.Second

// maxPoolBytes bounds the memory of a body pool (the bodies as stored).
const maxPoolBytes = 1 << 30

// Pool holds request bodies built before any timing starts. Which series
// each body carries follows the workload's seriesPlan (by default the same
// series in every body); timestamps advance from body to body, so no
// (series, timestamp) pair repeats within the pool. The bodies are
// snappy-compressed prompb.WriteRequests or, for the import path, the same
// series and samples as JSON lines (see BodyFormat).
type Pool struct {
	// Bodies are the request bodies, read-only once built: as sent, or for
	// a pool with churn uncompressed, to be numbered and compressed by the
	// sender (see body).
	Bodies [][]byte
	// RawBytes and CompressedBytes are the totals over Bodies before and
	// after compression (equal for uncompressed JSON lines; for a pool with
	// churn, CompressedBytes is the first body's as sent times the bodies).
	RawBytes, CompressedBytes int64
	// SamplesPerBody is the number of samples in every body.
	SamplesPerBody int
	// Format is the encoding of Bodies and says which headers they need.
	Format BodyFormat
	// samples is the number of samples per series.
	samples int
	// tenants[i] counts body i's series per tenant; nil without tenant labels.
	tenants [][]tenantCount
	// markers[i] are the offsets of body i's request-number digits; nil
	// without churn.
	markers [][]int32
	// requests numbers the requests sent from a pool with churn, so no
	// two of them carry the same never-seen series.
	requests atomic.Uint64
}

// tenantCount is the number of series of one body in one tenant.
type tenantCount struct{ tenant, series int32 }

// AvgRaw returns the mean uncompressed body size in bytes.
func (p *Pool) AvgRaw() int64 { return p.RawBytes / int64(len(p.Bodies)) }

// AvgCompressed returns the mean body size as sent in bytes.
func (p *Pool) AvgCompressed() int64 { return p.CompressedBytes / int64(len(p.Bodies)) }

// Describe renders the mean body size for summaries.
func (p *Pool) Describe() string { return p.Format.describeBody(p.AvgCompressed(), p.AvgRaw()) }

// BuildPool builds n distinct remote-write bodies of workload w whose last
// timestamp is close to end. n is lowered if the pool would exceed
// maxPoolBytes.
func BuildPool(w Workload, n int, end time.Time) (*Pool, error) {
	return BuildPoolFormat(w, n, end, FormatRemoteWrite)
}

// BuildPoolFormat is BuildPool with bodies in format f. Body i of every
// format carries the same samples, so pools built with the same w, n and
// end differ in their encoding only. n is raised to the bodies that carry
// every distinct series (minBodies).
func BuildPoolFormat(w Workload, n int, end time.Time, f BodyFormat) (*Pool, error) {
	if n < 1 {
		return nil, fmt.Errorf("pool size %d: want at least 1", n)
	}
	n = max(n, minBodies(w))
	b := newBodyBuilder(w, n, end, f, newSeriesPlan(w, 1))
	first, err := b.build(0)
	if err != nil {
		return nil, err
	}
	limit := maxPoolBytes / (len(first.body) + 1)
	if need := minBodies(w); limit < need {
		return nil, fmt.Errorf("-distinct %d: the pool needs %d bodies of %.1f KB to carry every series, over its %d MiB cap: "+
			"lower -distinct or -churn", w.DistinctSeries(), need, float64(len(first.body))/1000, maxPoolBytes>>20)
	}
	n = min(n, limit)
	b.plan = newSeriesPlan(w, n)
	p := &Pool{Bodies: make([][]byte, n), SamplesPerBody: w.SamplesPerRequest(), Format: f, samples: w.Samples}
	if b.tenantOf != nil {
		p.tenants = make([][]tenantCount, n)
	}
	if w.ChurnedPerRequest() > 0 {
		p.markers = make([][]int32, n)
	}
	p.store(0, first)
	p.RawBytes, p.CompressedBytes = int64(first.raw), int64(len(first.body))
	if err := p.fill(b); err != nil {
		return nil, err
	}
	return p, p.estimateCompressed()
}

// builtBody is one body with what the pool keeps about it.
type builtBody struct {
	body    []byte
	raw     int
	markers []int32
	tenants []tenantCount
}

// store keeps body i; the caller owns index i.
func (p *Pool) store(i int, bb builtBody) {
	p.Bodies[i] = bb.body
	if p.tenants != nil {
		p.tenants[i] = bb.tenants
	}
	if p.markers != nil {
		p.markers[i] = bb.markers
	}
}

// estimateCompressed sets CompressedBytes of a pool with churn from its
// first body as sent (compressing them all would cost a gzip pool seconds).
func (p *Pool) estimateCompressed() error {
	if p.markers == nil {
		return nil
	}
	var sb sendBuf
	sb.raw = append(sb.raw, p.Bodies[0]...)
	out, err := p.encode(&sb)
	p.CompressedBytes = int64(len(out)) * int64(len(p.Bodies))
	return err
}

// fill builds bodies 1..n-1 on all CPUs.
func (p *Pool) fill(b *bodyBuilder) error {
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	workers := runtime.GOMAXPROCS(0)
	for k := 0; k < workers; k++ {
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			wb := b.clone()
			var raw, comp int64
			for i := 1 + k; i < len(p.Bodies); i += workers {
				bb, err := wb.build(i)
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				p.store(i, bb)
				raw += int64(bb.raw)
				comp += int64(len(bb.body))
			}
			mu.Lock()
			p.RawBytes += raw
			p.CompressedBytes += comp
			mu.Unlock()
		}(k)
	}
	wg.Wait()
	return firstErr
}

// AckedTenantSamples returns the samples per tenant key "account:project"
// in the bodies acknowledged acked[i] times each, as a counting sink
// derives them from the labels; nil without tenant labels.
func (p *Pool) AckedTenantSamples(acked []int64) map[string]int64 {
	if p.tenants == nil {
		return nil
	}
	m := map[string]int64{}
	for i, n := range acked {
		for _, tc := range p.tenants[i] {
			m[strconv.Itoa(int(tc.tenant))+":0"] += n * int64(tc.series) * int64(p.samples)
		}
	}
	return m
}

// TenantKeys returns the tenant keys "account:project" of the pool's
// series, sorted; nil without tenant labels.
func (p *Pool) TenantKeys() []string {
	if p.tenants == nil {
		return nil
	}
	ones := make([]int64, len(p.Bodies))
	for i := range ones {
		ones[i] = 1
	}
	return sortedKeys(p.AckedTenantSamples(ones))
}

// bodyBuilder turns a body index into a request body. The plan and the
// shared label sets are read-only; the rest belongs to one builder.
type bodyBuilder struct {
	w        Workload
	startMs  int64
	format   BodyFormat
	plan     *seriesPlan
	gens     []labelGen          // the distinct series' label generators, in sent order
	fixed    [][]prompb.Label    // labels of series 0..Series-1, the steady ones when distinct == series
	churn    [][]prompb.Label    // the never-seen variants of series 0..Series-1; nil without churn
	tenantOf func(s int) int     // tenant of distinct series s; nil without tenant labels
	own      [][]prompb.Label    // label buffers of the steady positions when distinct > series
	slots    []int32             // distinct series of each position of the current body
	churned  []bool              // whether each position of the current body is churned
	count    map[int32]int32     // series per tenant of the current body
	req      prompb.WriteRequest // the current body
	buf      []byte
}

// newBodyBuilder prepares the series of w for n bodies in format f ending
// near end.
func newBodyBuilder(w Workload, n int, end time.Time, f BodyFormat, plan *seriesPlan) *bodyBuilder {
	span := int64(n*w.Samples) * sampleStep.Milliseconds()
	u := w.universe()
	b := &bodyBuilder{w: w, startMs: end.UnixMilli() - span, format: f, plan: plan, gens: u.sortedGenerators()}
	b.fixed = make([][]prompb.Label, w.Series)
	for s := range b.fixed {
		b.fixed[s] = fillLabels(make([]prompb.Label, len(b.gens)), b.gens, s)
	}
	if w.ChurnedPerRequest() > 0 {
		b.churn = churnVariants(b.fixed)
	}
	if u.hasLabel("vm_account_id") {
		b.tenantOf = u.tenantOf
	}
	b.req.Timeseries = make([]prompb.TimeSeries, w.Series)
	for i := range b.req.Timeseries {
		b.req.Timeseries[i].Samples = make([]prompb.Sample, w.Samples)
	}
	return b.clone()
}

// churnVariants returns copies of the label sets with churnMarker
// appended to their instance value.
func churnVariants(sets [][]prompb.Label) [][]prompb.Label {
	out := make([][]prompb.Label, len(sets))
	for s, ls := range sets {
		out[s] = slices.Clone(ls)
		for j := range out[s] {
			if out[s][j].Name == "instance" {
				out[s][j].Value += churnMarker
			}
		}
	}
	return out
}

// clone returns a builder sharing the plan and the shared label sets but
// owning its samples and buffers; series appended to req after the
// workload's keep their labels.
func (b *bodyBuilder) clone() *bodyBuilder {
	c := &bodyBuilder{w: b.w, startMs: b.startMs, format: b.format, plan: b.plan, gens: b.gens, fixed: b.fixed,
		churn: b.churn, tenantOf: b.tenantOf, count: map[int32]int32{}}
	c.slots, c.churned = make([]int32, b.w.Series), make([]bool, b.w.Series)
	c.req.Timeseries = make([]prompb.TimeSeries, len(b.req.Timeseries))
	for i, ts := range b.req.Timeseries {
		c.req.Timeseries[i] = prompb.TimeSeries{Labels: ts.Labels, Samples: make([]prompb.Sample, len(ts.Samples))}
	}
	if b.w.DistinctSeries() > b.w.Series {
		c.own = make([][]prompb.Label, b.w.Series)
		for i := range c.own {
			c.own[i] = make([]prompb.Label, len(b.gens))
		}
	}
	return c
}

// build returns body number i as the pool stores it.
func (b *bodyBuilder) build(i int) (builtBody, error) {
	b.plan.fill(i, b.slots, b.churned)
	for pos := range b.slots {
		b.req.Timeseries[pos].Labels = b.labels(pos)
	}
	b.fillSamples(i)
	bb, err := b.encode(i)
	if err != nil {
		return bb, err
	}
	if b.churn != nil {
		if bb.markers, err = markerOffsets(bb.body, b.w.ChurnedPerRequest()); err != nil {
			return bb, fmt.Errorf("body %d: %w", i, err)
		}
	}
	bb.tenants = b.tenantCounts()
	return bb, nil
}

// labels returns the label set at position pos of the current body.
func (b *bodyBuilder) labels(pos int) []prompb.Label {
	switch {
	case b.churned[pos]:
		return b.churn[pos]
	case b.own == nil:
		return b.fixed[pos]
	}
	return fillLabels(b.own[pos], b.gens, int(b.slots[pos]))
}

// tenantCounts counts the current body's series per tenant, in tenant
// order; nil without tenant labels.
func (b *bodyBuilder) tenantCounts() []tenantCount {
	if b.tenantOf == nil {
		return nil
	}
	clear(b.count)
	for _, s := range b.slots {
		b.count[int32(b.tenantOf(int(s)))]++
	}
	out := make([]tenantCount, 0, len(b.count))
	for t, n := range b.count {
		out = append(out, tenantCount{t, n})
	}
	slices.SortFunc(out, func(x, y tenantCount) int { return cmp.Compare(x.tenant, y.tenant) })
	return out
}

// encode renders the current request in the builder's format: as sent,
// or uncompressed when the pool has churn (the sender compresses it).
func (b *bodyBuilder) encode(i int) (builtBody, error) {
	if b.format != FormatRemoteWrite {
		return b.buildJSONLines()
	}
	size := b.req.Size()
	if cap(b.buf) < size {
		b.buf = make([]byte, size)
	}
	n, err := b.req.MarshalToSizedBuffer(b.buf[:size])
	if err != nil {
		return builtBody{}, fmt.Errorf("marshal body %d: %w", i, err)
	}
	raw := b.buf[size-n : size]
	if b.churn != nil {
		return builtBody{body: slices.Clone(raw), raw: n}, nil
	}
	return builtBody{body: snappy.Encode(nil, raw), raw: n}, nil
}

// fillSamples sets the samples of body number i: its own timestamps and
// values drawn from a generator seeded with i.
func (b *bodyBuilder) fillSamples(i int) {
	rng := rand.New(rand.NewPCG(uint64(i), 0x5c0e))
	base := b.startMs + int64(i*b.w.Samples)*sampleStep.Milliseconds()
	for s := range b.req.Timeseries {
		samples := b.req.Timeseries[s].Samples
		for j := range samples {
			samples[j] = prompb.Sample{
				Timestamp: base + int64(j)*sampleStep.Milliseconds(),
				Value:     rng.Float64() * 100,
			}
		}
	}
}

// buildJSONLines renders the current samples as JSON lines, gzipped for
// FormatImportGzip unless the pool has churn, and returns the body and its
// uncompressed size.
func (b *bodyBuilder) buildJSONLines() (builtBody, error) {
	b.buf = appendJSONLines(b.buf[:0], &b.req)
	if b.format != FormatImportGzip || b.churn != nil {
		return builtBody{body: slices.Clone(b.buf), raw: len(b.buf)}, nil
	}
	body, err := gzipBody(b.buf)
	if err != nil {
		return builtBody{}, fmt.Errorf("gzip: %w", err)
	}
	return builtBody{body: body, raw: len(b.buf)}, nil
}

// sendBuf is one sender's space for numbering and compressing the
// requests of a pool with churn, reused from request to request.
type sendBuf struct {
	raw, out []byte
	gz       bytes.Buffer
	zw       *gzip.Writer
}

// body returns body i as sent. A pool with churn copies it into sb,
// writes the next request number into its never-seen series and
// compresses it there: the result is valid until the next call with sb.
func (p *Pool) body(i int, sb *sendBuf) ([]byte, error) {
	if p.markers == nil {
		return p.Bodies[i], nil
	}
	sb.raw = append(sb.raw[:0], p.Bodies[i]...)
	patchNumber(sb.raw, p.markers[i], p.requests.Add(1))
	return p.encode(sb)
}

// encode compresses sb.raw as the pool's format sends it.
func (p *Pool) encode(sb *sendBuf) ([]byte, error) {
	switch p.Format {
	case FormatImport:
		return sb.raw, nil
	case FormatImportGzip:
		sb.gz.Reset()
		if sb.zw == nil {
			sb.zw = gzip.NewWriter(&sb.gz)
		} else {
			sb.zw.Reset(&sb.gz)
		}
		if _, err := sb.zw.Write(sb.raw); err != nil {
			return nil, err
		}
		err := sb.zw.Close()
		return sb.gz.Bytes(), err
	}
	if n := snappy.MaxEncodedLen(len(sb.raw)); cap(sb.out) < n {
		sb.out = make([]byte, n)
	}
	return snappy.Encode(sb.out[:cap(sb.out)], sb.raw), nil
}

// drop forgets the buffers, for when a request may still be reading them
// (net/http can close a request body after the response has come).
func (sb *sendBuf) drop() { *sb = sendBuf{} }
