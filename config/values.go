package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// The parsers below turn one written value into its Go value. Their errors
// say what is wrong and what to write instead, without the key path, which
// the checker adds.

// parseDuration accepts a Go duration string ("5s", "1m30s") or a bare
// number of seconds (5, 2.5, "5"): vmanomaly passes timeouts as "5s" strings,
// and a bare number is what a Python user would expect.
func parseDuration(n *yaml.Node) (time.Duration, error) {
	if n.ShortTag() == "!!str" {
		if d, err := time.ParseDuration(n.Value); err == nil {
			return d, nil
		}
	}
	secs, err := strconv.ParseFloat(n.Value, 64)
	if err == nil && n.ShortTag() != "!!bool" && math.Abs(secs) < math.MaxInt64/float64(time.Second) {
		return time.Duration(secs * float64(time.Second)), nil
	}
	return 0, fmt.Errorf(`%q is not a duration; write a Go duration such as "5s", "1m30s" or "500ms", or a number of seconds such as 5 or 2.5`, n.Value)
}

var byteSizeRE = regexp.MustCompile(`^(\d+)\s*([a-zA-Z]*)$`)

// byteUnits are the size suffixes, lower-cased: decimal KB/MB/GB and binary KiB/MiB/GiB.
var byteUnits = map[string]int64{
	"": 1, "b": 1,
	"kb": 1000, "mb": 1000 * 1000, "gb": 1000 * 1000 * 1000,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30,
}

// parseByteSize accepts a number of bytes or a number with a unit suffix
// (case-insensitive, optional space): 33554432, "32MiB", "32 MB".
func parseByteSize(n *yaml.Node) (int64, error) {
	m := byteSizeRE.FindStringSubmatch(strings.TrimSpace(n.Value))
	unit, known := int64(0), false
	if m != nil {
		unit, known = byteUnits[strings.ToLower(m[2])]
	}
	if !known {
		return 0, fmt.Errorf(`%q is not a size; write a number of bytes (33554432) or a number with KB, MB, GB (powers of 1000) or KiB, MiB, GiB (powers of 1024), e.g. "32MiB"`, n.Value)
	}
	count, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil || count > math.MaxInt64/unit {
		return 0, fmt.Errorf("%q is too large", n.Value)
	}
	return count * unit, nil
}

// parseBool accepts YAML booleans and the strings "true"/"false" in any case,
// since Python configs often write True/False or quote them.
func parseBool(n *yaml.Node) (bool, error) {
	switch {
	case strings.EqualFold(n.Value, "true"):
		return true, nil
	case strings.EqualFold(n.Value, "false"):
		return false, nil
	}
	return false, fmt.Errorf("%q is not true or false", n.Value)
}

// parseVerifyTLS reads vmanomaly's verify_tls: false skips verification, true
// uses the system CAs, and anything else is the path of a CA bundle, which
// must exist.
func parseVerifyTLS(n *yaml.Node) (verify bool, caFile string, err error) {
	if b, err := parseBool(n); err == nil {
		return b, "", nil
	}
	if err := checkFile(n.Value); err != nil {
		return false, "", fmt.Errorf("%q is neither true/false nor a CA bundle file (%v); write false to skip verification, "+
			"true to use the system CAs, or the path of a PEM CA bundle", n.Value, err)
	}
	return true, n.Value, nil
}

// checkClass accepts the class names vmanomaly gives its VmWriter.
func checkClass(s string) error {
	switch s {
	case "", "vm", "writer.vm.VmWriter":
		return nil
	}
	return fmt.Errorf(`%q is not supported; write "vm" (or "writer.vm.VmWriter"), or leave it out`, s)
}

// checkTenant accepts what tenant_id may be: "", "<accountID>",
// "<accountID>:<projectID>" (each a uint32) or "multitenant". It is a local
// copy of the rule so that config does not depend on tenantroute.
func checkTenant(s string) error {
	if s == "" || s == Multitenant {
		return nil
	}
	account, project, hasProject := strings.Cut(s, ":")
	_, errA := strconv.ParseUint(account, 10, 32)
	var errP error
	if hasProject {
		_, errP = strconv.ParseUint(project, 10, 32)
	}
	if errA != nil || errP != nil {
		return fmt.Errorf(`%q is not a tenant; write "<accountID>" or "<accountID>:<projectID>" with numbers 0..4294967295 (e.g. "0:0"), or "multitenant"`, s)
	}
	return nil
}

// checkDatasourceURL requires an absolute http(s) URL without query or
// fragment, because write paths are appended to it.
func checkDatasourceURL(s string) error {
	if s == "" {
		return errors.New(`missing; write the VictoriaMetrics URL, e.g. "http://localhost:8428/" ` +
			`(single node) or "http://localhost:8480/" (vminsert)`)
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf(`%q is not an absolute http(s) URL; write e.g. "http://localhost:8428/" (single node) or "http://localhost:8480/" (vminsert)`, s)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q has a query or fragment; write only scheme, host and an optional path prefix, since write paths are appended to it", s)
	}
	return nil
}

// checkHealthPath accepts a path, or an absolute http(s) URL when it has a scheme.
func checkHealthPath(s string) error {
	if !strings.Contains(s, "://") {
		return nil
	}
	if u, err := url.Parse(s); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf(`%q is neither a path nor an absolute http(s) URL; write e.g. "/health" or "http://localhost:8428/health"`, s)
	}
	return nil
}

// checkListen requires host:port with a numeric port.
func checkListen(s string) error {
	_, port, err := net.SplitHostPort(s)
	if err == nil {
		_, err = strconv.ParseUint(port, 10, 16)
	}
	if err != nil {
		return fmt.Errorf(`%q is not host:port; write e.g. "127.0.0.1:8490", or ":8490" for all interfaces`, s)
	}
	return nil
}

// checkFile requires path to name an existing file, so that a typo shows at
// start-up rather than at the first upstream request.
func checkFile(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if st.IsDir() {
		return errors.New(path + " is a directory, not a file")
	}
	return nil
}

// describe names a node for an error message: `!!str "abc"`, "a mapping", "a list".
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return fmt.Sprintf("%s %q", n.ShortTag(), n.Value)
}

// checkOutput accepts writer.output.
func checkOutput(s string) error {
	if s == OutputRemoteWrite || s == OutputImportJSON {
		return nil
	}
	return fmt.Errorf("%q is not an output; write remote_write (the default: Prometheus remote write) "+
		"or import_json (VictoriaMetrics JSON lines to import_json_path, as vmanomaly writes)", s)
}

// checkCompression accepts writer.compression (a local copy of
// remotewrite.ParseCompression's rule, so that config does not depend on it).
func checkCompression(s string) error {
	switch s {
	case CompressionSnappy, "auto", "zstd":
		return nil
	}
	return fmt.Errorf("%q is not a compression; write snappy (the default), auto (zstd where the upstream "+
		"says it supports the VictoriaMetrics protocol) or zstd (zstd, snappy where the upstream rejects it)", s)
}

// checkImportPath accepts an import_json_path usable by the import_json
// output: a path such as /api/v1/import (a local copy of
// remotewrite.CheckImportPath's rule).
func checkImportPath(p string) error {
	switch {
	case strings.Contains(p, "://"):
		return fmt.Errorf("%q is not a path; it is appended to the tenant's URL, write e.g. /api/v1/import", p)
	case !strings.HasPrefix(p, "/"):
		return fmt.Errorf("%q must start with /, e.g. /api/v1/import", p)
	case strings.ContainsAny(p, "?#"):
		return fmt.Errorf("%q must be a plain path, without ? or #", p)
	}
	return nil
}
