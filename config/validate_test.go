package config

import (
	"path/filepath"
	"strings"
	"testing"
)

// Every validation error, with the YAML that causes it. Each message names
// the full key path first and says what to write instead. In the YAML, $TMP
// is a directory holding the files exists.crt and exists.key.
func TestParseErrors(t *testing.T) {
	const ds = "writer:\n  datasource_url: http://localhost:8480/\n"
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		// listen
		{"listen needs a port", "listen: 8490\n" + ds,
			[]string{`listen: "8490" is not host:port; write e.g. "127.0.0.1:8490", or ":8490" for all interfaces`}},
		{"listen is one value", "listen: [a, b]\n" + ds,
			[]string{`listen: must be a single value, got a list`}},

		// writer
		{"class is vm", ds + "  class: prometheus\n",
			[]string{`writer.class: "prometheus" is not supported; write "vm" (or "writer.vm.VmWriter"), or leave it out`}},
		{"datasource_url is required", "writer:\n  tenant_id: \"0:0\"\n",
			[]string{`writer.datasource_url: missing; write the VictoriaMetrics URL, e.g. "http://localhost:8428/"`}},
		{"datasource_url is absolute", "writer:\n  datasource_url: localhost:8428\n",
			[]string{`writer.datasource_url: "localhost:8428" is not an absolute http(s) URL`}},
		{"datasource_url is http(s)", "writer:\n  datasource_url: ftp://localhost:8428\n",
			[]string{`writer.datasource_url: "ftp://localhost:8428" is not an absolute http(s) URL`}},
		{"datasource_url has no query", "writer:\n  datasource_url: http://localhost:8428/?extra_label=a\n",
			[]string{`writer.datasource_url: "http://localhost:8428/?extra_label=a" has a query or fragment`}},
		{"tenant_id is a tenant", ds + "  tenant_id: abc\n",
			[]string{`writer.tenant_id: "abc" is not a tenant; write "<accountID>" or "<accountID>:<projectID>" with numbers 0..4294967295 (e.g. "0:0"), or "multitenant"`}},
		{"tenant_id ids are uint32", ds + "  tenant_id: \"0:4294967296\"\n",
			[]string{`writer.tenant_id: "0:4294967296" is not a tenant`}},
		{"tenant_id has at most two parts", ds + "  tenant_id: \"1:2:3\"\n",
			[]string{`writer.tenant_id: "1:2:3" is not a tenant`}},
		{"tenant_id has no sign", ds + "  tenant_id: -1\n",
			[]string{`writer.tenant_id: "-1" is not a tenant`}},
		{"multitenant is lower case", ds + "  tenant_id: Multitenant\n",
			[]string{`writer.tenant_id: "Multitenant" is not a tenant`}},
		{"metric_format needs __name__", ds + "  metric_format:\n    for: $QUERY_KEY\n",
			[]string{`writer.metric_format must have a "__name__" key, e.g. __name__: "vmanomaly_$VAR"`}},
		{"__name__ needs $VAR", ds + "  metric_format:\n    __name__: vmanomaly\n",
			[]string{`writer.metric_format.__name__: "vmanomaly" has no $VAR`, "collide"}},
		{"metric_format keys are label names", ds + "  metric_format:\n    __name__: a_$VAR\n    my-label: x\n",
			[]string{`writer.metric_format: key "my-label" is not a valid label name`}},
		{"metric_format is a mapping", ds + "  metric_format: [vmanomaly_$VAR]\n",
			[]string{`writer.metric_format: must be a mapping of label names to templates`}},
		{"metric_format values are set", ds + "  metric_format:\n    __name__: a_$VAR\n    run:\n",
			[]string{`writer.metric_format.run: has no value; write a template`}},
		{"metric_format values are scalars", ds + "  metric_format:\n    __name__: a_$VAR\n    run: {a: b}\n",
			[]string{`writer.metric_format.run: must be a template such as "vmanomaly_$VAR", got a mapping`}},
		{"health_path URL is http(s)", ds + "  health_path: ftp://host/health\n",
			[]string{`writer.health_path: "ftp://host/health" is neither a path nor an absolute http(s) URL`}},
		{"debug is a bool", ds + "  debug: stdout\n",
			[]string{`writer.debug: "stdout" is not true or false; write true or false`}},
		{"debug has no queue", ds + "  debug: true\nqueue:\n  path: $TMP/q\n",
			[]string{`writer.debug: true prints requests instead of sending them`, "remove queue.path while debugging"}},
		{"output is remote_write or import_json", ds + "  output: json\n",
			[]string{`writer.output: "json" is not an output; write remote_write (the default: Prometheus remote write) or import_json`}},
		{"compression is snappy, auto or zstd", ds + "  compression: gzip\n",
			[]string{`writer.compression: "gzip" is not a compression; write snappy (the default), auto`}},
		{"import_json needs a path", ds + "  output: import_json\n  import_json_path: api/v1/import\n",
			[]string{`writer.import_json_path: "api/v1/import" must start with /, e.g. /api/v1/import (writer.output is import_json)`}},
		{"import_json_path is not a URL", ds + "  output: import_json\n  import_json_path: http://vm/api/v1/import\n",
			[]string{`writer.import_json_path: "http://vm/api/v1/import" is not a path`}},
		{"import_json_path has no query", ds + "  output: import_json\n  import_json_path: /api/v1/import?extra_label=a\n",
			[]string{`writer.import_json_path: "/api/v1/import?extra_label=a" must be a plain path`}},
		{"import_json is not compressed", ds + "  output: import_json\n  compression: zstd\n",
			[]string{`writer.compression: "zstd" applies to remote write, but writer.output is import_json`, "remove writer.compression"}},
		{"password needs user", ds + "  password: bar\n",
			[]string{`writer.password: set without writer.user`}},
		{"timeout is a duration", ds + "  timeout: 5 sec\n",
			[]string{`writer.timeout: "5 sec" is not a duration; write a Go duration such as "5s"`}},
		{"timeout is positive", ds + "  timeout: 0\n",
			[]string{`writer.timeout: "0" must be positive, e.g. "5s"`}},
		{"timeout is not negative", ds + "  timeout: -1s\n",
			[]string{`writer.timeout: "-1s" must be positive`}},
		{"verify_tls is a bool or a file", ds + "  verify_tls: yes\n",
			[]string{`writer.verify_tls: "yes" is neither true/false nor a CA bundle file`, "write false to skip verification"}},
		{"verify_tls file exists", ds + "  verify_tls: $TMP/missing.crt\n",
			[]string{`writer.verify_tls: "$TMP/missing.crt" is neither true/false nor a CA bundle file`}},
		{"verify_tls is not a directory", ds + "  verify_tls: $TMP\n",
			[]string{`writer.verify_tls: "$TMP" is neither`, "is a directory"}},
		{"tls_cert_file needs tls_key_file", ds + "  tls_cert_file: $TMP/exists.crt\n",
			[]string{`writer.tls_cert_file: set without writer.tls_key_file`}},
		{"tls_key_file needs tls_cert_file", ds + "  tls_key_file: $TMP/exists.key\n",
			[]string{`writer.tls_key_file: set without writer.tls_cert_file`}},
		{"tls files exist", ds + "  tls_cert_file: $TMP/c.crt\n  tls_key_file: $TMP/exists.key\n",
			[]string{`writer.tls_cert_file: cannot use "$TMP/c.crt"`}},
		{"one bearer token", ds + "  bearer_token: t\n  bearer_token_file: $TMP/exists.key\n",
			[]string{`writer.bearer_token_file: set together with writer.bearer_token; keep one`}},
		{"bearer_token_file exists", ds + "  bearer_token_file: $TMP/token\n",
			[]string{`writer.bearer_token_file: cannot use "$TMP/token"`}},
		{"basic auth or bearer token", ds + "  user: foo\n  bearer_token: t\n",
			[]string{`writer.user: set together with a bearer token`}},

		// routing
		{"split_tenants needs multitenant", ds + "  tenant_id: \"0:0\"\nrouting:\n  split_tenants: true\n",
			[]string{`routing.split_tenants: true needs writer.tenant_id: multitenant (it is "0:0")`}},
		{"split_tenants needs a tenant_id", ds + "routing:\n  split_tenants: true\n",
			[]string{`routing.split_tenants: true needs writer.tenant_id: multitenant (it is "")`}},
		{"split_tenants is a bool", ds + "routing:\n  split_tenants: maybe\n",
			[]string{`routing.split_tenants: "maybe" is not true or false; write true or false`}},
		{"query_key_label is a label name", ds + "routing:\n  query_key_label: query-alias\n",
			[]string{`routing.query_key_label: "query-alias" is not a valid label name`}},
		{"max_inflight_per_endpoint is a positive count", ds + "routing:\n  max_inflight_per_endpoint: 0\n",
			[]string{`routing.max_inflight_per_endpoint: "0" is not a whole number from 1 to 1024`}},

		// limits
		{"sizes have known units", ds + "limits:\n  max_request_bytes: 32 megabytes\n",
			[]string{`limits.max_request_bytes: "32 megabytes" is not a size; write a number of bytes`}},
		{"sizes are positive", ds + "limits:\n  max_request_bytes: 0\n",
			[]string{`limits.max_request_bytes: "0" must be positive`}},
		{"sizes fit in int64", ds + "limits:\n  max_decoded_bytes: 99999999999GiB\n",
			[]string{`limits.max_decoded_bytes: "99999999999GiB" is too large`}},
		{"min_body_rate is a size", ds + "limits:\n  min_body_rate: fast\n",
			[]string{`limits.min_body_rate: "fast" is not a size`, "(per second), or 0 to turn the limit off"}},
		{"body_rate_grace is a duration", ds + "limits:\n  body_rate_grace: soon\n",
			[]string{`limits.body_rate_grace: "soon" is not a duration`}},
		{"body_rate_grace is positive", ds + "limits:\n  body_rate_grace: 0s\n",
			[]string{`limits.body_rate_grace: "0s" must be positive, e.g. "5s"`}},
		{"inflight bytes fit the largest request", ds + "limits:\n  max_decoded_bytes: 512MiB\n  max_inflight_bytes: 256MiB\n",
			[]string{`limits.max_inflight_bytes: 268435456 bytes is less than limits.max_request_bytes + limits.max_decoded_bytes (570425344 bytes): ` +
				`a request of the largest size could never be read and decoded; raise it to at least 570425344 or lower those limits`}},
		{"inflight bytes are positive", ds + "limits:\n  max_inflight_bytes: 0\n",
			[]string{`limits.max_inflight_bytes: "0" must be positive`}},
		{"decoded limit covers the request limit", ds + "limits:\n  max_request_bytes: 4MiB\n  max_decoded_bytes: 1MiB\n",
			[]string{`limits.max_decoded_bytes: 1048576 bytes is less than limits.max_request_bytes (4194304 bytes)`}},

		// server
		{"server timeouts are durations", ds + "server:\n  read_timeout: forever\n",
			[]string{`server.read_timeout: "forever" is not a duration`}},
		{"server timeouts are positive", ds + "server:\n  shutdown_timeout: 0s\n",
			[]string{`server.shutdown_timeout: "0s" must be positive, e.g. "30s"`}},
		{"an auth key is one value", ds + "server:\n  reload_auth_key: [a, b]\n",
			[]string{`server.reload_auth_key: must be a single value, got a list`}},
		{"metrics_open is a bool", ds + "server:\n  metrics_open: sure\n",
			[]string{`server.metrics_open: "sure" is not true or false; write true or false`}},
		{"metrics is open or keyed", ds + "server:\n  metrics_open: true\n  metrics_auth_key: k\n",
			[]string{`server.metrics_open: true leaves GET /metrics open to anyone, but server.metrics_auth_key asks for a key; remove one of them`}},
		{"reload is open or keyed", ds + "server:\n  reload_open: true\n  reload_auth_key: k\n",
			[]string{`server.reload_open: true leaves POST /-/reload open to anyone, but server.reload_auth_key asks for a key`}},

		// structure
		{"a section is a mapping", "writer: http://localhost:8428\n",
			[]string{`writer: must be a mapping of keys (class, datasource_url,`, `got !!str`, `(line 1)`}},
		{"the file is a mapping", "- writer\n",
			[]string{`the config must be a mapping of keys (listen, writer, routing, limits, server, queue, auth, relabel_configs, write_relabel_configs, writers), got !!seq (line 1)`}},
		{"a key is set once", ds + "  tenant_id: \"0:0\"\n  tenant_id: \"1:0\"\n",
			[]string{`writer.tenant_id: set twice (lines 3 and 4); keep one`}},
		{"a metric_format key is set once", ds + "  metric_format:\n    __name__: a_$VAR\n    for: x\n    for: y\n",
			[]string{`writer.metric_format.for: set twice (lines 5 and 6); keep one`}},
		{"the file is YAML", "writer: [\n",
			[]string{`invalid YAML: yaml: line`}},
		{"the file is one document", ds + "---\n" + ds,
			[]string{`more than one YAML document`}},

		// Everything is reported at once, unknown keys included.
		{"all problems at once", "writer:\n  tenant: x\n  tenant_id: abc\nrouting:\n  split_tenants: true\nlimits:\n  max_request_bytes: lots\n",
			[]string{`writer: unknown key "tenant" (line 2)`, `writer.datasource_url: missing`, `writer.tenant_id: "abc" is not a tenant`,
				`routing.split_tenants: true needs writer.tenant_id: multitenant`, `limits.max_request_bytes: "lots" is not a size`}},
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "exists.crt"), "cert")
	writeFile(t, filepath.Join(dir, "exists.key"), "key")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := strings.ReplaceAll(tt.yaml, "$TMP", dir)
			cfg, _, err := Parse([]byte(doc))
			if err == nil {
				t.Fatalf("Parse succeeded (%+v); want an error for:\n%s", cfg, doc)
			}
			for _, w := range tt.want {
				if w = strings.ReplaceAll(w, "$TMP", dir); !strings.Contains(err.Error(), w) {
					t.Errorf("error:\n%v\nwant it to contain:\n%s", err, w)
				}
			}
		})
	}
}

// Unknown keys name the section, list the valid keys and guess what was meant.
func TestParseUnknownKeys(t *testing.T) {
	tests := []struct {
		yaml string
		want string
	}{
		{"writer:\n  datasource_url: http://vm:8428\n  tenant: \"0:0\"\n",
			`writer: unknown key "tenant" (line 3); valid keys are: class, datasource_url, tenant_id, metric_format, ` +
				`import_json_path, health_path, user, password, timeout, verify_tls, tls_cert_file, tls_key_file, ` +
				`bearer_token, bearer_token_file, debug, output, compression; did you mean "tenant_id"?`},
		{"writer:\n  datasource_url: http://vm:8428\n  Tenant_ID: \"0:0\"\n", `did you mean "tenant_id"?`},
		{"writer:\n  datasource-url: http://vm:8428\n", `did you mean "datasource_url"?`},
		{"writer:\n  datasource_url: http://vm:8428\n  verify_ssl: false\n", `did you mean "verify_tls"?`},
		{"writer:\n  datasource_url: http://vm:8428\n  split_tenants: true\n",
			`writer: unknown key "split_tenants" (line 3); valid keys are: class,`},
		{"writer:\n  datasource_url: http://vm:8428\n  split_tenants: true\n",
			`did you mean routing.split_tenants? it belongs under routing:`},
		{"writer:\n  datasource_url: http://vm:8428\nlimits:\n  max_request_size: 1MiB\n",
			`limits: unknown key "max_request_size" (line 4); valid keys are: max_request_bytes, max_decoded_bytes, max_inflight_bytes, max_series_per_request, max_labels_per_series, max_label_name_length, max_label_value_length, max_concurrent_requests, max_samples_per_second_per_tenant, min_body_rate, body_rate_grace; did you mean "max_request_bytes"?`},
		{"writter:\n  datasource_url: http://vm:8428\n",
			`unknown top-level key "writter" (line 1); valid keys are: listen, writer, routing, limits, server, queue, auth, relabel_configs, write_relabel_configs, writers; did you mean "writer"?`},
		{"reader:\n  class: vm\nwriter:\n  datasource_url: http://vm:8428\n",
			`unknown top-level key "reader" (line 1); valid keys are: listen, writer, routing, limits, server, queue, auth, relabel_configs, write_relabel_configs, writers; scoreproxy reads only the writer: section of a vmanomaly config; remove reader:`},
		{"writer:\n  datasource_url: http://vm:8428\n  something: 1\n", `writer: unknown key "something" (line 3); valid keys are: class,`},
	}
	for _, tt := range tests {
		_, _, err := Parse([]byte(tt.yaml))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q) error:\n%v\nwant it to contain:\n%s", tt.yaml, err, tt.want)
		}
	}
	// No guess when nothing is close.
	_, _, err := Parse([]byte("writer:\n  datasource_url: http://vm:8428\n  something: 1\n"))
	if err != nil && strings.Contains(err.Error(), "did you mean") {
		t.Errorf("unexpected guess: %v", err)
	}
}

// Warnings are returned, not logged, for settings that load but are
// probably not what the user wants.
func TestParseWarnings(t *testing.T) {
	const ds = "writer:\n  datasource_url: http://localhost:8428\n"
	const admin = "auth:\n  - bearer_token: a\n    tenants: [\"*\"]\n"
	const restricted = "auth:\n  - bearer_token: a\n    tenants: [\"5:*\"]\n"
	tests := []struct {
		name string
		yaml string
		want []string // substrings, one per warning
	}{
		{"the seed format warns about nothing", ds + "  metric_format: {__name__: vmanomaly_$VAR, for: $QUERY_KEY}\n", nil},
		{"no metric_format warns about nothing", ds, nil},
		{"no for key", ds + "  metric_format: {__name__: vmanomaly_$VAR}\n",
			[]string{`writer.metric_format has no "for" key: outputs of different queries for the same series would collide`}},
		{"no query key under another label name", ds + "  metric_format: {__name__: a_$VAR, for: $QUERY_KEY}\nrouting:\n  query_key_label: alias\n",
			[]string{`writer.metric_format has no "alias" key`}},
		{"for without $QUERY_KEY", ds + "  metric_format: {__name__: a_$VAR, for: static}\n",
			[]string{`writer.metric_format.for: "static" replaces the incoming "for" label and no metric_format value uses $QUERY_KEY`}},
		{"import_json_path is unused", ds + "  import_json_path: /api/v1/import\n",
			[]string{`writer.import_json_path is accepted for compatibility with vmanomaly but unused`}},
		{"import_json_path is used by the import_json output", ds + "  output: import_json\n  import_json_path: /api/v1/import\n", nil},
		{"compression auto warns about nothing", ds + "  compression: auto\n", nil},
		{"auth with an admin credential warns about nothing", ds + admin, nil},
		{"auth without an admin credential", ds + restricted, []string{
			`GET /metrics needs a credential with tenants ["*"] or server.metrics_auth_key, and auth: has no such credential and the key is not set: nobody can use it; add such a credential, set server.metrics_auth_key, or set server.metrics_open: true to leave it open`,
			`POST /-/reload needs a credential with tenants ["*"] or server.reload_auth_key`}},
		{"auth without an admin credential, with keys", ds + restricted + "server:\n  metrics_auth_key: m\n  reload_auth_key: r\n", nil},
		{"open endpoints with auth", ds + admin + "server:\n  metrics_open: true\n  reload_open: true\n", []string{
			`server.metrics_open: true: GET /metrics answers anyone, although auth: is set`,
			`server.reload_open: true: POST /-/reload answers anyone, although auth: is set`}},
		{"open endpoints without auth warn about nothing", ds + "server:\n  metrics_open: true\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, warnings := mustParse(t, tt.yaml)
			if len(warnings) != len(tt.want) {
				t.Fatalf("warnings = %q; want %d", warnings, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.Contains(warnings[i], w) {
					t.Errorf("warning %q\nwant it to contain %q", warnings[i], w)
				}
			}
		})
	}
}

// Errors come in the order of the keys in the file, so the first message is
// about the first problem a reader meets.
func TestParseErrorsInFileOrder(t *testing.T) {
	doc := "reader: {}\nwriter:\n  tenant_id: abc\n  timeout: never\nrouting:\n  query_key_label: a-b\nlimits:\n  max_request_bytes: x\nserver:\n  idle_timeout: y\n"
	_, _, err := Parse([]byte(doc))
	if err == nil {
		t.Fatal("Parse succeeded; want errors")
	}
	prefixes := []string{"unknown top-level key", "writer.datasource_url", "writer.tenant_id", "writer.timeout",
		"routing.query_key_label", "limits.max_request_bytes", "server.idle_timeout"}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(prefixes) {
		t.Fatalf("got %d errors, want %d:\n%v", len(lines), len(prefixes), err)
	}
	for i, p := range prefixes {
		if !strings.HasPrefix(lines[i], p) {
			t.Errorf("error %d = %q; want it to start with %q", i, lines[i], p)
		}
	}
}
