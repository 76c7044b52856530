package app

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/scoreproxy/scoreproxy/config"
	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// defaultLogEvery is how often a kind of refusal is logged at most.
const defaultLogEvery = 10 * time.Second

// The shape limits of scoreproxy_limit_rejections_total{limit}; the
// requests also count in scoreproxy_requests_rejected_total as
// invalid_series. The receiver counts its concurrency limit there too
// (remotewrite.ReasonConcurrency).
const (
	reasonTooManySeries = "too_many_series"
	reasonTooManyLabels = "too_many_labels"
	reasonLabelTooLong  = "label_too_long"
)

var limitRejections = map[string]*metrics.Counter{}

func init() {
	for _, r := range []string{reasonTooManySeries, reasonTooManyLabels, reasonLabelTooLong} {
		limitRejections[r] = metrics.GetOrCreateCounter(`scoreproxy_limit_rejections_total{limit="` + r + `"}`)
	}
}

// shapeLimit is a Processor that refuses, with 400, a request with too many
// series, a series with too many labels, or a label name or value too long,
// before it reaches the router. The check is per series, never per sample;
// a series the decoder found in the router's rewrite cache (Known != nil)
// passed it when it was first seen, since the cache is filled only by
// requests that got through here, and is skipped.
type shapeLimit struct {
	lim  config.RequestLimits
	next remotewrite.Processor
}

// Process implements remotewrite.Processor.
func (s *shapeLimit) Process(ctx context.Context, req *remotewrite.Request, pathTenant string) error {
	if err := checkShape(req, s.lim); err != nil {
		return err
	}
	return s.next.Process(ctx, req, pathTenant)
}

// checkShape applies the request-shape limits to a decoded request.
func checkShape(req *remotewrite.Request, lim config.RequestLimits) error {
	if n := len(req.Series); lim.MaxSeriesPerRequest > 0 && n > lim.MaxSeriesPerRequest {
		return shapeError(reasonTooManySeries, "request has %d series, more than limits.max_series_per_request (%d); "+
			"send smaller requests (Prometheus: queue_config.max_samples_per_send) or raise the limit", n, lim.MaxSeriesPerRequest)
	}
	short := shortLabelBytes(lim)
	for i := range req.Series {
		s := &req.Series[i]
		if s.Known != nil {
			continue
		}
		if lim.MaxLabelsPerSeries > 0 && len(s.Labels) > lim.MaxLabelsPerSeries {
			return checkLabels(s.Labels, lim)
		}
		// A series whose encoded labels, names and values together, are
		// no longer than both length limits cannot break either: that is
		// almost every series, checked without looking at its labels.
		if f := s.LabelFields(); f != nil && len(f) <= short {
			continue
		}
		if err := checkLabels(s.Labels, lim); err != nil {
			return err
		}
	}
	return nil
}

// shortLabelBytes is the encoded label size up to which no label of a
// series can exceed the name or value length limit.
func shortLabelBytes(lim config.RequestLimits) int {
	short := math.MaxInt
	if lim.MaxLabelNameLength > 0 {
		short = lim.MaxLabelNameLength
	}
	if lim.MaxLabelValueLength > 0 {
		short = min(short, lim.MaxLabelValueLength)
	}
	return short
}

// checkLabels applies the per-series limits to one series' labels.
func checkLabels(labels []remotewrite.Label, lim config.RequestLimits) error {
	if lim.MaxLabelsPerSeries > 0 && len(labels) > lim.MaxLabelsPerSeries {
		return shapeError(reasonTooManyLabels, "series %s has %d labels, more than limits.max_labels_per_series (%d)",
			seriesName(labels), len(labels), lim.MaxLabelsPerSeries)
	}
	for _, l := range labels {
		if lim.MaxLabelNameLength > 0 && len(l.Name) > lim.MaxLabelNameLength {
			return shapeError(reasonLabelTooLong, "label name %q (%d bytes) of series %s is longer than limits.max_label_name_length (%d)",
				cut(string(l.Name), 64), len(l.Name), seriesName(labels), lim.MaxLabelNameLength)
		}
		if lim.MaxLabelValueLength > 0 && len(l.Value) > lim.MaxLabelValueLength {
			return shapeError(reasonLabelTooLong, "value of label %q (%d bytes) of series %s is longer than limits.max_label_value_length (%d)",
				cut(string(l.Name), 64), len(l.Value), seriesName(labels), lim.MaxLabelValueLength)
		}
	}
	return nil
}

func shapeError(reason, format string, args ...any) error {
	limitRejections[reason].Inc()
	return &remotewrite.StatusError{Code: http.StatusBadRequest, Reason: remotewrite.ReasonInvalidSeries,
		Msg: fmt.Sprintf(format, args...)}
}

// seriesName renders a series for an error message, truncated, and with
// every value cut so that one huge value does not fill the message.
func seriesName(labels []remotewrite.Label) string {
	short := make([]remotewrite.Label, len(labels))
	for i, l := range labels {
		short[i] = remotewrite.Label{Name: []byte(cut(string(l.Name), 64)), Value: []byte(cut(string(l.Value), 64))}
	}
	return cut(remotewrite.FormatLabels(short), 256)
}

// cut shortens s to n bytes, marking the cut with "...".
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
