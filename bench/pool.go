package main

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
)

// sampleStep is the distance between consecutive timestamps of one series.
const sampleStep = time.Second

// maxPoolBytes bounds the memory of a body pool (compressed bodies).
const maxPoolBytes = 1 << 30

// Pool holds request bodies built before any timing starts: the same
// series in every body, whose timestamps advance from body to body, so no
// (series, timestamp) pair repeats within the pool. The bodies are
// snappy-compressed prompb.WriteRequests or, for the import path, the same
// series and samples as JSON lines (see BodyFormat).
type Pool struct {
	// Bodies are the request bodies as sent, read-only once built.
	Bodies [][]byte
	// RawBytes and CompressedBytes are the totals over Bodies before and
	// after compression (equal for uncompressed JSON lines).
	RawBytes, CompressedBytes int64
	// SamplesPerBody is the number of samples in every body.
	SamplesPerBody int
	// Format is the encoding of Bodies and says which headers they need.
	Format BodyFormat
}

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
// end differ in their encoding only.
func BuildPoolFormat(w Workload, n int, end time.Time, f BodyFormat) (*Pool, error) {
	if n < 1 {
		return nil, fmt.Errorf("pool size %d: want at least 1", n)
	}
	b := newBodyBuilder(w, n, end)
	b.format = f
	first, raw, err := b.build(0)
	if err != nil {
		return nil, err
	}
	if limit := maxPoolBytes / (len(first) + 1); n > limit {
		n = limit
	}
	p := &Pool{Bodies: make([][]byte, n), SamplesPerBody: w.SamplesPerRequest(), Format: f}
	p.Bodies[0], p.RawBytes, p.CompressedBytes = first, int64(raw), int64(len(first))
	err = p.fill(b)
	return p, err
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
				body, n, err := wb.build(i)
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				p.Bodies[i] = body
				raw += int64(n)
				comp += int64(len(body))
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

// bodyBuilder turns a body index into a request body. The label sets are
// shared read-only; samples and the marshal buffer belong to one builder.
type bodyBuilder struct {
	w       Workload
	startMs int64
	format  BodyFormat
	req     prompb.WriteRequest
	buf     []byte
}

// newBodyBuilder prepares the series of w for n bodies ending near end.
func newBodyBuilder(w Workload, n int, end time.Time) *bodyBuilder {
	span := int64(n*w.Samples) * sampleStep.Milliseconds()
	b := &bodyBuilder{w: w, startMs: end.UnixMilli() - span}
	labels := w.SeriesLabels()
	b.req.Timeseries = make([]prompb.TimeSeries, len(labels))
	for i, ls := range labels {
		b.req.Timeseries[i] = prompb.TimeSeries{Labels: ls, Samples: make([]prompb.Sample, w.Samples)}
	}
	return b
}

// clone returns a builder sharing the label sets but owning its samples.
func (b *bodyBuilder) clone() *bodyBuilder {
	c := &bodyBuilder{w: b.w, startMs: b.startMs, format: b.format}
	c.req.Timeseries = make([]prompb.TimeSeries, len(b.req.Timeseries))
	for i, ts := range b.req.Timeseries {
		c.req.Timeseries[i] = prompb.TimeSeries{Labels: ts.Labels, Samples: make([]prompb.Sample, len(ts.Samples))}
	}
	return c
}

// build returns body number i as sent and its uncompressed size.
func (b *bodyBuilder) build(i int) ([]byte, int, error) {
	b.fillSamples(i)
	if b.format != FormatRemoteWrite {
		return b.buildJSONLines()
	}
	size := b.req.Size()
	if cap(b.buf) < size {
		b.buf = make([]byte, size)
	}
	n, err := b.req.MarshalToSizedBuffer(b.buf[:size])
	if err != nil {
		return nil, 0, fmt.Errorf("marshal body %d: %w", i, err)
	}
	return snappy.Encode(nil, b.buf[size-n:size]), n, nil
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
// FormatImportGzip, and returns the body and its uncompressed size.
func (b *bodyBuilder) buildJSONLines() ([]byte, int, error) {
	b.buf = appendJSONLines(b.buf[:0], &b.req)
	if b.format != FormatImportGzip {
		return slices.Clone(b.buf), len(b.buf), nil
	}
	body, err := gzipBody(b.buf)
	if err != nil {
		return nil, 0, fmt.Errorf("gzip: %w", err)
	}
	return body, len(b.buf), nil
}
