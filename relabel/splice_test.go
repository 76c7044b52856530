package relabel

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// checkAppendFields checks AppendFields against Apply for src: the same
// labels but those named in omit, encoded as remotewrite.AppendLabelFields
// encodes Apply's output, appended after what dst held; or, when it
// declines, dst unchanged and a label in src that its canonical encoding
// cannot carry. It returns whether AppendFields took src.
func checkAppendFields(t *testing.T, fm *Format, src []remotewrite.Label, omit ...string) bool {
	t.Helper()
	fields := remotewrite.AppendLabelFields(nil, src)
	prefix := []byte("prefix")
	got, ok := fm.AppendFields(bytes.Clone(prefix), src, fields, omit...)
	if !bytes.HasPrefix(got, prefix) {
		t.Fatalf("AppendFields changed what dst held: %q", got)
	}
	if !ok {
		if len(got) != len(prefix) {
			t.Fatalf("AppendFields declined %s but appended %q", remotewrite.FormatLabels(src), got[len(prefix):])
		}
		for _, l := range src {
			if len(l.Value) == 0 || len(l.Name)+len(l.Value)+4 > 127 {
				return false
			}
		}
		t.Fatalf("AppendFields declined %s, whose fields are canonical", remotewrite.FormatLabels(src))
	}
	out, _ := fm.Apply(nil, nil, src, nil)
	out = slices.DeleteFunc(out, func(l remotewrite.Label) bool { return slices.Contains(omit, string(l.Name)) })
	if want := remotewrite.AppendLabelFields(nil, out); !bytes.Equal(got[len(prefix):], want) {
		t.Fatalf("AppendFields of %s:\n got %s\nwant %s", remotewrite.FormatLabels(src),
			remotewrite.FormatLabels(remotewrite.AppendLabels(nil, got[len(prefix):])), remotewrite.FormatLabels(out))
	}
	return true
}

func TestAppendFieldsMatchesApply(t *testing.T) {
	long := strings.Repeat("v", 70)
	tenantLabels := []string{"vm_account_id", "vm_project_id"}
	cases := []struct {
		name, format, series string
		wantTaken            bool
		omit                 []string
	}{
		{"seed", "__name__=vmanomaly_$VAR\nfor=$QUERY_KEY\nrun=test_metric_format\nconfig=io_vm_single.yaml",
			"__name__=anomaly_score\ncpu=1\nfor=q1\ninstance=a:9100\njob=node\nzone=z", true, nil},
		{"format labels before, between and after", "A=first\nm=mid\nzz=last\n__name__=x_$VAR", "__name__=y\nb=1\nn=2", true, nil},
		{"format replaces every label", "__name__=x_$VAR\nb=new", "__name__=y\nb=old", true, nil},
		{"template renders empty in place of a series label: both left out", "__name__=x_$VAR\njob=$QUERY_KEY", "__name__=y\njob=a", true, nil},
		{"empty query key renders nothing", "__name__=x_$VAR\nfor=$QUERY_KEY\nq=$QUERY_KEY", "__name__=y\njob=a", true, nil},
		{"long format value", "__name__=x_$VAR\nlong=" + long + "$VAR", "__name__=" + long + "\njob=a", true, nil},
		{"series label too long to copy", "__name__=x_$VAR", "__name__=y\njob=" + long + long, false, nil},
		{"series label with an empty value", "__name__=x_$VAR", "__name__=y\njob=", false, nil},
		{"no series labels", "__name__=x_$VAR\nrun=r", "", true, nil},
		{"tenant labels omitted", "__name__=x_$VAR\nrun=r", "__name__=y\na=1\nvm_account_id=2\nvm_project_id=3\nz=4", true, tenantLabels},
		{"tenant labels omitted, last", "__name__=x_$VAR", "__name__=y\nvm_account_id=2\nvm_project_id=3", true, tenantLabels},
		{"format label omitted", "__name__=x_$VAR\nvm_account_id=7", "__name__=y\nvm_account_id=2", true, tenantLabels},
		{"identity, tenant labels omitted", "", "__name__=y\nvm_account_id=2\nzone=a", true, tenantLabels},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, fm, err := compileLines(tc.format, "")
			if err != nil {
				t.Fatal(err)
			}
			if taken := checkAppendFields(t, fm, pairs(tc.series), tc.omit...); taken != tc.wantTaken {
				t.Errorf("AppendFields took the series: %v, want %v", taken, tc.wantTaken)
			}
		})
	}
}

// FuzzFormatAppendFields checks AppendFields against Apply on arbitrary
// formats and series (as FuzzFormatApply's "name=value" lines).
func FuzzFormatAppendFields(f *testing.F) {
	f.Add("__name__=vmanomaly_$VAR\nfor=$QUERY_KEY\nrun=test", "__name__=anomaly_score\nfor=q1\ninstance=a:9100", "for")
	f.Add("__name__=$VAR$VAR$QUERY_KEY$", "__name__=y\nquery=$VAR", "query")
	f.Add("__name__=x_$VAR\njob=", "__name__=yhat\njob=node", "for")
	f.Fuzz(func(t *testing.T, format, series, queryKey string) {
		_, fm, err := compileLines(format, queryKey)
		if err != nil {
			return
		}
		src := pairs(series)
		checkAppendFields(t, fm, src)
		// Omitting the tenant labels, as SplitMode does, and the query key.
		checkAppendFields(t, fm, src, "vm_account_id", "vm_project_id", queryKey)
	})
}

func TestFormatDefines(t *testing.T) {
	fm, err := Compile(map[string]string{"__name__": "x_$VAR", "vm_account_id": "7"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if !fm.Defines("vm_account_id") || fm.Defines("vm_project_id") {
		t.Errorf("Defines: vm_account_id %v, vm_project_id %v; want true, false", fm.Defines("vm_account_id"), fm.Defines("vm_project_id"))
	}
}

// BenchmarkAppendFields is the spliced metric_format of benchInput's
// series, against BenchmarkApply's Label path.
func BenchmarkAppendFields(b *testing.B) {
	format, src, _ := benchInput(b)
	fields := remotewrite.AppendLabelFields(nil, src)
	dst := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		var ok bool
		if dst, ok = format.AppendFields(dst[:0], src, fields); !ok {
			b.Fatal("declined")
		}
	}
}
