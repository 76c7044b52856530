package testenv

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
)

// PushResult is the answer to one remote-write request.
type PushResult struct {
	StatusCode int
	Body       string
}

// Push sends req to url as Prometheus remote write 1.0, the way a producer
// does: gogo-marshalled prompb.WriteRequest, snappy block format, and the
// spec's headers. An error means no HTTP answer was received.
func Push(ctx context.Context, url string, req *prompb.WriteRequest) (PushResult, error) {
	raw, err := req.Marshal()
	if err != nil {
		return PushResult{}, fmt.Errorf("marshal write request: %w", err)
	}
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(snappy.Encode(nil, raw)))
	if err != nil {
		return PushResult{}, err
	}
	httpReq.Header.Set("Content-Type", "application/x-protobuf")
	httpReq.Header.Set("Content-Encoding", "snappy")
	httpReq.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	httpReq.Header.Set("User-Agent", "scoreproxy-e2e")
	resp, err := http.DefaultClient.Do(httpReq)
	if err != nil {
		return PushResult{}, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return PushResult{StatusCode: resp.StatusCode, Body: string(body)}, nil
}

// Labels builds a sorted prompb label set from name=value pairs given as
// alternating strings: Labels("__name__", "up", "job", "x").
func Labels(kv ...string) []prompb.Label {
	if len(kv)%2 != 0 {
		panic("testenv.Labels: odd number of arguments")
	}
	out := make([]prompb.Label, 0, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		out = append(out, prompb.Label{Name: kv[i], Value: kv[i+1]})
	}
	sortLabels(out)
	return out
}

// LabelsFromMap builds a sorted prompb label set from m.
func LabelsFromMap(m map[string]string) []prompb.Label {
	out := make([]prompb.Label, 0, len(m))
	for k, v := range m {
		out = append(out, prompb.Label{Name: k, Value: v})
	}
	sortLabels(out)
	return out
}

func sortLabels(ls []prompb.Label) {
	sort.Slice(ls, func(i, j int) bool { return ls[i].Name < ls[j].Name })
}
