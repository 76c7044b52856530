package remotewrite

import (
	"bytes"
	"fmt"
)

// RW2Transcoder turns a Remote Write 2.0 request (io.prometheus.write.v2.Request)
// into the bytes of the equivalent RW1 prompb.WriteRequest, which the proxy
// then decodes with DecodeWriteRequest like any RW1 body: metric_format,
// relabelling and tenant routing see no difference, and VictoriaMetrics,
// which does not accept RW2, gets RW1.
//
// It streams over the body without decoding into writev2 structs: symbols
// stay sub-slices of the body, and a warm transcoder (reused across
// requests) does not allocate. What RW1 can carry is kept exactly: labels
// (resolved from the symbols table and sorted), samples, native histograms
// (custom_values included), exemplars with their labels, and per-series
// metadata, which becomes a WriteRequest.metadata entry whose
// metric_family_name is the series' __name__ (consecutive duplicates are
// written once). What RW1 cannot carry is dropped: start (created)
// timestamps of samples and histograms, and unknown fields.
//
// The zero value is ready to use; a transcoder is not safe for concurrent use.
type RW2Transcoder struct {
	symbols [][]byte // Request.symbols, sub-slices of the body
	refs    []uint32 // one series' labels_refs
	exRefs  []uint32 // one exemplar's labels_refs
	labels  []Label  // one series' labels
	rest    []byte   // one series' RW1 samples, exemplars and histograms
	ex      []byte   // one RW1 exemplar
	meta    []byte   // the RW1 WriteRequest.metadata fields
	last    rw2Meta  // the metadata last written to meta, to skip repeats
	limit   int      // bound on the RW1 output (limits.max_decoded_bytes)
	// hold, when set, is the request's byte budget, asked before the output
	// and the scratch buffers grow (per series, exemplar and metadata
	// entry, never per sample): a small body that references large symbols
	// many times is refused before it takes the memory.
	hold *hold
}

// capacity is the memory of the scratch buffers that grow with the output.
func (t *RW2Transcoder) capacity() int { return cap(t.rest) + cap(t.ex) + cap(t.meta) }

// room returns b with room for n more bytes, reserved in the budget.
func (t *RW2Transcoder) room(b []byte, n int) ([]byte, error) {
	if len(b)+n <= cap(b) {
		return b, nil
	}
	return t.hold.room(b, n, t.limit)
}

// rw2Meta is one series' metadata: the references as received, then the
// strings they resolve to and the series name.
type rw2Meta struct {
	typ              int32
	helpRef, unitRef uint32
	name, help, unit []byte
}

func (m *rw2Meta) equal(o *rw2Meta) bool {
	return m.typ == o.typ && bytes.Equal(m.name, o.name) && bytes.Equal(m.help, o.help) && bytes.Equal(m.unit, o.unit)
}

// ReasonInvalidSymbols is the rejection reason of an RW2 request whose
// symbols table does not start with the empty string.
const ReasonInvalidSymbols = "invalid_symbols"

func badRW2(format string, args ...any) error {
	return &DecodeError{Reason: ReasonBadProtobuf,
		Msg: "invalid protobuf io.prometheus.write.v2.Request: " + fmt.Sprintf(format, args...)}
}

// Transcode appends to dst the RW1 WriteRequest equivalent to the RW2
// request body and returns it. It accepts exactly the bodies gogo's writev2
// Unmarshal accepts (others: ReasonBadProtobuf), then applies the 2.0
// spec's rules and rejects the whole request (ReasonInvalidSeries, naming
// the first offending series, or ReasonInvalidSymbols) when one is broken:
// symbols[0] must be "", label and exemplar references come in pairs inside
// the symbols table, the labels (sorted here when they are not) have
// non-empty unique names and a non-empty __name__, every series has a
// sample or a histogram, and metadata references are in the table. An
// output that would exceed maxBytes fails with 413 before it is built
// (a small RW2 body can reference one large symbol many times).
func (t *RW2Transcoder) Transcode(dst, body []byte, maxBytes int) ([]byte, error) {
	t.reset(maxBytes)
	defer t.release()
	if _, err := t.readSymbols(body); err != nil {
		return dst, err
	}
	if len(t.symbols) > 0 && len(t.symbols[0]) > 0 {
		return dst, &DecodeError{Reason: ReasonInvalidSymbols, Msg: fmt.Sprintf(
			"invalid remote write 2.0 request: symbols[0] must be the empty string, got %q", truncate(t.symbols[0]))}
	}
	index := 0
	for i := 0; i < len(body); {
		f, next, _ := readField(body, i) // validated by readSymbols
		if f.num == fieldRW2Timeseries {
			var err error
			if dst, err = t.series(dst, index, f.bytes); err != nil {
				return dst, err
			}
			index++
		}
		i = next
	}
	if len(dst)+len(t.meta) > t.limit {
		return dst, t.tooLarge()
	}
	dst, err := t.room(dst, len(t.meta))
	if err != nil {
		return dst, err
	}
	return append(dst, t.meta...), nil
}

func (t *RW2Transcoder) reset(limit int) {
	t.symbols = t.symbols[:0]
	t.meta = t.meta[:0]
	t.last = rw2Meta{}
	t.limit = limit
}

// release drops the references into the body so that it can be collected.
func (t *RW2Transcoder) release() {
	clear(t.symbols)
	t.symbols = t.symbols[:0]
	clear(t.labels)
	t.labels = t.labels[:0]
	t.last = rw2Meta{}
}

func (t *RW2Transcoder) tooLarge() error {
	return tooLarge("remote write 2.0 request expands to more than limits.max_decoded_bytes (%d) as remote write 1.0", t.limit)
}

// readSymbols checks the whole body the way gogo's writev2 Unmarshal does,
// collects the symbols table and counts the timeseries.
func (t *RW2Transcoder) readSymbols(body []byte) (series int, err error) {
	for i := 0; i < len(body); {
		f, next, err := readField(body, i)
		if err != nil {
			return series, badRW2("at byte %d: %v", i, err)
		}
		switch {
		case f.num == fieldRW2Symbols && f.wire == wireBytes:
			t.symbols = append(t.symbols, f.bytes)
		case f.num == fieldRW2Timeseries && f.wire == wireBytes:
			if err := checkMessage(f.bytes, &rw2SeriesSchema); err != nil {
				return series, badRW2("timeseries #%d: %v", series, err)
			}
			series++
		case f.num == fieldRW2Symbols || f.num == fieldRW2Timeseries:
			return series, badRW2("field %d has wire type %d, want length-delimited", f.num, f.wire)
		}
		i = next
	}
	return series, nil
}

// shape reads body as an RW2 request and returns its numbers of symbols and
// timeseries; ok is false when writev2 would not unmarshal it.
func (t *RW2Transcoder) shape(body []byte) (symbols, series int, ok bool) {
	t.reset(0)
	defer t.release()
	series, err := t.readSymbols(body)
	return len(t.symbols), series, err == nil
}

// series transcodes one validated TimeSeries message b and appends it to dst.
func (t *RW2Transcoder) series(dst []byte, index int, b []byte) ([]byte, error) {
	t.refs = t.refs[:0]
	var err error
	// Samples and histograms take at most their RW2 bytes; exemplars ask
	// for their own room.
	if t.rest, err = t.room(t.rest[:0], len(b)); err != nil {
		return dst, err
	}
	var md rw2Meta
	points := 0 // samples and histograms
	for i := 0; i < len(b); {
		f, next := nextField(b, i, &rw2SeriesSchema)
		var err error
		switch f.num {
		case fieldRW2SeriesLabelsRefs:
			t.refs = appendRefs(t.refs, b, i, f)
		case fieldRW2SeriesSamples:
			points++
			t.rest = appendKept(t.rest, tagSeriesSamples, f.bytes, &sampleSchema)
		case fieldRW2SeriesHistograms:
			points++
			t.rest = appendKept(t.rest, tagSeriesHistograms, f.bytes, &histogramSchema)
		case fieldRW2SeriesExemplars:
			err = t.exemplar(index, f.bytes)
		case fieldRW2SeriesMetadata:
			md.merge(f.bytes)
		}
		if err != nil {
			return dst, err
		}
		i = next
	}
	if err := t.seriesLabels(index); err != nil {
		return dst, err
	}
	if points == 0 {
		return dst, invalidSeries(index, t.labels, "no samples and no histograms: a remote write 2.0 series needs at least one")
	}
	if err := t.metadata(index, &md); err != nil {
		return dst, err
	}
	size := len(t.rest)
	for _, l := range t.labels {
		size += bytesFieldLen(labelLen(l))
	}
	if len(dst)+bytesFieldLen(size)+len(t.meta) > t.limit {
		return dst, t.tooLarge()
	}
	if dst, err = t.room(dst, bytesFieldLen(size)); err != nil {
		return dst, err
	}
	dst = append(dst, tagWriteTimeseries)
	dst = appendVarint(dst, uint64(size))
	dst = AppendLabelFields(dst, t.labels)
	return append(dst, t.rest...), nil
}

// seriesLabels resolves t.refs into t.labels, sorts them by name, and checks
// them as DecodeWriteRequest checks RW1 labels.
func (t *RW2Transcoder) seriesLabels(index int) error {
	clear(t.labels)
	t.labels = t.labels[:0]
	if len(t.refs)%2 != 0 {
		return invalidSeries(index, nil, "labels_refs has an odd length (%d): it must hold name/value pairs", len(t.refs))
	}
	for j := 0; j < len(t.refs); j += 2 {
		n, v := t.refs[j], t.refs[j+1]
		if int64(n) >= int64(len(t.symbols)) || int64(v) >= int64(len(t.symbols)) {
			return invalidSeries(index, t.labels, "labels_refs %d (name) = %d (value) outside of the symbols table (%d symbols)", n, v, len(t.symbols))
		}
		t.labels = append(t.labels, Label{Name: t.symbols[n], Value: t.symbols[v]})
	}
	_, err := validateLabels(index, t.labels, true) // sorts them when they are not
	return err
}

// exemplar appends one exemplar (RW2 message b) to t.rest as an RW1
// exemplar: labels resolved, value and timestamp copied.
func (t *RW2Transcoder) exemplar(index int, b []byte) error {
	t.exRefs, t.ex = t.exRefs[:0], t.ex[:0]
	for i := 0; i < len(b); {
		f, next := nextField(b, i, &rw2ExemplarSchema)
		if f.num == fieldRW2ExemplarLabelsRefs {
			t.exRefs = appendRefs(t.exRefs, b, i, f)
		}
		i = next
	}
	if len(t.exRefs)%2 != 0 {
		return invalidSeries(index, nil, "an exemplar's labels_refs has an odd length (%d)", len(t.exRefs))
	}
	for j := 0; j < len(t.exRefs); j += 2 {
		n, v := t.exRefs[j], t.exRefs[j+1]
		if int64(n) >= int64(len(t.symbols)) || int64(v) >= int64(len(t.symbols)) {
			return invalidSeries(index, nil, "exemplar labels_refs %d (name) = %d (value) outside of the symbols table (%d symbols)", n, v, len(t.symbols))
		}
		l := Label{Name: t.symbols[n], Value: t.symbols[v]}
		size := bytesFieldLen(labelLen(l))
		if len(t.ex)+size+len(t.rest) > t.limit {
			return t.tooLarge()
		}
		var err error
		if t.ex, err = t.room(t.ex, size); err != nil {
			return err
		}
		t.ex = append(t.ex, tagExemplarLabels)
		t.ex = appendVarint(t.ex, uint64(labelLen(l)))
		t.ex = appendLabelFields(t.ex, l)
	}
	var err error
	if t.ex, err = t.room(t.ex, len(b)); err != nil { // value and timestamp
		return err
	}
	for i := 0; i < len(b); {
		f, next := nextField(b, i, &rw2ExemplarSchema)
		if f.num == 2 || f.num == 3 { // value, timestamp: the same in RW1
			t.ex = append(t.ex, b[i:next]...)
		}
		i = next
	}
	if t.rest, err = t.room(t.rest, bytesFieldLen(len(t.ex))); err != nil {
		return err
	}
	t.rest = appendBytesField(t.rest, tagSeriesExemplars, t.ex)
	return nil
}

// merge applies one occurrence of TimeSeries.metadata: like gogo, later
// fields overwrite earlier ones.
func (m *rw2Meta) merge(b []byte) {
	for i := 0; i < len(b); {
		f, next := nextField(b, i, &rw2MetadataSchema)
		if f.num == fieldRW2MetadataType || f.num == fieldRW2MetadataHelpRef || f.num == fieldRW2MetadataUnitRef {
			_, j, _ := readVarint(b, i) // the tag
			v, _, _ := readVarint(b, j)
			switch f.num {
			case fieldRW2MetadataType:
				m.typ = int32(v) // gogo's truncation of an enum varint
			case fieldRW2MetadataHelpRef:
				m.helpRef = uint32(v)
			default:
				m.unitRef = uint32(v)
			}
		}
		i = next
	}
}

// metadata resolves a series' metadata and, unless it is empty or the same
// as the one written last, appends it to t.meta as an RW1 MetricMetadata
// named after the series.
func (t *RW2Transcoder) metadata(index int, md *rw2Meta) error {
	n := uint64(len(t.symbols))
	if uint64(md.helpRef) >= n || uint64(md.unitRef) >= n {
		return invalidSeries(index, t.labels, "metadata help_ref %d or unit_ref %d outside of the symbols table (%d symbols)", md.helpRef, md.unitRef, n)
	}
	if md.helpRef > 0 {
		md.help = t.symbols[md.helpRef]
	}
	if md.unitRef > 0 {
		md.unit = t.symbols[md.unitRef]
	}
	if md.typ == 0 && len(md.help) == 0 && len(md.unit) == 0 {
		return nil
	}
	for _, l := range t.labels {
		if string(l.Name) == MetricNameLabel {
			md.name = l.Value
		}
	}
	if md.equal(&t.last) {
		return nil
	}
	t.last = *md
	size := bytesFieldLen(len(md.name))
	if md.typ != 0 {
		size += 1 + varintLen(uint64(int64(md.typ)))
	}
	if len(md.help) > 0 {
		size += bytesFieldLen(len(md.help))
	}
	if len(md.unit) > 0 {
		size += bytesFieldLen(len(md.unit))
	}
	if len(t.meta)+bytesFieldLen(size) > t.limit {
		return t.tooLarge()
	}
	var err error
	if t.meta, err = t.room(t.meta, bytesFieldLen(size)); err != nil {
		return err
	}
	t.meta = append(t.meta, tagWriteMetadata)
	t.meta = appendVarint(t.meta, uint64(size))
	if md.typ != 0 {
		t.meta = append(t.meta, tagMetadataType)
		t.meta = appendVarint(t.meta, uint64(int64(md.typ))) // as gogo writes an enum
	}
	t.meta = appendBytesField(t.meta, tagMetadataFamily, md.name)
	if len(md.help) > 0 {
		t.meta = appendBytesField(t.meta, tagMetadataHelp, md.help)
	}
	if len(md.unit) > 0 {
		t.meta = appendBytesField(t.meta, tagMetadataUnit, md.unit)
	}
	return nil
}

// nextField reads the field at b[i:] of a message that checkMessage
// accepted against s, and returns it with the index where gogo goes on:
// past the end of the field, or past a packed element that straddles it
// (see skipPacked).
func nextField(b []byte, i int, s *msgSchema) (field, int) {
	f, next, err := readField(b, i)
	if err != nil {
		return f, len(b) // cannot happen for a checked message
	}
	if r := s.rule(f.num); f.wire == wireBytes && (r.kind == kindRepeatedVarint || r.kind == kindRepeatedFixed64) {
		next, _ = skipPacked(b, payloadStart(b, i), next, r.kind == kindRepeatedFixed64)
	}
	return f, next
}

// payloadStart returns where the payload of the length-delimited field at
// b[i:] starts: after its tag and its length.
func payloadStart(b []byte, i int) int {
	_, i, _ = readVarint(b, i)
	_, i, _ = readVarint(b, i)
	return i
}

// appendRefs appends the uint32 references of one labels_refs field, which
// starts at b[i:]: a single varint, or a packed run. Like gogo it keeps the low 32 bits of each varint.
func appendRefs(refs []uint32, b []byte, i int, f field) []uint32 {
	if f.wire == wireVarint {
		_, j, _ := readVarint(b, i) // the tag
		v, _, _ := readVarint(b, j)
		return append(refs, uint32(v))
	}
	// Elements start before the end of the payload; the last may run past it.
	start := payloadStart(b, i)
	end := start + len(f.bytes)
	for j := start; j < end; {
		var v uint64
		v, j, _ = readVarint(b, j)
		refs = append(refs, uint32(v))
	}
	return refs
}

// appendKept appends message b as a length-delimited field with tag,
// keeping only the fields the RW1 schema s knows (and, in nested messages,
// those their schemas know), in order and byte for byte. RW2's samples and
// histograms are RW1's plus start_timestamp, which is dropped.
func appendKept(dst []byte, tag byte, b []byte, s *msgSchema) []byte {
	size, all := keptLen(b, s)
	dst = append(dst, tag)
	dst = appendVarint(dst, uint64(size))
	if all {
		return append(dst, b...)
	}
	return appendKeptFields(dst, b, s)
}

// keptLen returns the size of message b filtered as appendKept does, and
// whether that is all of b.
func keptLen(b []byte, s *msgSchema) (size int, all bool) {
	all = true
	for i := 0; i < len(b); {
		f, next := nextField(b, i, s)
		switch r := s.rule(f.num); {
		case r.kind == kindUnknown:
			all = false
		case r.kind == kindMessage:
			n, nestedAll := keptLen(f.bytes, r.msg)
			if nestedAll {
				size += next - i
			} else {
				all = false
				size += varintLen(uint64(f.num)<<3) + varintLen(uint64(n)) + n
			}
		default:
			size += next - i
		}
		i = next
	}
	return size, all
}

func appendKeptFields(dst, b []byte, s *msgSchema) []byte {
	for i := 0; i < len(b); {
		f, next := nextField(b, i, s)
		switch r := s.rule(f.num); {
		case r.kind == kindUnknown:
		case r.kind == kindMessage:
			if n, all := keptLen(f.bytes, r.msg); all {
				dst = append(dst, b[i:next]...)
			} else {
				dst = appendVarint(dst, uint64(f.num)<<3|wireBytes)
				dst = appendVarint(dst, uint64(n))
				dst = appendKeptFields(dst, f.bytes, r.msg)
			}
		default:
			dst = append(dst, b[i:next]...)
		}
		i = next
	}
	return dst
}

// truncate shortens a symbol quoted in an error message.
func truncate(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}
