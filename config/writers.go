package config

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/scoreproxy/scoreproxy/relabel"
)

// rawWriterItem is one entry of writers:: every key of the writer: section
// plus an optional name, which names the writer's queue subdirectory and
// its log lines.
type rawWriterItem struct {
	Name      value `yaml:"name"`
	rawWriter `yaml:",inline"`
}

func init() {
	// yaml.v3 names the item type in its unknown-key messages.
	sectionsByType["config.rawWriterItem"] = section{"writers[]", yamlKeys(rawWriterItem{})}
}

// writerNameRE is what a writer name may be: it becomes a directory name.
var writerNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// WriterList returns the writers data is copied to: Writers when writers:
// was set, else the single Writer.
func (c *Config) WriterList() []Writer {
	if len(c.Writers) > 0 {
		return c.Writers
	}
	return []Writer{c.Writer}
}

// WriterKey is how the config names the i-th writer of WriterList in
// messages: "writer" for a single writer: section, else "writers[i]".
func (c *Config) WriterKey(i int) string {
	if len(c.Writers) == 0 {
		return "writer"
	}
	return fmt.Sprintf("writers[%d]", i)
}

// CompileWriterFormat compiles w.MetricFormat with routing.query_key_label,
// which Parse has already validated (CompileFormat for any writer).
func (c *Config) CompileWriterFormat(i int, w Writer) (*relabel.Format, error) {
	f, err := relabel.Compile(w.MetricFormat, c.Routing.QueryKeyLabel)
	if err != nil {
		return nil, prefixErrors(c.WriterKey(i)+".", err)
	}
	return f, nil
}

// writers builds writer: or writers: (one of the two) and checks each
// writer's metric_format against routing.query_key_label. It returns the
// first writer as Writer, so that code reading Config.Writer keeps working,
// and the list when writers: was used.
func (c *checker) writers(raw *rawConfig, routing Routing) (Writer, []Writer) {
	if len(raw.Writers) == 0 {
		w := c.writer(raw.Writer)
		c.checkFormat(w.MetricFormat, routing.QueryKeyLabel)
		return w, nil
	}
	if writerSet(raw.Writer) {
		c.errorf("writers", "set together with writer:; use writer: for one upstream or writers: for several, "+
			"not both: move the writer: section into writers: as its first entry")
	}
	ws := make([]Writer, len(raw.Writers))
	firstIndex := map[string]int{}
	for i, item := range raw.Writers {
		key := fmt.Sprintf("writers[%d]", i)
		sub := &checker{}
		w := sub.writer(item.rawWriter)
		sub.checkFormat(w.MetricFormat, routing.QueryKeyLabel)
		c.adopt(sub, key)
		w.Name = c.checkedStr(key+".name", item.Name, "writer"+strconv.Itoa(i), checkWriterName)
		if j, dup := firstIndex[w.Name]; dup {
			c.errorf(key+".name", "%q is also the name of writers[%d]; names must be unique (they name the queue subdirectories)", w.Name, j)
		}
		firstIndex[w.Name] = i
		ws[i] = w
	}
	return ws[0], ws
}

// writerSet reports whether any key of the writer: section was written.
func writerSet(raw rawWriter) bool {
	v := reflect.ValueOf(raw)
	for i := range v.NumField() {
		if f, ok := v.Field(i).Interface().(value); ok && f.set() {
			return true
		}
	}
	return false
}

// writerKeyRE finds "writer.<key>" in a message of the writer: checks.
var writerKeyRE = regexp.MustCompile(`\bwriter\.([a-z_]+)`)

// adopt takes the errors and warnings of a writer checked as writer: and
// renames its keys to key (e.g. "writers[1]"), so that they name the entry
// they are about. Only real key names are renamed ("writer.vm.VmWriter",
// a class name, is not).
func (c *checker) adopt(sub *checker, key string) {
	writerKeys := sections[1].keys
	rename := func(msg string) string {
		return writerKeyRE.ReplaceAllStringFunc(msg, func(m string) string {
			if name := strings.TrimPrefix(m, "writer."); slices.Contains(writerKeys, name) {
				return key + "." + name
			}
			return m
		})
	}
	for _, err := range sub.errs {
		c.errs = append(c.errs, fmt.Errorf("%s", rename(err.Error())))
	}
	for _, w := range sub.warnings {
		c.warnings = append(c.warnings, rename(w))
	}
}

func checkWriterName(s string) error {
	if !writerNameRE.MatchString(s) {
		return fmt.Errorf("%q is not a usable name; write 1 to 64 letters, digits, '_', '-' or '.', starting with a letter or digit, e.g. \"cluster-b\"", s)
	}
	return nil
}

// writerRules checks the rules between each writer and the other sections.
func (c *checker) writerRules(cfg *Config) {
	for i, w := range cfg.WriterList() {
		key := cfg.WriterKey(i)
		if w.Debug && cfg.Queue.Enabled() {
			c.errorf(key+".debug", "true prints requests instead of sending them, so a durable queue has nothing to protect: "+
				"remove queue.path while debugging (or remove %s.debug to send for real)", key)
		}
		if cfg.Routing.SplitTenants && w.TenantID != Multitenant {
			c.errorf("routing.split_tenants", "true needs %s.tenant_id: multitenant (it is %q): "+
				"it splits what a multitenant writer sends by each series' vm_account_id / vm_project_id", key, w.TenantID)
		}
	}
	if len(cfg.Routing.TenantURLs) > 0 {
		if !cfg.Routing.SplitTenants {
			c.errorf("routing.tenant_urls", "set without routing.split_tenants: true; tenant URLs apply when each tenant "+
				"gets its own request: set routing.split_tenants: true (with writer.tenant_id: multitenant) or remove routing.tenant_urls")
		}
		if len(cfg.Writers) > 1 {
			c.errorf("routing.tenant_urls", "cannot be used with several writers: (every writer would send those tenants "+
				"to the same URL); use one writer: section, or remove routing.tenant_urls")
		}
	}
}

// tenantURLs reads routing.tenant_urls: a mapping of tenant ("A" or "A:B")
// to a datasource_url. "A" and "A:0" are the same tenant and may not both
// be written. Keys are kept as written; tenantroute parses them.
func (c *checker) tenantURLs(path string, v value) map[string]string {
	if !v.set() {
		return nil
	}
	if v.node.Kind != yaml.MappingNode {
		c.errorf(path, `must be a mapping of tenants to datasource URLs, e.g. {"5:0": "http://vminsert-b:8480/"}; got %s`, describe(v.node))
		return nil
	}
	m := make(map[string]string, len(v.node.Content)/2)
	seen := map[string]string{}
	for i := 0; i+1 < len(v.node.Content); i += 2 {
		key, val := v.node.Content[i], v.node.Content[i+1]
		keyPath := joinPath(path, strconv.Quote(key.Value))
		if key.Kind != yaml.ScalarNode || val.Kind != yaml.ScalarNode {
			c.errorf(path, "each entry must be tenant: URL, got %s: %s", describe(key), describe(val))
			continue
		}
		// checkTenant also takes "" and "multitenant", which name no tenant here.
		if key.Value == "" || key.Value == Multitenant || checkTenant(key.Value) != nil {
			c.errorf(path, `%q is not a tenant; write "<accountID>" or "<accountID>:<projectID>" with numbers `+
				`0..4294967295, e.g. "5:0"`, key.Value)
			continue
		}
		norm := key.Value
		if !strings.Contains(norm, ":") {
			norm += ":0"
		}
		if other, dup := seen[norm]; dup {
			c.errorf(path, "%q and %q are the same tenant; keep one", other, key.Value)
			continue
		}
		seen[norm] = key.Value
		if err := checkDatasourceURL(val.Value); err != nil {
			c.errorf(keyPath, "%v", err)
			continue
		}
		m[key.Value] = val.Value
	}
	return m
}
