// Package relabel rewrites the labels of one series the way vmanomaly's writer
// names its outputs: a compiled metric_format turns an incoming model output
// such as {__name__="anomaly_score", for="q1"} into {__name__="vmanomaly_anomaly_score", for="q1", ...}.
//
// It sits between remotewrite (which decodes series) and tenantroute (which
// routes them) and knows nothing about I/O or tenants: Apply is a pure,
// allocation-free merge of sorted label lists, safe to call from many requests at once.
//
// It also holds the other per-series label steps around metric_format:
// Rules (Prometheus relabel_configs, run with Prometheus' model/relabel;
// allocates, so callers cache its outcome per label set) and Selector (a
// PromQL series selector, routing.format_match, matched without allocating).
package relabel
