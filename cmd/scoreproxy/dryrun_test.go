package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// -dry-run / check: a table of configs and series with the exact text
// printed (series, output series, endpoint URL, warnings) and exit code.
func TestDryRun(t *testing.T) {
	const split = `writer:
  datasource_url: http://vminsert:8480/
  tenant_id: multitenant
  metric_format: {__name__: "vmanomaly_$VAR", for: "$QUERY_KEY", run: "r1"}
routing:
  split_tenants: true
  tenant_urls: {"7": "http://other:8480/"}
`
	const replicated = `writers:
  - datasource_url: http://a:8428/
    metric_format: {__name__: "a_$VAR", for: "$QUERY_KEY"}
  - name: b
    datasource_url: http://b:8480/
    tenant_id: "3:4"
`
	const fixedTenant = "writer:\n  datasource_url: http://vminsert:8480/\n  tenant_id: \"5\"\n"
	tests := []struct {
		name     string
		config   string
		args     []string
		wantCode int
		want     string
	}{
		{"split with tenant_urls", split, []string{"-dry-run",
			"-series", `anomaly_score{for="q1",vm_account_id="5"}`, "-series", `yhat{for="q2", vm_account_id="7"}`}, 0,
			"config $CONFIG is valid\n" +
				"series anomaly_score{for=\"q1\",vm_account_id=\"5\"}\n" +
				"  writer: vmanomaly_anomaly_score{for=\"q1\",run=\"r1\"} -> http://vminsert:8480/insert/5:0/prometheus/api/v1/write\n" +
				"series yhat{for=\"q2\",vm_account_id=\"7\"}\n" +
				"  writer: vmanomaly_yhat{for=\"q2\",run=\"r1\"} -> http://other:8480/insert/7:0/prometheus/api/v1/write\n"},
		{"check subcommand, case 3 warning", split, []string{"check", "-series", `y{for="q3"}`}, 0,
			"config $CONFIG is valid\n" +
				"series y{for=\"q3\"}\n" +
				"  writer: vmanomaly_y{for=\"q3\",run=\"r1\"} -> http://vminsert:8480/insert/0:0/prometheus/api/v1/write\n" +
				"  writer: warning: The label `vm_account_id` was not found in the label set of y{for=\"q3\"}, but tenant_id='multitenant' is set in writer."},
		{"fixed tenant, case 4 warning", fixedTenant, []string{"-dry-run", "-series", `y{vm_account_id="1"}`}, 0,
			"series y{vm_account_id=\"1\"}\n" +
				"  writer: y{vm_account_id=\"1\"} -> http://vminsert:8480/insert/5:0/prometheus/api/v1/write\n" +
				"  writer: warning: "},
		{"two writers", replicated, []string{"check", "-series", `anomaly_score{for="q1"}`}, 0,
			"series anomaly_score{for=\"q1\"}\n" +
				"  writers[0] (writer0): a_anomaly_score{for=\"q1\"} -> http://a:8428/api/v1/write\n" +
				"  writers[1] (b): anomaly_score{for=\"q1\"} -> http://b:8480/insert/3:4/prometheus/api/v1/write\n"},
		{"config only", fixedTenant, []string{"check"}, 0, "config $CONFIG is valid\n"},
		{"invalid config", "writer:\n  datasource_url: http://x/\n  tenant_id: abc\n", []string{"check"}, 2,
			`writer.tenant_id: "abc" is not a tenant`},
		{"bad series", fixedTenant, []string{"check", "-series", `y{for=q1}`}, 2,
			"label for: the value must be quoted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.yaml")
			if err := os.WriteFile(path, []byte(tt.config), 0o600); err != nil {
				t.Fatal(err)
			}
			args := append([]string{}, tt.args...)
			if args[0] == "check" {
				args = append([]string{"check", "-config", path}, args[1:]...)
			} else {
				args = append([]string{"-config", path}, args...)
			}
			var out bytes.Buffer
			code := run(context.Background(), args, &out, &out)
			want := strings.ReplaceAll(tt.want, "$CONFIG", path)
			if code != tt.wantCode || !strings.Contains(out.String(), want) {
				t.Errorf("%v: exit %d, output\n%s\nwant exit %d and output containing\n%s", args, code, out.String(), tt.wantCode, want)
			}
		})
	}
}
