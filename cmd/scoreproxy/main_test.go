package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunExitCodes(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("writer:\n  datasource_url: http://x\n  tenant_id: abc\n"), 0o600)
	cases := []struct {
		args     []string
		wantCode int
		wantOut  string
	}{
		{[]string{"-help"}, 0, "-config"},
		{[]string{}, 2, "missing -config"},
		{[]string{"-config", bad}, 1, "writer.tenant_id"},
		{[]string{"-config", "/does/not/exist.yaml"}, 1, "exist.yaml"},
		{[]string{"-config", bad, "-log-level", "loud"}, 2, "-log-level"},
	}
	for _, tc := range cases {
		var out bytes.Buffer
		if code := run(context.Background(), tc.args, &out, &out); code != tc.wantCode || !strings.Contains(out.String(), tc.wantOut) {
			t.Errorf("%v: exit %d, output %q; want %d containing %q", tc.args, code, out.String(), tc.wantCode, tc.wantOut)
		}
	}
}
