package main

import (
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The scoreproxy config of each scenario is valid YAML with the writer's
// keys, the seed's metric_format and split_tenants where asked for.
func TestScoreproxyConfig(t *testing.T) {
	type config struct {
		Listen string `yaml:"listen"`
		Writer struct {
			DatasourceURL string            `yaml:"datasource_url"`
			TenantID      string            `yaml:"tenant_id"`
			MetricFormat  map[string]string `yaml:"metric_format"`
		} `yaml:"writer"`
		Routing struct {
			SplitTenants bool `yaml:"split_tenants"`
		} `yaml:"routing"`
	}
	for _, sc := range allScenarios {
		var c config
		dec := yaml.NewDecoder(strings.NewReader(sc.scoreproxyConfig("127.0.0.1:9000", "http://127.0.0.1:9001")))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil {
			t.Fatalf("%s: %v", sc.Name, err)
		}
		if c.Listen != "127.0.0.1:9000" || c.Writer.DatasourceURL != "http://127.0.0.1:9001" || c.Writer.TenantID != "multitenant" {
			t.Errorf("%s: %+v", sc.Name, c)
		}
		if sc.MetricFormat != (c.Writer.MetricFormat["__name__"] == "vmanomaly_$VAR") || sc.Split != c.Routing.SplitTenants {
			t.Errorf("%s: %+v", sc.Name, c)
		}
		if sc.MetricFormat && (len(c.Writer.MetricFormat) != 4 || c.Writer.MetricFormat["for"] != "$QUERY_KEY") {
			t.Errorf("%s: metric_format %v", sc.Name, c.Writer.MetricFormat)
		}
	}
}

// vmagent gets Prometheus remote write towards the sink, the relabel file
// for metric_format, and per-tenant URLs in the urls split mode.
func TestVmagentArgs(t *testing.T) {
	dir := t.TempDir()
	args, err := allScenarios[1].vmagentArgs("127.0.0.1:1", "http://127.0.0.1:2", dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(args, " ")
	for _, want := range []string{"-httpListenAddr=127.0.0.1:1", "-remoteWrite.url=http://127.0.0.1:2/insert/multitenant/prometheus/api/v1/write",
		"-remoteWrite.forcePromProto=true", "-remoteWrite.urlRelabelConfig=", "-remoteWrite.tmpDataPath=" + dir} {
		if !strings.Contains(joined, want) {
			t.Errorf("args lack %q: %s", want, joined)
		}
	}
	rules, err := os.ReadFile(dir + "/metric_format.yml")
	if err != nil || !strings.Contains(string(rules), "vmanomaly_$1") {
		t.Fatalf("relabel file: %v %s", err, rules)
	}
	var parsed []map[string]any
	if err := yaml.Unmarshal(rules, &parsed); err != nil || len(parsed) != 3 {
		t.Fatalf("relabel YAML: %v %v", err, parsed)
	}
	args, err = allScenarios[2].vmagentArgs("127.0.0.1:1", "http://127.0.0.1:2", dir, []string{"1:0", "2:0"})
	if err != nil {
		t.Fatal(err)
	}
	joined = strings.Join(args, " ")
	if n := strings.Count(joined, "-remoteWrite.url=http://127.0.0.1:2/insert/"); n != 2 || strings.Contains(joined, "multitenant") {
		t.Fatalf("split: %d URLs in %v, want one per tenant", n, args)
	}
	args, err = allScenarios[3].vmagentArgs("127.0.0.1:1", "http://127.0.0.1:2", dir, []string{"1:0", "2:0"})
	if err != nil {
		t.Fatal(err)
	}
	joined = strings.Join(args, " ")
	if n := strings.Count(joined, "-remoteWrite.url="); n != 1 || !strings.Contains(joined, "/insert/multitenant/") {
		t.Fatalf("split_multitenant: %v, want one /insert/multitenant URL", args)
	}
}

// The expectation check accepts what a correct proxy delivers and names
// what a wrong one got wrong.
func TestExpectationCheck(t *testing.T) {
	acked := map[string]int64{"1:0": 8, "2:0": 12}
	good := Counts{Counter: Counter{Series: 5, Samples: 20, TenantLabelled: 5},
		Paths:   map[string]*Counter{"/insert/multitenant/prometheus/api/v1/write": {Samples: 20}},
		Tenants: map[string]*Counter{"1:0": {Samples: 8}, "2:0": {Samples: 12}},
		Names:   map[string]*Counter{"vmanomaly_y": {Samples: 20}}}
	mf := allScenarios[1].expect("scoreproxy", true)
	if err := mf.check(good, acked, true); err != nil {
		t.Fatal(err)
	}
	bad := good.clone()
	bad.Names = map[string]*Counter{"y": {Samples: 20}}
	bad.Tenants["2:0"].Samples = 11
	err := mf.check(bad, acked, true)
	if err == nil || !strings.Contains(err.Error(), "prefix") || !strings.Contains(err.Error(), "tenant 2:0") {
		t.Fatalf("error %v", err)
	}
	for _, sc := range allScenarios {
		if sc.Import {
			if err := sc.expect("vmagent", true).check(good, acked, true); err != nil {
				t.Errorf("%s: %v", sc.Name, err)
			}
		}
		if !sc.Split {
			continue
		}
		for _, proxy := range []string{"scoreproxy", "vmagent"} {
			err := sc.expect(proxy, true).check(good, acked, true)
			if multitenantOK := proxy == "vmagent" && sc.VmagentMultitenant; multitenantOK != (err == nil) {
				t.Errorf("%s, %s: multitenant path gave %v", sc.Name, proxy, err)
			}
			if err != nil && !strings.Contains(err.Error(), "write path") {
				t.Errorf("%s, %s: %v, want a write path complaint", sc.Name, proxy, err)
			}
		}
	}
}

// The import scenarios configure both proxies exactly as their remote-write
// twins (pass-through, metric_format) and send to /api/v1/import.
func TestImportScenarios(t *testing.T) {
	n := 0
	for _, sc := range allScenarios {
		if !sc.Import {
			if sc.writePath() != "/api/v1/write" {
				t.Errorf("%s: load to %s", sc.Name, sc.writePath())
			}
			continue
		}
		n++
		twin := Scenario{MetricFormat: sc.MetricFormat, Split: sc.Split}
		if sc.writePath() != "/api/v1/import" {
			t.Errorf("%s: load to %s", sc.Name, sc.writePath())
		}
		if got, want := sc.scoreproxyConfig("l", "s"), twin.scoreproxyConfig("l", "s"); got != want {
			t.Errorf("%s: scoreproxy config\n%s\nwant\n%s", sc.Name, got, want)
		}
		dir := t.TempDir()
		got, err := sc.vmagentArgs("l", "s", dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := twin.vmagentArgs("l", "s", dir, nil)
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s: vmagent %v, want %v", sc.Name, got, want)
		}
	}
	if n != 2 {
		t.Fatalf("%d import scenarios, want import and import_metric_format", n)
	}
}
