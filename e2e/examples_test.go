package e2e

import (
	"path/filepath"
	"sort"
	"testing"

	"github.com/scoreproxy/scoreproxy/config"
	"github.com/scoreproxy/scoreproxy/internal/testenv"
)

// TestExamplesLoad loads every config in examples/ with scoreproxy's own
// validation and checks that together they cover the four writer modes
// users pick from: single node, fixed tenant, multitenant, and split.
func TestExamplesLoad(t *testing.T) {
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, pattern := range []string{"*.yaml", "*.yml"} {
		m, _ := filepath.Glob(filepath.Join(root, "examples", pattern))
		files = append(files, m...)
	}
	sort.Strings(files)
	modes := map[string][]string{}
	for _, file := range files {
		cfg, warnings, err := config.Load(file)
		if err != nil {
			t.Errorf("config.Load(%s): %v", file, err)
			continue
		}
		for _, w := range warnings {
			t.Logf("%s: warning: %s", filepath.Base(file), w)
		}
		mode := "fixed tenant"
		switch {
		case cfg.Writer.TenantID == "":
			mode = "single node"
		case cfg.Writer.TenantID == config.Multitenant && cfg.Routing.SplitTenants:
			mode = "split"
		case cfg.Writer.TenantID == config.Multitenant:
			mode = "multitenant"
		}
		modes[mode] = append(modes[mode], filepath.Base(file))
	}
	for _, mode := range []string{"single node", "fixed tenant", "multitenant", "split"} {
		if len(modes[mode]) == 0 {
			t.Errorf("examples/ has no config for the %s mode (found %v)", mode, modes)
		}
	}
}
