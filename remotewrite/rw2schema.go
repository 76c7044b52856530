package remotewrite

// Remote Write 2.0 (io.prometheus.write.v2.Request, prompb/io/prometheus/write/v2
// of Prometheus v0.316.0): field numbers and the schemas gogo's writev2
// Unmarshal checks wire types against (see schema.go for how they are used).

// Content types of the two remote-write messages.
const (
	// ContentTypeRW1 is the remote write 1.0 content type with its proto
	// parameter; a bare application/x-protobuf means the same.
	ContentTypeRW1 = "application/x-protobuf;proto=prometheus.WriteRequest"
	// ContentTypeRW2 is the content type of a remote write 2.0 request.
	ContentTypeRW2 = "application/x-protobuf;proto=io.prometheus.write.v2.Request"

	protoRW1 = "prometheus.WriteRequest"
	protoRW2 = "io.prometheus.write.v2.Request"
)

// Response headers the 2.0 spec requires a receiver to send, with what it wrote.
const (
	HeaderSamplesWritten    = "X-Prometheus-Remote-Write-Samples-Written"
	HeaderHistogramsWritten = "X-Prometheus-Remote-Write-Histograms-Written"
	HeaderExemplarsWritten  = "X-Prometheus-Remote-Write-Exemplars-Written"
)

// Field numbers of writev2.
const (
	fieldRW2Symbols    = 4
	fieldRW2Timeseries = 5

	fieldRW2SeriesLabelsRefs = 1
	fieldRW2SeriesSamples    = 2
	fieldRW2SeriesHistograms = 3
	fieldRW2SeriesExemplars  = 4
	fieldRW2SeriesMetadata   = 5

	fieldRW2ExemplarLabelsRefs = 1

	fieldRW2MetadataType    = 1
	fieldRW2MetadataHelpRef = 3
	fieldRW2MetadataUnitRef = 4

	// fieldRW2HistogramStartTimestamp is the one histogram field RW1 lacks;
	// fields 1 to 16 are the same in both versions.
	fieldRW2HistogramStartTimestamp = 17
)

// Tags of the RW1 fields the transcoder writes besides those in encode.go.
const (
	tagSeriesSamples    = fieldSeriesSamples<<3 | wireBytes
	tagSeriesExemplars  = fieldSeriesExemplars<<3 | wireBytes
	tagSeriesHistograms = fieldSeriesHistograms<<3 | wireBytes
	tagExemplarLabels   = 1<<3 | wireBytes
	tagMetadataType     = 1<<3 | wireVarint
	tagMetadataFamily   = 2<<3 | wireBytes
	tagMetadataHelp     = 4<<3 | wireBytes
	tagMetadataUnit     = 5<<3 | wireBytes
)

// Schemas of writev2's types.proto. Reserved field numbers (Request 1-3,
// TimeSeries 6) are unknown fields to gogo and skipped.
var (
	rw2SampleSchema = msgSchema{name: "sample", fields: []fieldRule{1: fixed64Rule, 2: varintRule, 3: varintRule}}
	// rw2ExemplarSchema: labels_refs, value, timestamp.
	rw2ExemplarSchema = msgSchema{name: "exemplar", fields: []fieldRule{
		1: repeatedVarintRule, 2: fixed64Rule, 3: varintRule}}
	// rw2MetadataSchema: type, help_ref, unit_ref (2 is unused).
	rw2MetadataSchema = msgSchema{name: "metadata", fields: []fieldRule{
		1: varintRule, 3: varintRule, 4: varintRule}}
	// rw2HistogramSchema is RW1's histogram (fields 1 to 16) plus
	// start_timestamp (17).
	rw2HistogramSchema = msgSchema{name: "histogram", fields: append(append([]fieldRule(nil),
		histogramSchema.fields[:fieldRW2HistogramStartTimestamp]...), varintRule)}
	// rw2SeriesSchema: labels_refs, samples, histograms, exemplars, metadata.
	rw2SeriesSchema = msgSchema{name: "timeseries", fields: []fieldRule{
		1: repeatedVarintRule,
		2: {kind: kindMessage, msg: &rw2SampleSchema},
		3: {kind: kindMessage, msg: &rw2HistogramSchema},
		4: {kind: kindMessage, msg: &rw2ExemplarSchema},
		5: {kind: kindMessage, msg: &rw2MetadataSchema}}}
)
