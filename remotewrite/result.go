package remotewrite

// SendResult is the outcome of one upstream request.
type SendResult struct {
	// StatusCode is the upstream HTTP status, or 0 when no response arrived
	// (connection error, timeout, cancelled context).
	StatusCode int
	// RetryAfter is the upstream's Retry-After header, verbatim, if any.
	RetryAfter string
	// Message is the upstream response body (trimmed) for non-2xx answers, or
	// the transport error text when StatusCode is 0.
	Message string
	// URL is the upstream URL the request went to (no credentials in it).
	URL string
	// Local means scoreproxy answered itself without asking the upstream
	// (its queue is full or cannot write): Message says why, whole.
	Local bool
}

// OK reports whether the upstream accepted the data (2xx).
func (r SendResult) OK() bool { return r.StatusCode >= 200 && r.StatusCode < 300 }

// BatchStats describes one upstream request's content, for the writer metrics.
type BatchStats struct {
	Series  int
	Samples int // samples + histogram samples
	// SerializeSeconds is the time spent building and compressing the body.
	SerializeSeconds float64
	// QueryKeys splits Series and Samples by query key, for the query_key
	// label of the sent counters; nil means they all have the key "". The
	// slice is only valid during the Send it is passed to.
	QueryKeys KeyTallies
}

// Add adds the content of o to s: its totals and its query keys.
func (s *BatchStats) Add(o BatchStats) {
	if s.QueryKeys == nil && s.Series > 0 { // all "" so far
		s.QueryKeys = KeyTallies{{Series: s.Series, Samples: s.Samples}}
	}
	s.Series += o.Series
	s.Samples += o.Samples
	if o.QueryKeys == nil {
		s.QueryKeys = s.QueryKeys.Add("", o.Series, o.Samples)
		return
	}
	s.QueryKeys = s.QueryKeys.Merge(o.QueryKeys)
}
