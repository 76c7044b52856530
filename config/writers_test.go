package config

import (
	"reflect"
	"strings"
	"testing"
)

// writers: and routing.tenant_urls errors, each naming the entry and key.
func TestParseWritersErrors(t *testing.T) {
	const two = "writers:\n  - datasource_url: http://a:8428/\n  - datasource_url: http://b:8428/\n"
	const split = "writer:\n  datasource_url: http://a:8480/\n  tenant_id: multitenant\nrouting:\n  split_tenants: true\n"
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"writer and writers", "writer:\n  datasource_url: http://a:8428/\n" + two,
			[]string{`writers: set together with writer:; use writer: for one upstream or writers: for several, not both`}},
		{"entry keys are named by index", "writers:\n  - datasource_url: http://a:8428/\n  - tenant_id: x\n",
			[]string{`writers[1].datasource_url: missing`, `writers[1].tenant_id: "x" is not a tenant`}},
		{"cross-key messages are renamed", "writers:\n  - datasource_url: http://a:8428/\n    password: p\n",
			[]string{`writers[0].password: set without writers[0].user; basic auth needs a user: add writers[0].user`}},
		{"metric_format per entry", "writers:\n  - datasource_url: http://a:8428/\n    metric_format: {for: $QUERY_KEY}\n",
			[]string{`writers[0].metric_format must have a "__name__" key`}},
		{"names are unique", "writers:\n  - {name: x, datasource_url: http://a:8428/}\n  - {name: x, datasource_url: http://b:8428/}\n",
			[]string{`writers[1].name: "x" is also the name of writers[0]`}},
		{"names are directory names", "writers:\n  - {name: ../x, datasource_url: http://a:8428/}\n",
			[]string{`writers[0].name: "../x" is not a usable name`}},
		{"unknown key in an entry", "writers:\n  - datasource_url: http://a:8428/\n    tenant: x\n",
			[]string{`writers[]: unknown key "tenant" (line 3)`, `did you mean "tenant_id"?`}},
		{"split needs every writer multitenant", "writers:\n  - {datasource_url: http://a:8480/, tenant_id: multitenant}\n" +
			"  - {datasource_url: http://b:8480/, tenant_id: \"1\"}\nrouting:\n  split_tenants: true\n",
			[]string{`routing.split_tenants: true needs writers[1].tenant_id: multitenant (it is "1")`}},
		{"debug with a queue", "writers:\n  - {datasource_url: http://a:8428/, debug: true}\nqueue:\n  path: /tmp/q\n",
			[]string{`writers[0].debug: true prints requests instead of sending them`}},
		{"tenant_urls needs split", "writer:\n  datasource_url: http://a:8480/\n  tenant_id: multitenant\nrouting:\n  tenant_urls: {\"1:2\": http://b:8480/}\n",
			[]string{`routing.tenant_urls: set without routing.split_tenants: true`}},
		{"tenant_urls keys are tenants", split + "  tenant_urls: {\"a:b\": http://b:8480/, multitenant: http://b:8480/}\n",
			[]string{`routing.tenant_urls: "a:b" is not a tenant`, `routing.tenant_urls: "multitenant" is not a tenant`}},
		{"tenant_urls values are URLs", split + "  tenant_urls: {\"1:2\": b:8480}\n",
			[]string{`routing.tenant_urls."1:2": "b:8480" is not an absolute http(s) URL`}},
		{"tenant_urls same tenant twice", split + "  tenant_urls: {\"5\": http://b:8480/, \"5:0\": http://c:8480/}\n",
			[]string{`routing.tenant_urls: "5" and "5:0" are the same tenant; keep one`}},
		{"tenant_urls is a mapping", split + "  tenant_urls: [http://b:8480/]\n",
			[]string{`routing.tenant_urls: must be a mapping of tenants to datasource URLs`}},
		{"tenant_urls with several writers", "writers:\n  - {datasource_url: http://a:8480/, tenant_id: multitenant}\n" +
			"  - {datasource_url: http://b:8480/, tenant_id: multitenant}\nrouting:\n  split_tenants: true\n  tenant_urls: {\"1\": http://c:8480/}\n",
			[]string{`routing.tenant_urls: cannot be used with several writers:`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _, err := Parse([]byte(tt.yaml))
			if err == nil {
				t.Fatalf("Parse succeeded (%+v); want an error for:\n%s", cfg, tt.yaml)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error:\n%v\nwant it to contain:\n%s", err, w)
				}
			}
		})
	}
}

// A valid writers: list: every entry checked like writer:, names defaulted,
// Writer is the first entry; tenant_urls kept as written.
func TestParseWriters(t *testing.T) {
	doc := `
writers:
  - datasource_url: http://a:8480/
    tenant_id: multitenant
    metric_format: {__name__: "a_$VAR", for: "$QUERY_KEY"}
  - name: cluster-b
    datasource_url: http://b:8480/
    tenant_id: multitenant
    timeout: 1s
routing:
  split_tenants: true
`
	cfg, _, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	ws := cfg.WriterList()
	if len(ws) != 2 || ws[0].Name != "writer0" || ws[1].Name != "cluster-b" {
		t.Fatalf("writers = %+v", ws)
	}
	if !reflect.DeepEqual(cfg.Writer, ws[0]) || ws[1].Timeout.String() != "1s" || ws[1].MetricFormat != nil ||
		ws[0].MetricFormat["__name__"] != "a_$VAR" {
		t.Errorf("writers = %+v", ws)
	}
	if cfg.WriterKey(1) != "writers[1]" {
		t.Errorf("WriterKey(1) = %q", cfg.WriterKey(1))
	}
	if _, err := cfg.CompileWriterFormat(0, ws[0]); err != nil {
		t.Error(err)
	}

	single, _, err := Parse([]byte("writer:\n  datasource_url: http://a:8480/\n  tenant_id: multitenant\nrouting:\n  split_tenants: true\n" +
		"  tenant_urls: {\"5\": http://b:8480/, \"6:7\": http://c:8480}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(single.WriterList()) != 1 || single.Writers != nil || single.WriterKey(0) != "writer" {
		t.Errorf("single writer: Writers = %+v", single.Writers)
	}
	want := map[string]string{"5": "http://b:8480/", "6:7": "http://c:8480"}
	if !reflect.DeepEqual(single.Routing.TenantURLs, want) {
		t.Errorf("tenant_urls = %v, want %v", single.Routing.TenantURLs, want)
	}
}
