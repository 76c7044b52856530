package tenantroute

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/scoreproxy/scoreproxy/remotewrite"
)

func TestParseTenant(t *testing.T) {
	cases := []struct {
		in      string
		want    Tenant
		wantErr bool
	}{
		{"0", Tenant{0, 0}, false},
		{"5", Tenant{5, 0}, false},
		{"5:1", Tenant{5, 1}, false},
		{"4294967295:4294967295", Tenant{4294967295, 4294967295}, false},
		{"4294967296", Tenant{}, true},
		{"5:4294967296", Tenant{}, true},
		{"-1", Tenant{}, true},
		{"abc", Tenant{}, true},
		{"5:", Tenant{}, true},
		{":5", Tenant{}, true},
		{"", Tenant{}, true},
		{"5:1:2", Tenant{}, true},
		{"multitenant", Tenant{}, true},
	}
	for _, tc := range cases {
		got, err := ParseTenant(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseTenant(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), `"<accountID>:<projectID>"`) {
			t.Errorf("ParseTenant(%q) error %q does not say what to write", tc.in, err)
		}
	}
	if s := (Tenant{5, 1}).String(); s != "5:1" {
		t.Errorf("String() = %q", s)
	}
}

// TestParseLabelID pins vminsert's reading of tenant labels: base-10 uint32,
// anything else is 0 and reported as invalid.
func TestParseLabelID(t *testing.T) {
	cases := []struct {
		in     string
		want   uint32
		wantOK bool
	}{
		{"0", 0, true}, {"42", 42, true}, {"007", 7, true}, {"4294967295", 4294967295, true},
		{"4294967296", 0, false}, {"99999999999", 0, false}, {"", 0, false}, {"-1", 0, false},
		{"+1", 0, false}, {"1.0", 0, false}, {"abc", 0, false}, {" 1", 0, false},
		{"0000000000005", 5, true}, {"000000000004294967295", 4294967295, true}, {"1_000", 0, false},
	}
	for _, tc := range cases {
		got, ok := parseLabelID([]byte(tc.in))
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("parseLabelID(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.wantOK)
		}
		// vminsert reads the labels with strconv.ParseUint(v, 10, 32).
		ref, err := strconv.ParseUint(tc.in, 10, 32)
		if err != nil {
			ref = 0 // and vminsert uses 0
		}
		if uint64(got) != ref || ok != (err == nil) {
			t.Errorf("parseLabelID(%q) = %d, %v; strconv.ParseUint says %d, %v", tc.in, got, ok, ref, err)
		}
	}
}

// TestWarningsAreRateLimitedButAllCounted: a flood of series without tenant
// labels logs a handful of lines naming the series, and counts every one.
func TestWarningsAreRateLimitedButAllCounted(t *testing.T) {
	var logs bytes.Buffer
	r := newTestRouter(t, Options{BaseURL: base, TenantID: "multitenant", Logger: slog.New(slog.NewTextHandler(&logs, nil))}, nil, newRecorder())
	var wr prompb.WriteRequest
	for i := 0; i < 1000; i++ {
		wr.Timeseries = append(wr.Timeseries, ts("__name__", "y", "for", fmt.Sprint("q", i)))
	}
	before := warningsByCase[caseMissingAccount].Get()
	if err := r.Process(context.Background(), decoded(t, &wr), ""); err != nil {
		t.Fatal(err)
	}
	if got := warningsByCase[caseMissingAccount].Get() - before; got != 1000 {
		t.Errorf("counted %d case-3 warnings, want 1000", got)
	}
	lines := strings.Count(logs.String(), "\n")
	if lines == 0 || lines > 10 {
		t.Errorf("logged %d lines, want 1..10", lines)
	}
	if !strings.Contains(logs.String(), "The label `vm_account_id` was not found in the label set of y{for=") {
		t.Errorf("log does not carry the writer docs' case-3 text with the series: %s", logs.String())
	}
}

func TestFindTenantLabels(t *testing.T) {
	cases := []struct {
		labels                 []string
		account, project       string
		hasAccount, hasProject bool
	}{
		{[]string{"__name__", "y", "job", "a"}, "", "", false, false},
		{[]string{"__name__", "y", "vm_account_id", "1", "vm_project_id", "2"}, "1", "2", true, true},
		{[]string{"__name__", "y", "vm_account_id", "1", "zone", "z"}, "1", "", true, false},
		{[]string{"__name__", "y", "vm_project_id", "2", "zone", "z"}, "", "2", false, true},
		{[]string{"vm_account_id", "", "vm_project_id", ""}, "", "", true, true},
		{[]string{"a", "1", "vm_account_idx", "3", "vm_b", "4"}, "", "", false, false},
	}
	for _, tc := range cases {
		var labels []remotewrite.Label
		for i := 0; i < len(tc.labels); i += 2 {
			labels = append(labels, remotewrite.Label{Name: []byte(tc.labels[i]), Value: []byte(tc.labels[i+1])})
		}
		a, ha, p, hp := findTenantLabels(labels)
		if string(a) != tc.account || ha != tc.hasAccount || string(p) != tc.project || hp != tc.hasProject {
			t.Errorf("%v: got %q %v %q %v", tc.labels, a, ha, p, hp)
		}
	}
}

// TestCachedWarningsRaisedAgain: a series that raised a tenant warning is
// cached with it (the decoder skips its labels the next time), and every
// later occurrence raises it again: counted each time, and logged with the
// same text, the occurrences beyond the first of a request counted as
// suppressed.
func TestCachedWarningsRaisedAgain(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   Options
		format map[string]string
		series prompb.TimeSeries
		kind   string
		text   string
	}{
		{"multitenant, no account", Options{TenantID: Multitenant}, nil, ts("__name__", "y", "for", "q"),
			caseMissingAccount, "The label `vm_account_id` was not found in the label set of y{for=\"q\"}, " +
				"but tenant_id='multitenant' is set in writer. The data will be written to the default tenant 0:0. "},
		{"multitenant, project only", Options{TenantID: Multitenant}, nil, ts("__name__", "y", "vm_project_id", "9"),
			caseMissingAccount, "The data will be written to tenant 0:9 (the default account 0 with the series' vm_project_id). "},
		{"split, project only", Options{TenantID: Multitenant, SplitTenants: true}, nil, ts("__name__", "y", "vm_project_id", "9"),
			caseMissingAccount, "The data will be written to tenant 0:9 "},
		{"multitenant, no account, metric_format", Options{TenantID: Multitenant}, seedFormat, ts("__name__", "y", "for", "q"),
			caseMissingAccount, "The label `vm_account_id` was not found in the label set of y{for=\"q\"}"},
		{"multitenant, invalid account", Options{TenantID: Multitenant}, nil, ts("__name__", "y", "vm_account_id", "x"),
			caseInvalidTenant, `The label vm_account_id="x" of y{vm_account_id="x"} is not a valid tenant number`},
		{"split, invalid project", Options{TenantID: Multitenant, SplitTenants: true}, seedFormat,
			ts("__name__", "y", "vm_account_id", "3", "vm_project_id", "-1"),
			caseInvalidTenant, `The label vm_project_id="-1" of y{vm_account_id="3",vm_project_id="-1"} is not a valid tenant number (0..4294967295); vminsert would treat it as 0, so the data will be written to tenant 3:0`},
		{"fixed tenant, tenant labels", Options{TenantID: "5"}, seedFormat, ts("__name__", "y", "vm_account_id", "3"),
			caseTenantLabels, `The label set for the metric y{vm_account_id="3"} contains multi-tenancy labels`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			tc.opts.BaseURL, tc.opts.Logger = base, slog.New(slog.NewTextHandler(&logs, nil))
			r := newTestRouter(t, tc.opts, tc.format, newRecorder())
			raw, err := (&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{tc.series, tc.series, tc.series}}).Marshal()
			if err != nil {
				t.Fatal(err)
			}
			before := warningsByCase[tc.kind].Get()
			for round := range 3 {
				var req remotewrite.Request
				if err := remotewrite.DecodeWriteRequestKnown(raw, &req, r); err != nil {
					t.Fatal(err)
				}
				req.Compressed = snappy.Encode(nil, raw)
				if known := req.Series[2].Known != nil; known != (round > 0) {
					t.Errorf("round %d: the series is known = %v, want %v", round, known, round > 0)
				}
				if err := r.Process(context.Background(), &req, ""); err != nil {
					t.Fatal(err)
				}
			}
			if got := warningsByCase[tc.kind].Get() - before; got != 9 {
				t.Errorf("counted %d warnings of case %s, want 9 (3 series x 3 requests)", got, tc.kind)
			}
			// The text handler escapes the quotes of the message.
			lines := strings.Split(strings.TrimSpace(strings.ReplaceAll(logs.String(), `\"`, `"`)), "\n")
			// Round 0 logs each of its 3 misses; rounds 1 and 2 log once each.
			if len(lines) != 5 {
				t.Fatalf("logged %d lines, want 5:\n%s", len(lines), logs.String())
			}
			for i, line := range lines {
				if !strings.Contains(line, tc.text) {
					t.Errorf("line %d does not carry %q: %s", i, tc.text, line)
				}
			}
			if !strings.Contains(lines[4], "suppressed_since_last=2") {
				t.Errorf("the last line should count the 2 repeats of the request before as suppressed: %s", lines[4])
			}
		})
	}
}
