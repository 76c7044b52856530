package config

import (
	"fmt"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/scoreproxy/scoreproxy/relabel"
)

// checker turns the raw sections into a Config, collecting every error and
// warning on the way so that Parse can report them all at once.
type checker struct {
	errs     []error
	warnings []string
}

// errorf records a problem with the key at path.
func (c *checker) errorf(path, format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
}

func (c *checker) warnf(format string, args ...any) {
	c.warnings = append(c.warnings, fmt.Sprintf(format, args...))
}

// config builds the whole Config section by section, then checks the rules
// that span sections.
func (c *checker) config(raw *rawConfig) *Config {
	cfg := &Config{
		Listen:  c.checkedStr("listen", raw.Listen, DefaultListen, checkListen),
		Routing: c.routing(raw.Routing),
		Limits:  c.limits(raw.Limits),
		Server:  c.server(raw.Server),
		Queue:   c.queue(raw.Queue),
		Auth:    c.auth(raw.Auth),
	}
	cfg.Writer, cfg.Writers = c.writers(raw, cfg.Routing) // writer: or writers:, see writers.go
	c.relabeling(raw, cfg)
	c.writerRules(cfg)
	c.endpointAccess(cfg)
	return cfg
}

func (c *checker) routing(raw rawRouting) Routing {
	r := Routing{
		SplitTenants:  c.boolean("routing.split_tenants", raw.SplitTenants, false),
		QueryKeyLabel: c.str("routing.query_key_label", raw.QueryKeyLabel, relabel.DefaultQueryKeyLabel),
	}
	if raw.MaxInflightPerEndpoint.set() {
		r.MaxInflightPerEndpoint = c.count("routing.max_inflight_per_endpoint", raw.MaxInflightPerEndpoint, 4, 1024)
	}
	r.TenantURLs = c.tenantURLs("routing.tenant_urls", raw.TenantURLs)
	if !relabel.ValidLabelName(r.QueryKeyLabel) {
		c.errorf("routing.query_key_label", "%q is not a valid label name; write letters, digits and underscores, "+
			"not starting with a digit, e.g. %q", r.QueryKeyLabel, relabel.DefaultQueryKeyLabel)
	}
	return r
}

func (c *checker) limits(raw rawLimits) Limits {
	l := Limits{
		MaxRequestBytes:  c.byteSize("limits.max_request_bytes", raw.MaxRequestBytes, DefaultMaxRequestBytes),
		MaxDecodedBytes:  c.byteSize("limits.max_decoded_bytes", raw.MaxDecodedBytes, DefaultMaxDecodedBytes),
		MaxInflightBytes: c.byteSize("limits.max_inflight_bytes", raw.MaxInflightBytes, DefaultMaxInflightBytes),
		RequestLimits:    c.requestLimits(raw.rawRequestLimits),
	}
	if l.MaxDecodedBytes < l.MaxRequestBytes {
		c.errorf("limits.max_decoded_bytes", "%d bytes is less than limits.max_request_bytes (%d bytes); "+
			"a body only grows when decoded: raise it to at least %d", l.MaxDecodedBytes, l.MaxRequestBytes, l.MaxRequestBytes)
	}
	one := l.MaxRequestBytes + l.MaxDecodedBytes
	switch {
	case one <= 0: // an overflow, or a size already reported
	case !raw.MaxInflightBytes.set():
		l.MaxInflightBytes = max(l.MaxInflightBytes, one) // the default grows with the request limits
	case l.MaxInflightBytes > 0 && l.MaxInflightBytes < one:
		c.errorf("limits.max_inflight_bytes", "%d bytes is less than limits.max_request_bytes + limits.max_decoded_bytes (%d bytes): "+
			"a request of the largest size could never be read and decoded; raise it to at least %d or lower those limits",
			l.MaxInflightBytes, one, one)
	}
	return l
}

func (c *checker) server(raw rawServer) Server {
	return Server{
		ReadHeaderTimeout:   c.duration("server.read_header_timeout", raw.ReadHeaderTimeout, DefaultReadHeaderTimeout),
		ReadTimeout:         c.duration("server.read_timeout", raw.ReadTimeout, DefaultReadTimeout),
		IdleTimeout:         c.duration("server.idle_timeout", raw.IdleTimeout, DefaultIdleTimeout),
		ShutdownTimeout:     c.duration("server.shutdown_timeout", raw.ShutdownTimeout, DefaultShutdownTimeout),
		HealthCheckInterval: c.duration("server.health_check_interval", raw.HealthCheckInterval, DefaultHealthCheckPeriod),
		ReloadAuthKey:       c.str("server.reload_auth_key", raw.ReloadAuthKey, ""),
		MetricsAuthKey:      c.str("server.metrics_auth_key", raw.MetricsAuthKey, ""),
		ReloadOpen:          c.boolean("server.reload_open", raw.ReloadOpen, false),
		MetricsOpen:         c.boolean("server.metrics_open", raw.MetricsOpen, false),
		ServerTLS:           c.serverTLS(raw.rawServerTLS),
	}
}

// checkFormat validates metric_format with relabel.Compile, the code that
// will run it, and warns when outputs of different queries could collide.
func (c *checker) checkFormat(metricFormat map[string]string, queryKey string) {
	if !relabel.ValidLabelName(queryKey) {
		queryKey = relabel.DefaultQueryKeyLabel // already reported under routing
	}
	if _, err := relabel.Compile(metricFormat, queryKey); err != nil {
		c.errs = append(c.errs, prefixErrors("writer.", err))
		return
	}
	switch {
	case len(metricFormat) == 0:
	case !relabel.HasQueryKey(metricFormat, queryKey):
		c.warnf("writer.metric_format has no %q key: outputs of different queries for the same series would collide "+
			"unless every producer sends a %q label (it is then inherited as is); add %s: \"$QUERY_KEY\" "+
			"as the vmanomaly writer docs require", queryKey, queryKey, queryKey)
	case !relabel.UsesQueryKey(metricFormat):
		c.warnf("writer.metric_format.%s: %q replaces the incoming %q label and no metric_format value uses $QUERY_KEY: "+
			"outputs of different queries for the same series would collide; write %s: \"$QUERY_KEY\"",
			queryKey, metricFormat[queryKey], queryKey, queryKey)
	}
}

// str reads a string key: any scalar, as written. Absent, null or "" gives def.
func (c *checker) str(path string, v value, def string) string {
	if !v.set() {
		return def
	}
	if v.node.Kind != yaml.ScalarNode {
		c.errorf(path, "must be a single value, got %s", describe(v.node))
		return def
	}
	if v.node.Value == "" {
		return def
	}
	return v.node.Value
}

// checkedStr reads a string key like str and checks the result (default
// included, so a required key can report that it is missing).
func (c *checker) checkedStr(path string, v value, def string, check func(string) error) string {
	s := c.str(path, v, def)
	if err := check(s); err != nil {
		c.errorf(path, "%v", err)
	}
	return s
}

// scalar returns the node of a set scalar value, or nil after reporting a
// mapping or list where one value was expected.
func (c *checker) scalar(path string, v value) *yaml.Node {
	if !v.set() {
		return nil
	}
	if v.node.Kind != yaml.ScalarNode {
		c.errorf(path, "must be a single value, got %s", describe(v.node))
		return nil
	}
	return v.node
}

func (c *checker) boolean(path string, v value, def bool) bool {
	n := c.scalar(path, v)
	if n == nil {
		return def
	}
	b, err := parseBool(n)
	if err != nil {
		c.errorf(path, "%v; write true or false", err)
	}
	return b
}

// duration reads a positive duration; see parseDuration for the forms.
func (c *checker) duration(path string, v value, def time.Duration) time.Duration {
	n := c.scalar(path, v)
	if n == nil {
		return def
	}
	d, err := parseDuration(n)
	switch {
	case err != nil:
		c.errorf(path, "%v", err)
	case d <= 0:
		c.errorf(path, "%q must be positive, e.g. %q", n.Value, def.String())
	}
	return d
}

// byteSize reads a positive size; see parseByteSize for the forms.
func (c *checker) byteSize(path string, v value, def int64) int64 {
	n := c.scalar(path, v)
	if n == nil {
		return def
	}
	size, err := parseByteSize(n)
	switch {
	case err != nil:
		c.errorf(path, "%v", err)
	case size <= 0:
		c.errorf(path, "%q must be positive", n.Value)
	}
	return size
}

// file reads a path that must name an existing file; "" when absent.
func (c *checker) file(path string, v value) string {
	name := c.str(path, v, "")
	if name != "" {
		if err := checkFile(name); err != nil {
			c.errorf(path, "cannot use %q: %v", name, err)
		}
	}
	return name
}
