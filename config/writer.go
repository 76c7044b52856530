package config

import (
	"gopkg.in/yaml.v3"
)

// writer builds and checks the vmanomaly VmWriter section, key by key in
// file order, then the rules between keys.
func (c *checker) writer(raw rawWriter) Writer {
	var w Writer
	w.Class = c.checkedStr("writer.class", raw.Class, "", checkClass)
	w.DatasourceURL = c.checkedStr("writer.datasource_url", raw.DatasourceURL, "", checkDatasourceURL)
	w.TenantID = c.checkedStr("writer.tenant_id", raw.TenantID, "", checkTenant)
	w.MetricFormat = c.metricFormat("writer.metric_format", raw.MetricFormat)
	w.ImportJSONPath = c.str("writer.import_json_path", raw.ImportJSONPath, DefaultImportJSONPath)
	w.HealthPath = c.checkedStr("writer.health_path", raw.HealthPath, DefaultHealthPath, checkHealthPath)
	w.User = c.str("writer.user", raw.User, "")
	w.Password = c.str("writer.password", raw.Password, "")
	w.Timeout = c.duration("writer.timeout", raw.Timeout, DefaultTimeout)
	w.VerifyTLS, w.CAFile = c.verifyTLS("writer.verify_tls", raw.VerifyTLS)
	w.TLSCertFile = c.file("writer.tls_cert_file", raw.TLSCertFile)
	w.TLSKeyFile = c.file("writer.tls_key_file", raw.TLSKeyFile)
	w.BearerToken = c.str("writer.bearer_token", raw.BearerToken, "")
	w.BearerTokenFile = c.file("writer.bearer_token_file", raw.BearerTokenFile)
	w.Debug = c.boolean("writer.debug", raw.Debug, false)
	w.Output = c.checkedStr("writer.output", raw.Output, OutputRemoteWrite, checkOutput)
	w.Compression = c.checkedStr("writer.compression", raw.Compression, CompressionSnappy, checkCompression)
	c.checkAuth(w)
	c.checkOutput(w, raw)
	return w
}

// checkOutput applies the rules of writer.output: import_json needs a
// usable import_json_path and sends uncompressed JSON (as vmanomaly does);
// with remote write, import_json_path is only kept for compatibility.
func (c *checker) checkOutput(w Writer, raw rawWriter) {
	if w.Output != OutputImportJSON {
		if raw.ImportJSONPath.set() {
			c.warnf("writer.import_json_path is accepted for compatibility with vmanomaly but unused: " +
				"scoreproxy forwards Prometheus remote write; set writer.output: import_json to write JSON lines there")
		}
		return
	}
	if err := checkImportPath(w.ImportJSONPath); err != nil {
		c.errorf("writer.import_json_path", "%v (writer.output is import_json)", err)
	}
	if w.Compression != CompressionSnappy {
		c.errorf("writer.compression", "%q applies to remote write, but writer.output is import_json, "+
			"whose JSON lines go uncompressed as vmanomaly sends them: remove writer.compression", w.Compression)
	}
}

// verifyTLS reads verify_tls; left out, it is true (the system CAs).
func (c *checker) verifyTLS(path string, v value) (verify bool, caFile string) {
	n := c.scalar(path, v)
	if n == nil {
		return true, ""
	}
	verify, caFile, err := parseVerifyTLS(n)
	if err != nil {
		c.errorf(path, "%v", err)
	}
	return verify, caFile
}

// checkAuth rejects credentials that cannot all be sent: basic auth and a
// bearer token both want the Authorization header.
func (c *checker) checkAuth(w Writer) {
	if w.Password != "" && w.User == "" {
		c.errorf("writer.password", "set without writer.user; basic auth needs a user: add writer.user or remove writer.password")
	}
	c.together("writer.tls_cert_file", w.TLSCertFile, "writer.tls_key_file", w.TLSKeyFile)
	c.together("writer.tls_key_file", w.TLSKeyFile, "writer.tls_cert_file", w.TLSCertFile)
	if w.BearerToken != "" && w.BearerTokenFile != "" {
		c.errorf("writer.bearer_token_file", "set together with writer.bearer_token; keep one of the two")
	}
	if w.User != "" && (w.BearerToken != "" || w.BearerTokenFile != "") {
		c.errorf("writer.user", "set together with a bearer token (writer.bearer_token or writer.bearer_token_file), "+
			"but basic auth and a bearer token both go in the Authorization header; keep one")
	}
}

// together reports key set without other, for keys that only work in pairs
// (a client certificate needs its key and the reverse).
func (c *checker) together(key, value, other, otherValue string) {
	if value != "" && otherValue == "" {
		c.errorf(key, "set without %s; a client certificate needs both files: add %s or remove %s", other, other, key)
	}
}

// metricFormat reads metric_format: a mapping of label names to templates.
// Scalar values (numbers, bools) are taken as written; null, lists and
// mappings are errors. The keys themselves are checked by relabel.Compile.
func (c *checker) metricFormat(path string, v value) map[string]string {
	if !v.set() {
		return nil
	}
	if v.node.Kind != yaml.MappingNode {
		c.errorf(path, `must be a mapping of label names to templates, e.g. {__name__: "vmanomaly_$VAR", for: "$QUERY_KEY"}; got %s`, describe(v.node))
		return nil
	}
	m := make(map[string]string, len(v.node.Content)/2)
	for i := 0; i+1 < len(v.node.Content); i += 2 {
		key, val := v.node.Content[i], v.node.Content[i+1]
		if val.Kind == yaml.AliasNode {
			val = val.Alias
		}
		keyPath := joinPath(path, key.Value)
		switch {
		case key.Kind != yaml.ScalarNode:
			c.errorf(path, "keys must be label names, got %s", describe(key))
		case val.Kind != yaml.ScalarNode:
			c.errorf(keyPath, `must be a template such as "vmanomaly_$VAR", got %s`, describe(val))
		case val.ShortTag() == "!!null":
			c.errorf(keyPath, `has no value; write a template such as "vmanomaly_$VAR", or "" to remove the label`)
		default:
			m[key.Value] = val.Value
		}
	}
	return m
}
