package config

import (
	"net/url"
	"os"
	"strings"
	"time"

	promrelabel "github.com/prometheus/prometheus/model/relabel"

	"github.com/scoreproxy/scoreproxy/relabel"
)

// Multitenant is the writer.tenant_id that writes to vminsert's
// /insert/multitenant/ endpoint, where each series names its own tenant.
const Multitenant = "multitenant"

// Values of writer.output and writer.compression.
const (
	OutputRemoteWrite = "remote_write"
	OutputImportJSON  = "import_json"
	CompressionSnappy = "snappy"
)

// Defaults of the keys that may be left out.
const (
	DefaultListen          = "127.0.0.1:8490"
	DefaultImportJSONPath  = "/api/v1/import"
	DefaultHealthPath      = "/health"
	DefaultTimeout         = 5 * time.Second
	DefaultMaxRequestBytes = 32 << 20
	DefaultMaxDecodedBytes = 128 << 20
	// DefaultMaxInflightBytes is the memory all requests in progress may
	// hold at once: with the binary's GOGC=30 the process stays under
	// about 512 MiB of RSS whatever producers send.
	DefaultMaxInflightBytes  = 256 << 20
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = time.Minute
	DefaultIdleTimeout       = 2 * time.Minute
	DefaultShutdownTimeout   = 30 * time.Second
	DefaultHealthCheckPeriod = 10 * time.Second
)

// Config is a validated scoreproxy configuration with every default filled
// in. The yaml tags name the keys of the file; decoding goes through Parse,
// which accepts more spellings (e.g. `timeout: 2.5`, `max_request_bytes: 32MiB`)
// than the plain field types would.
type Config struct {
	// Listen is the host:port the remote-write receiver listens on.
	Listen  string  `yaml:"listen"`
	Writer  Writer  `yaml:"writer"`
	Routing Routing `yaml:"routing"`
	Limits  Limits  `yaml:"limits"`
	Server  Server  `yaml:"server"`
	Queue   Queue   `yaml:"queue"`
	// Auth is the inbound credentials (see auth.go); nil: writes need none.
	Auth []Credential `yaml:"auth"`

	// RelabelConfigs are Prometheus relabel rules applied to every incoming
	// series before metric_format; WriteRelabelConfigs after it, before the
	// tenant is read (see relabel.go). nil when not set.
	RelabelConfigs      []*promrelabel.Config `yaml:"relabel_configs"`
	WriteRelabelConfigs []*promrelabel.Config `yaml:"write_relabel_configs"`

	// Writers is the writers: list (see writers.go), each getting a full
	// copy of the data; nil with a single writer: section. When set, Writer
	// is Writers[0]. Use WriterList to go over the writers either way.
	Writers []Writer `yaml:"writers"`
}

// Writer is vmanomaly's VmWriter section, with the same keys and meanings.
// Relative file paths are kept as written and so resolve against the working
// directory, as they do for vmanomaly.
type Writer struct {
	// Name names a writers: entry (its queue subdirectory, its logs):
	// "writer<i>" unless written; "" for a single writer: section.
	Name string `yaml:"name"`
	// Class is "", "vm" or "writer.vm.VmWriter", as written; all mean VmWriter.
	Class string `yaml:"class"`
	// DatasourceURL is the VictoriaMetrics single node or vminsert base URL.
	DatasourceURL string `yaml:"datasource_url"`
	// TenantID is "" (single node), "A" or "A:B" (a fixed cluster tenant), or
	// Multitenant, as written.
	TenantID string `yaml:"tenant_id"`
	// MetricFormat names the outputs (see package relabel); nil when not set.
	// Scalar values are kept as written, so `run: 1.50` is "1.50".
	MetricFormat map[string]string `yaml:"metric_format"`
	// ImportJSONPath is accepted for compatibility; remote-write forwarding does not use it.
	ImportJSONPath string `yaml:"import_json_path"`
	// HealthPath is a path relative to DatasourceURL or an absolute URL; see HealthURL.
	HealthPath string `yaml:"health_path"`
	// User and Password are HTTP basic auth credentials.
	User     string `yaml:"user"`
	Password string `yaml:"password"`
	// Timeout bounds one upstream request.
	Timeout time.Duration `yaml:"timeout"`
	// VerifyTLS is false when verify_tls is false; true for true or a CA bundle path.
	VerifyTLS bool `yaml:"verify_tls"`
	// CAFile is the CA bundle when verify_tls is a path, else "". It has no
	// key of its own: in the file it is the value of verify_tls.
	CAFile string `yaml:"-"`
	// TLSCertFile and TLSKeyFile are the client certificate for mTLS (both or neither).
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
	// BearerToken or BearerTokenFile (at most one) is sent as "Authorization: Bearer <token>".
	BearerToken     string `yaml:"bearer_token"`
	BearerTokenFile string `yaml:"bearer_token_file"`
	// Debug prints every upstream request (URL, then one line per sample)
	// to stdout instead of sending it (remotewrite.DebugWriter); the URL is
	// still built from DatasourceURL, so tenant routing shows as it would be.
	Debug bool `yaml:"debug"`
	// Output is OutputRemoteWrite (snappy/zstd remote write) or
	// OutputImportJSON (VictoriaMetrics JSON lines to ImportJSONPath under
	// each tenant's URL, as vmanomaly's writer does).
	Output string `yaml:"output"`
	// Compression is how remote write is compressed: CompressionSnappy,
	// "auto" (zstd where the upstream's handshake says it supports the
	// VictoriaMetrics protocol) or "zstd" (zstd, snappy where rejected).
	Compression string `yaml:"compression"`
}

// Routing says how series are sent to tenants.
type Routing struct {
	// SplitTenants makes scoreproxy split each request by the series'
	// vm_account_id / vm_project_id into one request per tenant instead of
	// using /insert/multitenant/; it needs writer.tenant_id: multitenant.
	SplitTenants bool `yaml:"split_tenants"`
	// QueryKeyLabel is the incoming label whose value is $QUERY_KEY.
	QueryKeyLabel string `yaml:"query_key_label"`
	// MaxInflightPerEndpoint bounds the upstream requests in flight to one
	// endpoint; batches for a busy endpoint wait and go out together. 0
	// (left out) lets the router choose: 1 per tenant in split mode, else
	// 2 x GOMAXPROCS (at least 4), as vmagent's -remoteWrite.queues.
	MaxInflightPerEndpoint int `yaml:"max_inflight_per_endpoint"`
	// FormatMatch is the series selector (e.g. `{for!=""}`) choosing the
	// series metric_format applies to; "" means those carrying QueryKeyLabel.
	FormatMatch string `yaml:"format_match"`
	// TenantURLs maps tenants ("A" or "A:B", as written) to the
	// datasource_url their split requests go to instead of the writer's
	// (split mode only; see writers.go); nil when not set.
	TenantURLs map[string]string `yaml:"tenant_urls"`
}

// Limits bound what one producer request may cost.
type Limits struct {
	// MaxRequestBytes bounds the snappy-compressed body.
	MaxRequestBytes int64 `yaml:"max_request_bytes"`
	// MaxDecodedBytes bounds the body after snappy decoding (>= MaxRequestBytes).
	MaxDecodedBytes int64 `yaml:"max_decoded_bytes"`
	// MaxInflightBytes bounds, process-wide, the receive buffers of the
	// requests in progress (bodies, decodings, transcodings); a request
	// that finds it used up gets 429 (>= MaxRequestBytes + MaxDecodedBytes,
	// so that a request of the largest size fits; left out, it is the
	// larger of DefaultMaxInflightBytes and that sum).
	MaxInflightBytes int64 `yaml:"max_inflight_bytes"`
	// The request-shape, concurrency and rate limits: see limits.go.
	RequestLimits `yaml:",inline"`
}

// Server holds the HTTP server timeouts, the upstream health check period
// and the keys of the operational endpoints.
type Server struct {
	ReadHeaderTimeout   time.Duration `yaml:"read_header_timeout"`
	ReadTimeout         time.Duration `yaml:"read_timeout"`
	IdleTimeout         time.Duration `yaml:"idle_timeout"`
	ShutdownTimeout     time.Duration `yaml:"shutdown_timeout"`
	HealthCheckInterval time.Duration `yaml:"health_check_interval"`
	// ReloadAuthKey and MetricsAuthKey, when set, must be given as the
	// authKey query argument of POST /-/reload and GET /metrics, as with
	// vmagent's -reloadAuthKey and -metricsAuthKey. With an auth: list, a
	// credential with tenants ["*"] may use them instead (see auth.go).
	ReloadAuthKey  string `yaml:"reload_auth_key"`
	MetricsAuthKey string `yaml:"metrics_auth_key"`
	// ReloadOpen and MetricsOpen leave POST /-/reload and GET /metrics open
	// to anyone although an auth: list is set; without one they are open
	// unless their key is set.
	ReloadOpen  bool `yaml:"reload_open"`
	MetricsOpen bool `yaml:"metrics_open"`
	// Inbound TLS and mTLS: see tls.go.
	ServerTLS `yaml:",inline"`
}

// Load reads and validates the YAML file at path. See Parse.
func Load(path string) (*Config, []string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	cfg, warnings, err := Parse(data)
	if err != nil {
		return nil, nil, prefixErrors(path+": ", err)
	}
	return cfg, warnings, nil
}

// BaseURL is datasource_url without trailing slashes, ready for a path to be appended.
func (w Writer) BaseURL() string { return strings.TrimRight(w.DatasourceURL, "/") }

// HealthURL is where the upstream's health is checked: health_path as is
// when it is an absolute URL, else joined to datasource_url with exactly one
// slash ("health" and "/health" give the same URL).
func (w Writer) HealthURL() string {
	path := w.HealthPath
	if path == "" {
		path = DefaultHealthPath
	}
	if isAbsoluteURL(path) {
		return path
	}
	return w.BaseURL() + "/" + strings.TrimLeft(path, "/")
}

// CompileFormat compiles writer.metric_format with routing.query_key_label,
// which Parse has already validated.
func (c *Config) CompileFormat() (*relabel.Format, error) {
	f, err := relabel.Compile(c.Writer.MetricFormat, c.Routing.QueryKeyLabel)
	if err != nil {
		return nil, prefixErrors("writer.", err)
	}
	return f, nil
}

// isAbsoluteURL reports whether s is a URL with a scheme and a host.
func isAbsoluteURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.IsAbs() && u.Host != ""
}
