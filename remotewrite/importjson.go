package remotewrite

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/klauspost/compress/s2"
)

// metricImportDropped counts, by kind, what the JSON import output cannot
// carry: "histogram" (native histogram samples), "exemplar",
// "stale_marker" (Prometheus staleness markers) and "metadata".
const metricImportDropped = "scoreproxy_import_json_dropped_total"

// writeSuffix ends every write URL the router builds: <datasource_url>/api/v1/write
// (single node) or <datasource_url>/insert/<tenant>/prometheus/api/v1/write.
const writeSuffix = "/api/v1/write"

// formatJSONLines is VictoriaMetrics' JSON line import, uncompressed as
// vmanomaly's writer sends it.
var formatJSONLines = wireFormat{contentType: "application/json"}

// ImportURL maps a remote-write URL to the JSON import URL vmanomaly's
// VmWriter writes to: <datasource_url><import_json_path> for a single node,
// <datasource_url>/insert/<tenant>/prometheus<import_json_path> for a
// cluster (tenant "multitenant" included). importPath gets exactly one
// leading slash.
func ImportURL(writeURL, importPath string) (string, error) {
	prefix, ok := strings.CutSuffix(writeURL, writeSuffix)
	if !ok {
		return "", fmt.Errorf("write URL %s does not end in %s", redactURL(writeURL), writeSuffix)
	}
	return prefix + "/" + strings.TrimLeft(importPath, "/"), nil
}

// CheckImportPath validates writer.import_json_path for the import_json
// output: a path such as /api/v1/import, nothing else.
func CheckImportPath(p string) error {
	u, err := url.Parse(p)
	switch {
	case p == "":
		return errors.New("is empty; use /api/v1/import")
	case err != nil || u.Scheme != "" || u.Host != "":
		return fmt.Errorf("%q is not a path; it is appended to the tenant's URL, e.g. /api/v1/import", p)
	case !strings.HasPrefix(p, "/"):
		return fmt.Errorf("%q must start with /, e.g. /api/v1/import", p)
	case u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(p, "?#"):
		return fmt.Errorf("%q must be a plain path, without ? or #", p)
	}
	return nil
}

// ImportJSON is a Sender (a decorator of Client) that writes each
// remote-write batch as VictoriaMetrics JSON lines to the tenant's import
// URL instead of remote-writing it: vmanomaly's writer.import_json_path
// output. It takes the snappy RW1 bodies the router builds (directly or
// through the durable queue), so routing, metric_format and queueing are
// the same as for remote write. Native histograms, exemplars, staleness
// markers and metadata have no JSON line form: they are counted in
// scoreproxy_import_json_dropped_total and logged (rate limited).
type ImportJSON struct {
	client *Client
	path   string
	logger *slog.Logger
	limit  *LogLimiter
	urls   sync.Map  // write URL -> import URL
	states sync.Pool // *importState
	// dropped are the metricImportDropped counters by kind.
	dropped struct{ histograms, exemplars, staleMarkers, metadata *metrics.Counter }
}

// importState is the reused memory of one conversion.
type importState struct {
	raw []byte
	req Request
}

// NewImportJSON returns a Sender writing JSON lines through client to
// importPath under each tenant's URL.
func NewImportJSON(client *Client, importPath string, logger *slog.Logger) (*ImportJSON, error) {
	if client == nil {
		return nil, errors.New("import_json: no client")
	}
	if err := CheckImportPath(importPath); err != nil {
		return nil, fmt.Errorf("writer.import_json_path %w", err)
	}
	if logger == nil {
		logger = slog.Default()
	}
	s := &ImportJSON{client: client, path: importPath, logger: logger, limit: NewLogLimiter(time.Minute, 5)}
	s.states.New = func() any { return new(importState) }
	kind := func(k string) *metrics.Counter {
		return metrics.GetOrCreateCounter(metricImportDropped + `{kind="` + k + `"}`)
	}
	s.dropped.histograms, s.dropped.exemplars = kind("histogram"), kind("exemplar")
	s.dropped.staleMarkers, s.dropped.metadata = kind("stale_marker"), kind("metadata")
	return s, nil
}

// Send converts one snappy RW1 body and POSTs it to the import URL of
// rawURL. A body that cannot be converted (not snappy, not a valid
// WriteRequest: a damaged queue record) is answered with a 400 result
// without a request, since sending it again cannot succeed; the queue
// treats it as rejected. A batch with nothing JSON can carry is dropped
// (counted) and answered 204 without a request.
func (s *ImportJSON) Send(ctx context.Context, rawURL string, body []byte, stats BatchStats) SendResult {
	importURL, err := s.importURL(rawURL)
	if err != nil {
		return SendResult{StatusCode: http.StatusBadRequest, Message: "import_json: " + err.Error(), URL: redactURL(rawURL)}
	}
	start := time.Now()
	st := s.states.Get().(*importState)
	defer s.putState(st)
	if err := st.decode(body); err != nil {
		return SendResult{StatusCode: http.StatusBadRequest, URL: redactURL(importURL),
			Message: "import_json: cannot convert the batch to JSON lines: " + err.Error()}
	}
	ob := getOutBody()
	var drops importDrops
	var series, samples int
	ob.buf, series, samples = appendImportJSON(ob.buf[:0], &st.req, &drops)
	s.countDrops(drops, importURL)
	if len(ob.buf) == 0 {
		ob.closed.Store(true) // never sent
		ob.release()
		return SendResult{StatusCode: http.StatusNoContent, URL: redactURL(importURL)}
	}
	out := BatchStats{Series: series, Samples: samples,
		SerializeSeconds: stats.SerializeSeconds + time.Since(start).Seconds()}
	if series == stats.Series && samples == stats.Samples {
		out.QueryKeys = stats.QueryKeys // else some were dropped: all count under ""
	}
	m, begun := s.client.begin(importURL, out)
	res, reason := s.client.post(ctx, importURL, nil, ob, formatJSONLines, begun)
	sent := len(ob.buf)
	ob.release()
	return s.client.finish(m, begun, res, reason, sent, out)
}

// importURL returns the cached import URL of a write URL.
func (s *ImportJSON) importURL(rawURL string) (string, error) {
	if u, ok := s.urls.Load(rawURL); ok {
		return u.(string), nil
	}
	u, err := ImportURL(rawURL, s.path)
	if err != nil {
		return "", err
	}
	s.urls.Store(rawURL, u)
	return u, nil
}

// decode snappy-decodes body into st.raw and parses it into st.req.
func (st *importState) decode(body []byte) error {
	n, err := s2.DecodedLen(body)
	if err != nil {
		return fmt.Errorf("snappy: %w", err)
	}
	if cap(st.raw) < n {
		st.raw = make([]byte, n)
	}
	raw, err := s2.Decode(st.raw[:cap(st.raw)], body)
	if err != nil {
		return fmt.Errorf("snappy: %w", err)
	}
	return DecodeWriteRequest(raw, &st.req)
}

func (s *ImportJSON) putState(st *importState) {
	st.req.Reset()
	if cap(st.raw) > maxPooledBody {
		return
	}
	s.states.Put(st)
}

// countDrops counts and logs (rate limited) what a batch lost.
func (s *ImportJSON) countDrops(d importDrops, importURL string) {
	if !d.any() {
		return
	}
	s.dropped.histograms.Add(d.histograms)
	s.dropped.exemplars.Add(d.exemplars)
	s.dropped.staleMarkers.Add(d.staleMarkers)
	s.dropped.metadata.Add(d.metadata)
	s.limit.Warn(s.logger, "import_json_dropped",
		"writer.output import_json cannot carry native histograms, exemplars, staleness markers or metadata: "+
			"dropped them (see "+metricImportDropped+"); use writer.output: remote_write to keep them",
		"url", redactURL(importURL), "histogram_samples", d.histograms, "exemplars", d.exemplars,
		"stale_markers", d.staleMarkers, "metadata", d.metadata)
}
