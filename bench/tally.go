package main

import "github.com/prometheus/prometheus/prompb"

// walkPrompb unmarshals b with the reference prompb decoder and calls fn
// for every series, like walkWriteRequest.
func walkPrompb(b []byte, fn seriesFunc) error {
	var req prompb.WriteRequest
	if err := req.Unmarshal(b); err != nil {
		return err
	}
	for i := range req.Timeseries {
		ts := &req.Timeseries[i]
		var name, acct, proj []byte
		labelled := false
		for _, l := range ts.Labels {
			switch l.Name {
			case "__name__":
				name = []byte(l.Value)
			case "vm_account_id":
				acct, labelled = []byte(l.Value), true
			case "vm_project_id":
				proj, labelled = []byte(l.Value), true
			}
		}
		fn(name, acct, proj, labelled, int64(len(ts.Samples)))
	}
	return nil
}

// tally counts one request before it is merged into the sink's totals, so
// the sink's lock is taken once per request.
type tally struct {
	pathTenant string // tenant from the path; "multitenant" means from labels
	total      Counter
	tenants    map[string]*Counter
	names      map[string]*Counter
	tenantKeys map[string]string // "acct/proj" label values -> normalised tenant
	keyBuf     []byte
}

// newTally returns an empty tally for a request to a path of pathTenant.
func newTally(pathTenant string) *tally {
	return &tally{pathTenant: pathTenant, total: Counter{Requests: 1}, tenants: map[string]*Counter{},
		names: map[string]*Counter{}, tenantKeys: map[string]string{}}
}

// add counts one series (a seriesFunc).
func (t *tally) add(name, acct, proj []byte, labelled bool, samples int64) {
	c := Counter{Series: 1, Samples: samples}
	if labelled {
		c.TenantLabelled = 1
	}
	t.total.add(c)
	addToBytes(t.names, name, c)
	addTo(t.tenants, t.tenantOf(acct, proj), c)
}

// tenantOf returns the tenant of a series: the path's, or for multitenant
// paths the normalised label values, cached per distinct pair.
func (t *tally) tenantOf(acct, proj []byte) string {
	if t.pathTenant != "multitenant" {
		return t.pathTenant
	}
	t.keyBuf = append(append(append(t.keyBuf[:0], acct...), '/'), proj...)
	if k, ok := t.tenantKeys[string(t.keyBuf)]; ok {
		return k
	}
	k := labelTenant(string(acct)) + ":" + labelTenant(string(proj))
	t.tenantKeys[string(t.keyBuf)] = k
	return k
}

// merge adds a request's tally to the sink's counts.
func (s *Sink) merge(path string, t *tally) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts.Counter.add(t.total)
	addTo(s.counts.Paths, path, t.total)
	for k, v := range t.tenants {
		v.Requests = 1
		addTo(s.counts.Tenants, k, *v)
	}
	for k, v := range t.names {
		v.Requests = 1
		if _, ok := s.counts.Names[k]; !ok && len(s.counts.Names) >= maxSinkNames {
			k = otherName
		}
		addTo(s.counts.Names, k, *v)
	}
}

// addToBytes is addTo keyed by a byte slice; it allocates the key only the
// first time it is seen.
func addToBytes(m map[string]*Counter, key []byte, c Counter) {
	e := m[string(key)]
	if e == nil {
		e = &Counter{}
		m[string(key)] = e
	}
	e.add(c)
}

// addTo adds c to m[key], creating the entry.
func addTo(m map[string]*Counter, key string, c Counter) {
	e := m[key]
	if e == nil {
		e = &Counter{}
		m[key] = e
	}
	e.add(c)
}
