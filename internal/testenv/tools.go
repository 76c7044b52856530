package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// ToolsDirEnv names the environment variable that overrides the folder
// .ci/run installs the external binaries into (DefaultToolsDir otherwise).
const ToolsDirEnv = "SCOREPROXY_TOOLS_DIR"

// Tool is an external program the end-to-end tests need. It is looked up, in
// order, at the path in EnvVar, under the tools folder at CachePath, and in
// PATH under Name.
type Tool struct {
	// Name is the executable's name in PATH.
	Name string
	// EnvVar names the environment variable holding an explicit path.
	EnvVar string
	// CachePath is the binary's path relative to the tools folder, where
	// .ci/run unpacks it.
	CachePath string
	// MustSupport, when set, is a flag the binary's -help output must list;
	// it tells a too old binary of the same name (Debian's vmagent 1.79 has
	// no -enableMultitenantHandlers) from the one the tests need.
	MustSupport string
	// HelpFlag prints the flags MustSupport is looked up in; "-help" when
	// empty (Prometheus takes only "--help").
	HelpFlag string
}

// The tools .ci/run installs. Prometheus 2.42 and VictoriaMetrics 1.79 come
// from Debian's `prometheus` and `victoria-metrics` packages (unpacked with
// dpkg -x, so under root/usr/bin); vmagent v1.128.0 and Prometheus v3
// (v0.316.0) are built with go install into bin/; the VictoriaMetrics
// cluster v1.129.1 binaries are unpacked into vm-cluster/.
var (
	PrometheusTool = Tool{
		Name:      "prometheus",
		EnvVar:    "SCOREPROXY_PROMETHEUS",
		CachePath: "root/usr/bin/prometheus",
	}
	VictoriaMetricsTool = Tool{
		Name:      "victoria-metrics",
		EnvVar:    "SCOREPROXY_VICTORIA_METRICS",
		CachePath: "root/usr/bin/victoria-metrics",
	}
	VMAgentTool = Tool{
		Name:        "vmagent",
		EnvVar:      "SCOREPROXY_VMAGENT",
		CachePath:   "bin/vmagent",
		MustSupport: "-enableMultitenantHandlers",
	}
	// Prometheus3Tool is told from Debian's 2.42 by a flag Prometheus 3
	// added: the remote-write receiver's protobuf messages (1.0 and 2.0).
	Prometheus3Tool = Tool{
		Name:        "prometheus3",
		EnvVar:      "SCOREPROXY_PROMETHEUS3",
		CachePath:   "bin/prometheus3",
		MustSupport: "--web.remote-write-receiver.accepted-protobuf-messages",
		HelpFlag:    "--help",
	}
	VMStorageTool = Tool{Name: "vmstorage", EnvVar: "SCOREPROXY_VMSTORAGE", CachePath: "vm-cluster/vmstorage"}
	VMInsertTool  = Tool{Name: "vminsert", EnvVar: "SCOREPROXY_VMINSERT", CachePath: "vm-cluster/vminsert"}
	VMSelectTool  = Tool{Name: "vmselect", EnvVar: "SCOREPROXY_VMSELECT", CachePath: "vm-cluster/vmselect"}
)

// DefaultToolsDir is where .ci/run installs the tools unless ToolsDirEnv says
// otherwise: $HOME/.cache/scoreproxy-tools, which outlives a fresh clone.
func DefaultToolsDir() string {
	if d := os.Getenv(ToolsDirEnv); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "scoreproxy-tools")
	}
	return filepath.Join(home, ".cache", "scoreproxy-tools")
}

// InCI reports whether the tests run under CI (CI=true), where a missing
// tool is a failure rather than a reason to skip.
func InCI() bool { return os.Getenv("CI") == "true" }

// Find returns the path of tool, or an error naming every place looked at.
func (tool Tool) Find() (string, error) {
	var tried []string
	if tool.EnvVar != "" {
		if p := os.Getenv(tool.EnvVar); p != "" {
			if err := tool.check(p); err != nil {
				// An explicit path that does not work is an error, never a
				// reason to fall back silently to another binary.
				return "", fmt.Errorf("%s=%s: %w", tool.EnvVar, p, err)
			}
			return p, nil
		}
		tried = append(tried, "$"+tool.EnvVar+" (unset)")
	}
	if tool.CachePath != "" {
		p := filepath.Join(DefaultToolsDir(), tool.CachePath)
		if err := tool.check(p); err == nil {
			return p, nil
		} else {
			tried = append(tried, fmt.Sprintf("%s (%v)", p, err))
		}
	}
	if p, err := exec.LookPath(tool.Name); err == nil {
		if err := tool.check(p); err == nil {
			return p, nil
		} else {
			tried = append(tried, fmt.Sprintf("%s in PATH (%v)", p, err))
		}
	} else {
		tried = append(tried, tool.Name+" in PATH (not found)")
	}
	return "", fmt.Errorf("%s not found; looked at: %v", tool.Name, tried)
}

// Require returns the path of tool. When it is missing the test is skipped
// with an install hint, or failed when CI=true.
func (tool Tool) Require(t testing.TB) string {
	t.Helper()
	p, err := tool.Find()
	if err == nil {
		return p
	}
	msg := fmt.Sprintf("%v\ninstall it with `bash .ci/run install` (which unpacks Debian's prometheus and victoria-metrics, "+
		"go-installs vmagent v1.128.0 and Prometheus v3, and unpacks the VictoriaMetrics cluster from ../shared/vm-cluster "+
		"into %s), or point %s at the binary", err, DefaultToolsDir(), tool.EnvVar)
	if InCI() {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// check reports whether p is an executable file that supports MustSupport.
func (tool Tool) check(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		return errors.Unwrap(err)
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return errors.New("not an executable file")
	}
	if tool.MustSupport == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	help := tool.HelpFlag
	if help == "" {
		help = "-help"
	}
	out, _ := exec.CommandContext(ctx, p, help).CombinedOutput() // the help flag may exit non-zero
	if !bytes.Contains(out, []byte(tool.MustSupport)) {
		return fmt.Errorf("too old: %s does not list %s", help, tool.MustSupport)
	}
	return nil
}
