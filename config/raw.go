package config

import "gopkg.in/yaml.v3"

// The raw* types mirror the file layout for strict decoding (KnownFields):
// yaml.v3 rejects unknown keys in them, and each leaf is kept as the YAML
// node it was written as, so that check.go can parse it knowing its full key
// path and report every problem at once instead of stopping at the first.
// Only leaves have an UnmarshalYAML: a struct with one would be decoded
// without KnownFields.

// value is one YAML value as written; node is nil when the key is absent or null.
type value struct{ node *yaml.Node }

// UnmarshalYAML keeps the node for later; it never fails, so decoding goes on
// and collects every unknown key.
func (v *value) UnmarshalYAML(n *yaml.Node) error {
	v.node = n
	return nil
}

func (v value) set() bool { return v.node != nil }

// rawConfig is the top level of the file.
type rawConfig struct {
	Listen  value      `yaml:"listen"`
	Writer  rawWriter  `yaml:"writer"`
	Routing rawRouting `yaml:"routing"`
	Limits  rawLimits  `yaml:"limits"`
	Server  rawServer  `yaml:"server"`
	Queue   rawQueue   `yaml:"queue"`
	Auth    value      `yaml:"auth"`

	// RelabelConfigs and WriteRelabelConfigs: see relabel.go.
	RelabelConfigs      value `yaml:"relabel_configs"`
	WriteRelabelConfigs value `yaml:"write_relabel_configs"`

	// Writers: see writers.go.
	Writers []rawWriterItem `yaml:"writers"`
}

// rawWriter is vmanomaly's VmWriter section, keys verbatim.
type rawWriter struct {
	Class           value `yaml:"class"`
	DatasourceURL   value `yaml:"datasource_url"`
	TenantID        value `yaml:"tenant_id"`
	MetricFormat    value `yaml:"metric_format"`
	ImportJSONPath  value `yaml:"import_json_path"`
	HealthPath      value `yaml:"health_path"`
	User            value `yaml:"user"`
	Password        value `yaml:"password"`
	Timeout         value `yaml:"timeout"`
	VerifyTLS       value `yaml:"verify_tls"`
	TLSCertFile     value `yaml:"tls_cert_file"`
	TLSKeyFile      value `yaml:"tls_key_file"`
	BearerToken     value `yaml:"bearer_token"`
	BearerTokenFile value `yaml:"bearer_token_file"`
	Debug           value `yaml:"debug"`
	Output          value `yaml:"output"`
	Compression     value `yaml:"compression"`
}

type rawRouting struct {
	SplitTenants  value `yaml:"split_tenants"`
	QueryKeyLabel value `yaml:"query_key_label"`
	// MaxInflightPerEndpoint: see Routing.
	MaxInflightPerEndpoint value `yaml:"max_inflight_per_endpoint"`
	// FormatMatch: see Routing and relabel.go.
	FormatMatch value `yaml:"format_match"`
	// TenantURLs: see Routing and writers.go.
	TenantURLs value `yaml:"tenant_urls"`
}

type rawLimits struct {
	MaxRequestBytes  value `yaml:"max_request_bytes"`
	MaxDecodedBytes  value `yaml:"max_decoded_bytes"`
	MaxInflightBytes value `yaml:"max_inflight_bytes"`
	rawRequestLimits `yaml:",inline"`
}

type rawServer struct {
	ReadHeaderTimeout   value `yaml:"read_header_timeout"`
	ReadTimeout         value `yaml:"read_timeout"`
	IdleTimeout         value `yaml:"idle_timeout"`
	ShutdownTimeout     value `yaml:"shutdown_timeout"`
	HealthCheckInterval value `yaml:"health_check_interval"`
	ReloadAuthKey       value `yaml:"reload_auth_key"`
	MetricsAuthKey      value `yaml:"metrics_auth_key"`
	ReloadOpen          value `yaml:"reload_open"`
	MetricsOpen         value `yaml:"metrics_open"`
	rawServerTLS        `yaml:",inline"`
}
