package e2e

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/scoreproxy/scoreproxy/internal/testenv"
)

// TestReadmeQuotesDeployFiles keeps README.md's "Use with Prometheus" and
// "In front of vminsert" sections in step with the files the compose test
// checks: a YAML block with a top-level remote_write must be deploy/prometheus.yml's
// remote_write, and a scoreproxy config listening on 0.0.0.0:8490 must be
// deploy/scoreproxy.yaml (compared as YAML, so comments may differ).
func TestReadmeQuotesDeployFiles(t *testing.T) {
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if os.IsNotExist(err) {
		t.Skip("no README.md")
	}
	if err != nil {
		t.Fatal(err)
	}
	var prom, proxy map[string]any
	readYAML(t, filepath.Join(root, "deploy", "prometheus.yml"), &prom)
	readYAML(t, filepath.Join(root, "deploy", "scoreproxy.yaml"), &proxy)

	blocks := regexp.MustCompile("(?s)```ya?ml\n(.*?)```").FindAllStringSubmatch(string(readme), -1)
	for _, b := range blocks {
		var doc map[string]any
		if yaml.Unmarshal([]byte(b[1]), &doc) != nil || doc == nil {
			continue // a fragment (e.g. a list item), not a document
		}
		if rw, ok := doc["remote_write"]; ok && len(doc) == 1 {
			if !reflect.DeepEqual(rw, prom["remote_write"]) {
				t.Errorf("README.md quotes remote_write as %v; deploy/prometheus.yml has %v", rw, prom["remote_write"])
			}
		}
		if doc["listen"] == "0.0.0.0:8490" {
			if !reflect.DeepEqual(doc, proxy) {
				t.Errorf("README.md quotes a config listening on 0.0.0.0:8490 that differs from deploy/scoreproxy.yaml:\nREADME: %v\nfile:   %v", doc, proxy)
			}
		}
	}
}
