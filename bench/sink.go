package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/golang/snappy"
)

// Limits of one request the sink accepts.
const (
	maxSinkBody    = 64 << 20
	maxSinkDecoded = 256 << 20
	maxSinkNames   = 10000       // distinct metric names counted; the rest go to otherName
	otherName      = "__other__" // bucket for metric names past maxSinkNames
	singleTenant   = "single-node"
)

// Counter counts what arrived for one path, tenant or metric name.
type Counter struct {
	Requests int64 `json:"requests"`
	Series   int64 `json:"series"`
	Samples  int64 `json:"samples"`
	// TenantLabelled counts series still carrying vm_account_id or vm_project_id.
	TenantLabelled int64 `json:"tenant_labelled_series"`
}

// add adds o to c.
func (c *Counter) add(o Counter) {
	c.Requests += o.Requests
	c.Series += o.Series
	c.Samples += o.Samples
	c.TenantLabelled += o.TenantLabelled
}

// Counts is everything the sink has accepted since the last reset. Only
// requests answered 2xx are counted in the totals and maps: a rejected
// request will be re-sent and must not be counted twice.
type Counts struct {
	Counter
	// Rejected counts decodable requests answered non-2xx on purpose (-status, -fail-every).
	Rejected int64 `json:"rejected_requests"`
	// DecodeErrors counts requests refused as malformed (bad snappy, protobuf, path, encoding).
	DecodeErrors int64               `json:"decode_errors"`
	Paths        map[string]*Counter `json:"paths"`
	Tenants      map[string]*Counter `json:"tenants"`
	Names        map[string]*Counter `json:"names"`
}

// newCounts returns empty Counts with allocated maps.
func newCounts() Counts {
	return Counts{Paths: map[string]*Counter{}, Tenants: map[string]*Counter{}, Names: map[string]*Counter{}}
}

// clone returns a deep copy of c.
func (c *Counts) clone() Counts {
	out := *c
	out.Paths, out.Tenants, out.Names = cloneMap(c.Paths), cloneMap(c.Tenants), cloneMap(c.Names)
	return out
}

// cloneMap deep-copies a counter map.
func cloneMap(m map[string]*Counter) map[string]*Counter {
	out := make(map[string]*Counter, len(m))
	for k, v := range m {
		c := *v
		out[k] = &c
	}
	return out
}

// Sink is a remote-write receiver that decodes every request, with prompb
// (the reference decoder) or with the equivalent allocation-light wire
// walker, and counts series and samples per path, tenant and metric name. It is used as an HTTP handler in-process by compare and
// stand-alone by "bench sink".
type Sink struct {
	fast      bool  // decode with walkWriteRequest instead of prompb
	status    int   // status answered to decodable requests
	failEvery int64 // every Nth decodable request is answered 503; 0 = never
	seq       atomic.Int64
	bufs      sync.Pool // *[]byte decode buffers
	mu        sync.Mutex
	counts    Counts // guarded by mu
}

// NewSink returns a sink answering status (e.g. 204) and 503 to every
// failEvery-th request (0 = never); fast selects the wire walker instead
// of prompb for decoding.
func NewSink(status, failEvery int, fast bool) *Sink {
	return &Sink{fast: fast, status: status, failEvery: int64(failEvery), counts: newCounts()}
}

// Counts returns a snapshot of the counts.
func (s *Sink) Counts() Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts.clone()
}

// Samples returns the number of samples accepted so far.
func (s *Sink) Samples() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts.Samples
}

// Reset zeroes the counts and the request sequence of -fail-every.
func (s *Sink) Reset() {
	s.mu.Lock()
	s.counts = newCounts()
	s.seq.Store(0)
	s.mu.Unlock()
}

// ServeHTTP serves /health, /counts, /reset and the write paths.
func (s *Sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/health":
		io.WriteString(w, "OK\n")
	case "/counts":
		w.Header().Set("Content-Type", "application/json")
		c := s.Counts()
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(&c)
	case "/reset":
		if r.Method != http.MethodPost && r.Method != http.MethodGet {
			http.Error(w, "use POST /reset", http.StatusMethodNotAllowed)
			return
		}
		s.Reset()
		w.WriteHeader(http.StatusNoContent)
	default:
		s.serveWrite(w, r)
	}
}

// serveWrite decodes one remote-write request, answers it and counts it.
func (s *Sink) serveWrite(w http.ResponseWriter, r *http.Request) {
	tenant, err := tenantFromPath(r.URL.Path)
	if err != nil {
		s.refuse(w, http.StatusNotFound, err.Error())
		return
	}
	if r.Method != http.MethodPost {
		s.refuse(w, http.StatusMethodNotAllowed, "remote write needs POST")
		return
	}
	if enc := r.Header.Get("Content-Encoding"); enc != "snappy" {
		s.refuse(w, http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Encoding %q: only snappy (remote write 1.0) is accepted", enc))
		return
	}
	bp := s.getBuf()
	defer s.bufs.Put(bp)
	t := newTally(tenant)
	if code, err := s.decode(r, bp, t); err != nil {
		s.refuse(w, code, err.Error())
		return
	}
	if code := s.answerFor(); code/100 != 2 {
		s.mu.Lock()
		s.counts.Rejected++
		s.mu.Unlock()
		http.Error(w, "sink: rejected on purpose", code)
		return
	}
	s.merge(r.URL.Path, t)
	w.WriteHeader(s.status)
}

// refuse answers a malformed request and counts it as a decode error.
func (s *Sink) refuse(w http.ResponseWriter, code int, msg string) {
	s.mu.Lock()
	s.counts.DecodeErrors++
	s.mu.Unlock()
	http.Error(w, "sink: "+msg, code)
}

// answerFor returns the status for the next decodable request.
func (s *Sink) answerFor() int {
	n := s.seq.Add(1)
	if s.failEvery > 0 && n%s.failEvery == 0 {
		return http.StatusServiceUnavailable
	}
	return s.status
}

// getBuf returns a pooled decode buffer.
func (s *Sink) getBuf() *[]byte {
	if bp, ok := s.bufs.Get().(*[]byte); ok {
		return bp
	}
	return new([]byte)
}

// decode reads and snappy-decodes the body into *bp, then feeds every
// series to t with the sink's decoder; on error it returns the status to
// answer.
func (s *Sink) decode(r *http.Request, bp *[]byte, t *tally) (int, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxSinkBody+1))
	if err != nil {
		return http.StatusBadRequest, fmt.Errorf("read body: %w", err)
	}
	if len(body) > maxSinkBody {
		return http.StatusRequestEntityTooLarge, fmt.Errorf("body over %d bytes", maxSinkBody)
	}
	n, err := snappy.DecodedLen(body)
	if err != nil {
		return http.StatusBadRequest, fmt.Errorf("snappy: %w", err)
	}
	if n > maxSinkDecoded {
		return http.StatusRequestEntityTooLarge, fmt.Errorf("decoded body %d bytes over %d", n, maxSinkDecoded)
	}
	if cap(*bp) < n {
		*bp = make([]byte, n)
	}
	raw, err := snappy.Decode((*bp)[:n], body)
	if err != nil {
		return http.StatusBadRequest, fmt.Errorf("snappy: %w", err)
	}
	if s.fast {
		err = walkWriteRequest(raw, t.add)
	} else {
		err = walkPrompb(raw, t.add)
	}
	if err != nil {
		return http.StatusBadRequest, fmt.Errorf("protobuf: %w", err)
	}
	return 0, nil
}

// labelTenant normalises a tenant label value the way vminsert does: a
// missing or invalid (non-uint32) value becomes 0.
func labelTenant(v string) string {
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return "0"
	}
	return strconv.FormatUint(n, 10)
}

// tenantFromPath returns the tenant a write path addresses: singleTenant
// for single-node paths, "multitenant", or a normalised "account:project".
func tenantFromPath(path string) (string, error) {
	switch path {
	case "/api/v1/write", "/prometheus/api/v1/write":
		return singleTenant, nil
	}
	rest, ok := strings.CutPrefix(path, "/insert/")
	if !ok {
		return "", fmt.Errorf("path %q: not a write path (/api/v1/write or /insert/<tenant>/prometheus/api/v1/write)", path)
	}
	tenant, suffix, _ := strings.Cut(rest, "/")
	if suffix != "prometheus" && suffix != "prometheus/api/v1/write" {
		return "", fmt.Errorf("path %q: want /insert/<tenant>/prometheus/api/v1/write", path)
	}
	if tenant == "multitenant" {
		return tenant, nil
	}
	return parseTenant(tenant)
}

// parseTenant normalises "A" or "A:B" (uint32 each) to "A:B".
func parseTenant(t string) (string, error) {
	acct, proj, hasProj := strings.Cut(t, ":")
	if !hasProj {
		proj = "0"
	}
	a, errA := strconv.ParseUint(acct, 10, 32)
	p, errP := strconv.ParseUint(proj, 10, 32)
	if errA != nil || errP != nil {
		return "", fmt.Errorf("tenant %q: want accountID or accountID:projectID, uint32 each", t)
	}
	return fmt.Sprintf("%d:%d", a, p), nil
}
