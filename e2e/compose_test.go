package e2e

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/scoreproxy/scoreproxy/config"
	"github.com/scoreproxy/scoreproxy/internal/testenv"
)

// compose is the part of a docker-compose.yml file the checks read. Fields
// with several spellings in the compose spec (list or map, string or list)
// are kept as yaml nodes and read by the helpers below.
type compose struct {
	Name     string                    `yaml:"name"`
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image       string    `yaml:"image"`
	Build       yaml.Node `yaml:"build"`
	Command     yaml.Node `yaml:"command"`
	Environment yaml.Node `yaml:"environment"`
	Volumes     []string  `yaml:"volumes"`
	Ports       []string  `yaml:"ports"`
	Expose      []string  `yaml:"expose"`
	DependsOn   yaml.Node `yaml:"depends_on"`
	Restart     string    `yaml:"restart"`
}

// strings returns a string-or-list node as a list (a string is split on spaces).
func nodeStrings(t *testing.T, n yaml.Node) []string {
	t.Helper()
	switch n.Kind {
	case 0:
		return nil
	case yaml.ScalarNode:
		return strings.Fields(n.Value)
	case yaml.SequenceNode:
		var out []string
		if err := n.Decode(&out); err != nil {
			t.Fatalf("line %d: %v", n.Line, err)
		}
		return out
	case yaml.MappingNode: // depends_on: {svc: {condition: ...}}
		var out []string
		for i := 0; i < len(n.Content); i += 2 {
			out = append(out, n.Content[i].Value)
		}
		return out
	}
	t.Fatalf("line %d: unexpected yaml node kind %v", n.Line, n.Kind)
	return nil
}

// nodeEnv returns an environment node (map or KEY=VALUE list) as a map.
func nodeEnv(t *testing.T, n yaml.Node) map[string]string {
	t.Helper()
	out := map[string]string{}
	switch n.Kind {
	case 0:
	case yaml.MappingNode:
		if err := n.Decode(&out); err != nil {
			t.Fatalf("environment, line %d: %v", n.Line, err)
		}
	default:
		for _, kv := range nodeStrings(t, n) {
			k, v, _ := strings.Cut(kv, "=")
			out[k] = v
		}
	}
	return out
}

// flagValue returns the value of -name=V or --name=V (or "-name V") in args.
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		trimmed := strings.TrimLeft(a, "-")
		if len(trimmed) == len(a) {
			continue
		}
		if v, ok := strings.CutPrefix(trimmed, name+"="); ok {
			return v, true
		}
		if trimmed == name && i+1 < len(args) {
			return args[i+1], true
		}
	}
	return "", false
}

// port returns the port of a ":8480" or "host:8480" listen address.
func port(t *testing.T, what, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%s: listen address %q: %v", what, addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("%s: port of %q: %v", what, addr, err)
	}
	return n
}

// composeFile is the parsed docker-compose.yml with the repository root and
// what every service listens on, as the checks derive it.
type composeFile struct {
	root string
	c    compose
	// listens maps service -> port -> role ("http", "vminsert", "vmselect").
	listens map[string]map[int]string
	// mounts maps service -> container path -> host path (absolute).
	mounts map[string]map[string]string
}

// loadCompose parses docker-compose.yml at the repository root and works out
// each service's listening ports from its own flags or config file.
func loadCompose(t *testing.T) *composeFile {
	t.Helper()
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	f := &composeFile{root: root, listens: map[string]map[int]string{}, mounts: map[string]map[string]string{}}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&f.c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	for name, svc := range f.c.Services {
		f.mounts[name] = map[string]string{}
		for _, v := range svc.Volumes {
			parts := strings.Split(v, ":")
			if len(parts) < 2 {
				t.Errorf("service %s: volume %q has no container path", name, v)
				continue
			}
			src, dst := parts[0], parts[1]
			if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") {
				f.mounts[name][dst] = filepath.Join(root, src)
			}
		}
	}
	return f
}

func (f *composeFile) listen(service string, p int, role string) {
	if f.listens[service] == nil {
		f.listens[service] = map[int]string{}
	}
	f.listens[service][p] = role
}

// hostFile maps a file path inside service's container to the host file
// mounted there (directly or inside a mounted folder); "" if not mounted.
func (f *composeFile) hostFile(service, containerPath string) string {
	for dst, src := range f.mounts[service] {
		if containerPath == dst {
			return src
		}
		if rel, ok := strings.CutPrefix(containerPath, strings.TrimSuffix(dst, "/")+"/"); ok {
			return filepath.Join(src, rel)
		}
	}
	return ""
}

// mountedConfig returns the host file of the config the service reads from
// containerPath, failing the test when it is not mounted.
func (f *composeFile) mountedConfig(t *testing.T, service, containerPath string) string {
	t.Helper()
	p := f.hostFile(service, containerPath)
	if p == "" {
		t.Fatalf("service %s reads %s, but no volume mounts a host file there", service, containerPath)
	}
	return p
}

// checkURL fails the test unless rawURL (as used inside the compose network)
// names a service of the file on a port that service listens on; role, when
// set, is the listener's expected role.
func (f *composeFile) checkURL(t *testing.T, where, rawURL, self, role string) *url.URL {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		t.Errorf("%s: %q is not an absolute URL", where, rawURL)
		return nil
	}
	f.checkHostPort(t, where, u.Host, self, role)
	return u
}

func (f *composeFile) checkHostPort(t *testing.T, where, hostport, self, role string) {
	t.Helper()
	host, p, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Errorf("%s: %q has no explicit port: %v", where, hostport, err)
		return
	}
	if host == "localhost" || host == "127.0.0.1" {
		host = self
	}
	if _, ok := f.c.Services[host]; !ok {
		t.Errorf("%s: host %q is not a service of docker-compose.yml", where, host)
		return
	}
	n, _ := strconv.Atoi(p)
	got, ok := f.listens[host][n]
	switch {
	case !ok:
		t.Errorf("%s: service %s does not listen on port %d (it listens on %v)", where, host, n, f.listens[host])
	case role != "" && got != role:
		t.Errorf("%s: port %d of %s is its %s port, want its %s port", where, n, host, got, role)
	}
}

// TestDockerCompose checks docker-compose.yml and the files it mounts without
// a Docker engine: every mounted file exists, images are pinned, the
// scoreproxy config passes scoreproxy's own validation, Prometheus' config
// passes promtool, and every address one service uses for another names a
// service and a port that service listens on.
func TestDockerCompose(t *testing.T) {
	f := loadCompose(t)
	for _, want := range []string{"vmstorage", "vminsert", "vmselect", "scoreproxy", "prometheus", "grafana"} {
		if _, ok := f.c.Services[want]; !ok {
			t.Errorf("docker-compose.yml has no %s service", want)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// Images pinned; build contexts and mounted host paths exist; named
	// volumes declared; depends_on names services.
	pinned := regexp.MustCompile(`^[a-z0-9./-]+:v?[0-9][0-9A-Za-z.-]*$`)
	for name, svc := range f.c.Services {
		if svc.Build.Kind != 0 {
			ctx, dockerfile := ".", "Dockerfile"
			if svc.Build.Kind == yaml.ScalarNode {
				ctx = svc.Build.Value
			} else {
				var b struct {
					Context    string `yaml:"context"`
					Dockerfile string `yaml:"dockerfile"`
				}
				if err := svc.Build.Decode(&b); err != nil {
					t.Fatalf("service %s build: %v", name, err)
				}
				if b.Context != "" {
					ctx = b.Context
				}
				if b.Dockerfile != "" {
					dockerfile = b.Dockerfile
				}
			}
			if _, err := os.Stat(filepath.Join(f.root, ctx, dockerfile)); err != nil {
				t.Errorf("service %s builds from %s: %v", name, filepath.Join(ctx, dockerfile), err)
			}
		} else if !pinned.MatchString(svc.Image) {
			t.Errorf("service %s: image %q is not pinned to a version tag", name, svc.Image)
		}
		for _, v := range svc.Volumes {
			src := strings.Split(v, ":")[0]
			if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") {
				if _, err := os.Stat(filepath.Join(f.root, src)); err != nil {
					t.Errorf("service %s mounts %s: %v", name, src, err)
				}
			} else if _, ok := f.c.Volumes[src]; !ok {
				t.Errorf("service %s uses volume %q, not declared under volumes:", name, src)
			}
		}
		for _, dep := range nodeStrings(t, svc.DependsOn) {
			if _, ok := f.c.Services[dep]; !ok {
				t.Errorf("service %s depends on %q, which is not a service", name, dep)
			}
		}
	}

	// What each service listens on, from its own flags and files.
	for _, name := range []string{"vmstorage", "vminsert", "vmselect"} {
		args := nodeStrings(t, f.c.Services[name].Command)
		addr, ok := flagValue(args, "httpListenAddr")
		if !ok {
			t.Fatalf("service %s: command has no -httpListenAddr (name the port explicitly)", name)
		}
		f.listen(name, port(t, name, addr), "http")
		if name == "vmstorage" {
			for _, role := range []string{"vminsert", "vmselect"} {
				addr, ok := flagValue(args, role+"Addr")
				if !ok {
					t.Fatalf("service vmstorage: command has no -%sAddr", role)
				}
				f.listen(name, port(t, name, addr), role)
			}
		}
	}
	promArgs := nodeStrings(t, f.c.Services["prometheus"].Command)
	promAddr, ok := flagValue(promArgs, "web.listen-address")
	if !ok {
		t.Fatal("service prometheus: command has no --web.listen-address")
	}
	f.listen("prometheus", port(t, "prometheus", promAddr), "http")
	grafanaPort := "3000"
	if p := nodeEnv(t, f.c.Services["grafana"].Environment)["GF_SERVER_HTTP_PORT"]; p != "" {
		grafanaPort = p
	}
	f.listen("grafana", port(t, "grafana", ":"+grafanaPort), "http")

	// scoreproxy: the -config file it reads is mounted and passes
	// scoreproxy's own validation.
	spArgs := nodeStrings(t, f.c.Services["scoreproxy"].Command)
	if len(spArgs) == 0 {
		spArgs = dockerfileCmd(t, f.root)
	}
	spConfigPath, ok := flagValue(spArgs, "config")
	if !ok {
		t.Fatalf("service scoreproxy: no -config in its command %v", spArgs)
	}
	spConfig := f.mountedConfig(t, "scoreproxy", spConfigPath)
	cfg, warnings, err := config.Load(spConfig)
	if err != nil {
		t.Fatalf("config.Load(%s): %v", spConfig, err)
	}
	for _, w := range warnings {
		t.Errorf("config.Load(%s) warns: %s", spConfig, w)
	}
	if host, _, _ := net.SplitHostPort(cfg.Listen); host != "0.0.0.0" && host != "" {
		t.Errorf("%s: listen %q is not reachable from other containers; use 0.0.0.0:PORT", spConfig, cfg.Listen)
	}
	f.listen("scoreproxy", port(t, "scoreproxy", cfg.Listen), "http")

	// Published and exposed ports are ports the service listens on.
	for name, svc := range f.c.Services {
		for _, p := range svc.Ports {
			parts := strings.Split(p, ":")
			container, _, _ := strings.Cut(parts[len(parts)-1], "/")
			f.checkHostPort(t, fmt.Sprintf("service %s ports %q", name, p), name+":"+container, name, "")
		}
		for _, p := range svc.Expose {
			f.checkHostPort(t, fmt.Sprintf("service %s expose %q", name, p), name+":"+p, name, "")
		}
	}

	// The cluster wiring: vminsert and vmselect reach vmstorage's matching ports.
	for _, name := range []string{"vminsert", "vmselect"} {
		node, ok := flagValue(nodeStrings(t, f.c.Services[name].Command), "storageNode")
		if !ok {
			t.Errorf("service %s has no -storageNode", name)
			continue
		}
		for _, n := range strings.Split(node, ",") {
			f.checkHostPort(t, name+" -storageNode", n, name, name)
		}
	}

	// scoreproxy writes to vminsert's HTTP port and checks its health there.
	u := f.checkURL(t, spConfig+" writer.datasource_url", cfg.Writer.DatasourceURL, "scoreproxy", "http")
	if u != nil && !strings.HasPrefix(u.Host, "vminsert:") {
		t.Errorf("%s: writer.datasource_url %s is not vminsert", spConfig, cfg.Writer.DatasourceURL)
	}
	f.checkURL(t, spConfig+" writer.health_path", cfg.Writer.HealthURL(), "scoreproxy", "http")

	// Prometheus: its config is mounted, passes promtool, scrapes services
	// that exist and remote-writes to scoreproxy's receiver.
	promConfigPath, ok := flagValue(promArgs, "config.file")
	if !ok {
		t.Fatal("service prometheus: command has no --config.file")
	}
	promFile := f.mountedConfig(t, "prometheus", promConfigPath)
	checkPrometheusConfig(t, f, promFile)

	// Grafana: the provisioning folder is mounted where Grafana reads it; its
	// datasources point at vmselect; its dashboard provider's folder is mounted.
	checkGrafanaProvisioning(t, f)
}

// checkPrometheusConfig validates prometheus.yml with promtool (Debian's
// 2.42, the oldest Prometheus the file is meant for) and checks its targets
// and remote_write URL against the compose file.
func checkPrometheusConfig(t *testing.T, f *composeFile, path string) {
	t.Helper()
	promtool := testenv.Tool{Name: "promtool", EnvVar: "SCOREPROXY_PROMTOOL", CachePath: "root/usr/bin/promtool"}
	if bin, err := promtool.Find(); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(ctx, bin, "check", "config", "--syntax-only", path).CombinedOutput(); err != nil {
			t.Errorf("promtool check config %s: %v\n%s", path, err, out)
		}
	} else if testenv.InCI() {
		t.Errorf("promtool: %v (bash .ci/run installs it with Debian's prometheus)", err)
	} else {
		t.Logf("promtool not found, Prometheus config syntax not checked: %v", err)
	}

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var pc struct {
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			MetricsPath   string `yaml:"metrics_path"`
			StaticConfigs []struct {
				Targets []string          `yaml:"targets"`
				Labels  map[string]string `yaml:"labels"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
		RemoteWrite []struct {
			URL string `yaml:"url"`
		} `yaml:"remote_write"`
	}
	if err := yaml.Unmarshal(data, &pc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	scrapesScoreproxy := false
	for _, sc := range pc.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			for _, target := range st.Targets {
				f.checkHostPort(t, fmt.Sprintf("%s job %s target", path, sc.JobName), target, "prometheus", "http")
				if strings.HasPrefix(target, "scoreproxy:") {
					scrapesScoreproxy = true
				}
			}
		}
	}
	if !scrapesScoreproxy {
		t.Errorf("%s: no job scrapes scoreproxy's /metrics (the dashboard needs it)", path)
	}
	if len(pc.RemoteWrite) == 0 {
		t.Errorf("%s: no remote_write", path)
	}
	writePaths := regexp.MustCompile(`^(/api/v1/write|/prometheus/api/v1/write|/insert/[^/]+/prometheus(/api/v1/write)?)$`)
	for _, rw := range pc.RemoteWrite {
		u := f.checkURL(t, path+" remote_write", rw.URL, "prometheus", "http")
		if u == nil {
			continue
		}
		if !strings.HasPrefix(u.Host, "scoreproxy:") {
			t.Errorf("%s: remote_write goes to %s, not to scoreproxy", path, rw.URL)
		}
		if !writePaths.MatchString(u.Path) {
			t.Errorf("%s: remote_write path %q is not one scoreproxy receives on", path, u.Path)
		}
	}
}

// checkGrafanaProvisioning checks the provisioning files Grafana reads.
func checkGrafanaProvisioning(t *testing.T, f *composeFile) {
	t.Helper()
	dsFiles, _ := filepath.Glob(filepath.Join(f.mountedConfig(t, "grafana", "/etc/grafana/provisioning/datasources"), "*.yaml"))
	dbFiles, _ := filepath.Glob(filepath.Join(f.mountedConfig(t, "grafana", "/etc/grafana/provisioning/dashboards"), "*.yaml"))
	if len(dsFiles) == 0 || len(dbFiles) == 0 {
		t.Fatalf("grafana provisioning: datasources %v, dashboards %v; want at least one of each", dsFiles, dbFiles)
	}
	for _, file := range dsFiles {
		for _, ds := range readDatasources(t, file) {
			u := f.checkURL(t, file+" datasource "+ds.Name, ds.URL, "grafana", "http")
			if u != nil && (!strings.HasPrefix(u.Host, "vmselect:") || !regexp.MustCompile(`^/select/\d+(:\d+)?/prometheus/?$`).MatchString(u.Path)) {
				t.Errorf("%s: datasource %s URL %s is not vmselect's /select/<tenant>/prometheus", file, ds.Name, ds.URL)
			}
		}
	}
	for _, file := range dbFiles {
		for _, p := range readDashboardProviders(t, file) {
			host := f.hostFile("grafana", p.Options.Path)
			if host == "" {
				t.Errorf("%s: provider %s reads %s, which no grafana volume mounts", file, p.Name, p.Options.Path)
				continue
			}
			if js, _ := filepath.Glob(filepath.Join(host, "*.json")); len(js) == 0 {
				t.Errorf("%s: provider %s folder %s (host %s) has no dashboard", file, p.Name, p.Options.Path, host)
			}
		}
	}
	// The home dashboard path, if set, is a mounted file.
	if home := nodeEnv(t, f.c.Services["grafana"].Environment)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]; home != "" {
		if h := f.hostFile("grafana", home); h == "" {
			t.Errorf("grafana: GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH %s is not mounted", home)
		} else if _, err := os.Stat(h); err != nil {
			t.Errorf("grafana: GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH: %v", err)
		}
	}
}

type grafanaDatasource struct {
	Name string `yaml:"name"`
	UID  string `yaml:"uid"`
	Type string `yaml:"type"`
	URL  string `yaml:"url"`
}

func readDatasources(t *testing.T, file string) []grafanaDatasource {
	t.Helper()
	var doc struct {
		APIVersion  int                 `yaml:"apiVersion"`
		Datasources []grafanaDatasource `yaml:"datasources"`
	}
	readYAML(t, file, &doc)
	if doc.APIVersion != 1 {
		t.Errorf("%s: apiVersion %d, want 1", file, doc.APIVersion)
	}
	return doc.Datasources
}

type grafanaProvider struct {
	Name    string `yaml:"name"`
	Type    string `yaml:"type"`
	Options struct {
		Path string `yaml:"path"`
	} `yaml:"options"`
}

func readDashboardProviders(t *testing.T, file string) []grafanaProvider {
	t.Helper()
	var doc struct {
		APIVersion int               `yaml:"apiVersion"`
		Providers  []grafanaProvider `yaml:"providers"`
	}
	readYAML(t, file, &doc)
	if doc.APIVersion != 1 {
		t.Errorf("%s: apiVersion %d, want 1", file, doc.APIVersion)
	}
	for _, p := range doc.Providers {
		if p.Type != "file" {
			t.Errorf("%s: provider %s has type %q, want file", file, p.Name, p.Type)
		}
	}
	return doc.Providers
}

func readYAML(t *testing.T, file string, v any) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

// dockerfileCmd returns the CMD of the root Dockerfile (exec form).
func dockerfileCmd(t *testing.T, root string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var cmd []string
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "CMD "); ok {
			if err := yaml.Unmarshal([]byte(rest), &cmd); err != nil {
				t.Fatalf("Dockerfile CMD %s: %v", rest, err)
			}
		}
	}
	return cmd
}

// TestDockerfile checks that the image runs the binary with the config path
// docker-compose.yml mounts, and builds the command scoreproxy's README names.
func TestDockerfile(t *testing.T) {
	f := loadCompose(t)
	data, err := os.ReadFile(filepath.Join(f.root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for _, want := range []string{"FROM golang:1.26", "./cmd/scoreproxy", "CGO_ENABLED=0", "ENTRYPOINT"} {
		if !strings.Contains(text, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	cmd := dockerfileCmd(t, f.root)
	cfgPath, ok := flagValue(cmd, "config")
	if !ok {
		t.Fatalf("Dockerfile CMD %v has no -config", cmd)
	}
	if f.hostFile("scoreproxy", cfgPath) == "" {
		t.Errorf("Dockerfile CMD reads %s, which docker-compose.yml does not mount into scoreproxy", cfgPath)
	}
	if !slices.Contains(strings.Fields(text), "EXPOSE") {
		t.Errorf("Dockerfile has no EXPOSE")
	}
}
