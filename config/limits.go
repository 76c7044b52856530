package config

import "time"

// Defaults of the request-shape, concurrency and rate limits.
const (
	// DefaultMaxSeriesPerRequest is well above what Prometheus (2,000
	// samples per send by default) and vmagent (10,000 rows per block) send.
	DefaultMaxSeriesPerRequest = 100_000
	// DefaultMaxLabelsPerSeries leaves room above vminsert's default of 40
	// (-maxLabelsPerTimeseries) for relabeling that adds labels.
	DefaultMaxLabelsPerSeries = 64
	// DefaultMaxLabelNameLength and DefaultMaxLabelValueLength match
	// vminsert's -maxLabelNameLen and -maxLabelValueLen defaults.
	DefaultMaxLabelNameLength  = 256
	DefaultMaxLabelValueLength = 4096
	// DefaultMaxConcurrentRequests bounds the write requests being decoded
	// and forwarded at once; more get 429 with Retry-After.
	DefaultMaxConcurrentRequests = 64
	// DefaultMinBodyRate and DefaultBodyRateGrace cut off a body that
	// arrives slower than 4 KiB/s once 5 s have passed: any producer on a
	// working link sends hundreds of times faster, and a client that
	// dribbles its body is cut off within seconds, not at read_timeout.
	DefaultMinBodyRate   = 4 << 10
	DefaultBodyRateGrace = 5 * time.Second
)

// RequestLimits are the limits: keys beyond the body sizes.
type RequestLimits struct {
	// MaxSeriesPerRequest, MaxLabelsPerSeries, MaxLabelNameLength and
	// MaxLabelValueLength bound the shape of one request; beyond them it is
	// refused with 400 naming the limit and the series.
	MaxSeriesPerRequest int `yaml:"max_series_per_request"`
	MaxLabelsPerSeries  int `yaml:"max_labels_per_series"`
	MaxLabelNameLength  int `yaml:"max_label_name_length"`
	MaxLabelValueLength int `yaml:"max_label_value_length"`
	// MaxConcurrentRequests bounds the write requests being decoded and
	// forwarded; one more gets 429 with Retry-After. A request takes its
	// slot once its body has been read, so slow clients hold none.
	MaxConcurrentRequests int `yaml:"max_concurrent_requests"`
	// MinBodyRate (bytes per second) and BodyRateGrace: a request body
	// must arrive at MinBodyRate on average, counted from its start once
	// BodyRateGrace has passed, or it is cut off with 408. 0: no rate,
	// only server.read_timeout.
	MinBodyRate   int64         `yaml:"min_body_rate"`
	BodyRateGrace time.Duration `yaml:"body_rate_grace"`
	// MaxSamplesPerSecondPerTenant is the sustained rate of samples each
	// destination tenant may receive (token bucket, bursts up to one
	// second's worth); beyond it requests get 429 with Retry-After. 0 (left
	// out): unlimited.
	MaxSamplesPerSecondPerTenant int `yaml:"max_samples_per_second_per_tenant"`
}

type rawRequestLimits struct {
	MaxSeriesPerRequest          value `yaml:"max_series_per_request"`
	MaxLabelsPerSeries           value `yaml:"max_labels_per_series"`
	MaxLabelNameLength           value `yaml:"max_label_name_length"`
	MaxLabelValueLength          value `yaml:"max_label_value_length"`
	MaxConcurrentRequests        value `yaml:"max_concurrent_requests"`
	MaxSamplesPerSecondPerTenant value `yaml:"max_samples_per_second_per_tenant"`
	MinBodyRate                  value `yaml:"min_body_rate"`
	BodyRateGrace                value `yaml:"body_rate_grace"`
}

// requestLimits checks the request-shape, concurrency and rate limits.
func (c *checker) requestLimits(raw rawRequestLimits) RequestLimits {
	const big = 1 << 30
	return RequestLimits{
		MaxSeriesPerRequest:   c.count("limits.max_series_per_request", raw.MaxSeriesPerRequest, DefaultMaxSeriesPerRequest, big),
		MaxLabelsPerSeries:    c.count("limits.max_labels_per_series", raw.MaxLabelsPerSeries, DefaultMaxLabelsPerSeries, 1<<16),
		MaxLabelNameLength:    c.count("limits.max_label_name_length", raw.MaxLabelNameLength, DefaultMaxLabelNameLength, big),
		MaxLabelValueLength:   c.count("limits.max_label_value_length", raw.MaxLabelValueLength, DefaultMaxLabelValueLength, big),
		MaxConcurrentRequests: c.count("limits.max_concurrent_requests", raw.MaxConcurrentRequests, DefaultMaxConcurrentRequests, 1<<20),
		MaxSamplesPerSecondPerTenant: c.count("limits.max_samples_per_second_per_tenant", raw.MaxSamplesPerSecondPerTenant,
			0, big),
		MinBodyRate:   c.rate("limits.min_body_rate", raw.MinBodyRate, DefaultMinBodyRate),
		BodyRateGrace: c.duration("limits.body_rate_grace", raw.BodyRateGrace, DefaultBodyRateGrace),
	}
}

// rate reads a size per second; 0 turns the limit off.
func (c *checker) rate(path string, v value, def int64) int64 {
	n := c.scalar(path, v)
	if n == nil {
		return def
	}
	size, err := parseByteSize(n)
	if err != nil {
		c.errorf(path, "%v (per second), or 0 to turn the limit off", err)
	}
	return size
}
