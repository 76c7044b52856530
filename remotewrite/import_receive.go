package remotewrite

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/klauspost/compress/gzip"
)

// checkImport validates the method and declared size of a JSON-lines
// import request and returns vminsert's extra_label query arguments.
func (h *Handler) checkImport(r *http.Request) ([]Label, error) {
	if r.Method != http.MethodPost {
		return nil, &StatusError{Code: http.StatusMethodNotAllowed, Reason: ReasonMethod,
			Msg: fmt.Sprintf("method %s not allowed: the JSON import uses POST", r.Method)}
	}
	if r.ContentLength > h.cfg.MaxRequestBytes {
		return nil, tooLarge("request body of %d bytes exceeds limits.max_request_bytes (%d)", r.ContentLength, h.cfg.MaxRequestBytes)
	}
	if r.URL.RawQuery == "" { // parsing the query allocates its map
		return nil, nil
	}
	return extraLabels(r.URL.Query()["extra_label"])
}

// importEncoding is a JSON import's Content-Encoding, lower case.
func importEncoding(r *http.Request) string {
	return strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding")))
}

// plainImport reports whether a JSON import is uncompressed, so that it
// can be transcoded as it arrives (see importStream).
func plainImport(r *http.Request) bool {
	enc := importEncoding(r)
	return enc == "" || enc == "identity"
}

// streamImport makes rd transcode the import into bufs as it reads it.
func (h *Handler) streamImport(rd *bodyReader, bufs *receiveBuffers) {
	bufs.importer.cache = h.importLabels
	bufs.rw1 = bufs.rw1[:0]
	bufs.importer.begin(bufs.rw1)
	rd.streamState = importStream{t: &bufs.importer, out: &bufs.rw1, extra: rd.extra,
		limit: int(min(h.cfg.MaxDecodedBytes, maxInt))}
	rd.stream = &rd.streamState
}

// importBody returns the RW1 transcoding, in bufs.rw1, of the JSON-lines
// import read into bufs.compressed (see ImportTranscoder): the body
// decompressed as its Content-Encoding says (gzip, zstd or none), bounded
// by limits.max_decoded_bytes as it is decompressed, and the extra labels
// added to every series.
func (h *Handler) importBody(r *http.Request, bufs *receiveBuffers, rd *bodyReader) ([]byte, error) {
	var err error
	var body []byte
	switch enc := importEncoding(r); enc {
	case "", "identity":
		body = bufs.compressed
		if s := rd.stream; s != nil {
			if total := s.done + int64(len(body)); total > h.cfg.MaxDecodedBytes {
				return nil, tooLarge("JSON import of %d bytes exceeds limits.max_decoded_bytes (%d)", total, h.cfg.MaxDecodedBytes)
			}
			return bufs.importer.transcodeLines(bufs.rw1, body, rd.extra, s.limit)
		}
		if int64(len(body)) > h.cfg.MaxDecodedBytes {
			return nil, tooLarge("JSON import of %d bytes exceeds limits.max_decoded_bytes (%d)", len(body), h.cfg.MaxDecodedBytes)
		}
	case "gzip":
		bufs.decoded, err = bufs.gunzip(bufs.decoded[:0], bufs.compressed, h.cfg.MaxDecodedBytes, &rd.hold)
		body = bufs.decoded
	case "zstd":
		bufs.decoded, err = h.zstd.decode(r.Context(), bufs.decoded, bufs.compressed, &rd.hold)
		body = bufs.decoded
	default:
		return nil, &StatusError{Code: http.StatusUnsupportedMediaType, Reason: ReasonUnsupported,
			Msg: fmt.Sprintf("unsupported Content-Encoding %q for the JSON import: send it uncompressed, gzip or zstd", enc)}
	}
	if err != nil {
		return nil, err
	}
	bufs.importer.cache = h.importLabels
	return bufs.importer.Transcode(bufs.rw1[:0], body, rd.extra, int(min(h.cfg.MaxDecodedBytes, maxInt)))
}

// gunzip decompresses src into dst, failing with 413 as soon as the output
// passes maxDecoded: a small body that expands without bound (a gzip bomb)
// costs at most maxDecoded bytes of memory, reserved in held as it grows.
func (b *receiveBuffers) gunzip(dst, src []byte, maxDecoded int64, held *hold) ([]byte, error) {
	if b.gz == nil {
		b.gz = new(gunzipper)
	}
	// gzip ends with the size of its (last) member: a hint, trusted up to
	// a ratio JSON lines reach, so a small body cannot claim a large buffer.
	// It is reserved in held like any growth; when the budget refuses it,
	// reading grows the buffer as it goes and meets the refusal there.
	if n := len(src); n >= 4 {
		if size := int64(binary.LittleEndian.Uint32(src[n-4:])); size <= min(maxDecoded, 32*int64(n)) {
			if grown, err := held.room(dst, int(size)+1, int(size)+1); err == nil {
				dst = grown
			}
		}
	}
	b.gz.src.Reset(src)
	if err := b.gz.r.Reset(&b.gz.src); err != nil {
		return dst, badGzip(err)
	}
	dst, over, err := readAtMost(&b.gz.r, dst, maxDecoded, held)
	switch {
	case over:
		return dst, tooLarge("decompressed JSON import exceeds limits.max_decoded_bytes (%d bytes)", maxDecoded)
	case err != nil && isStatus(err): // the byte budget
		return dst, err
	case err != nil:
		return dst, badGzip(err)
	}
	return dst, nil
}

// gunzipper is a reusable gzip reader with the reader of its input, kept
// together so that decompressing a request allocates nothing once warm.
type gunzipper struct {
	r   gzip.Reader
	src bytes.Reader
}

func badGzip(err error) error {
	return &DecodeError{Reason: ReasonBadImport, Msg: "corrupt gzip body (Content-Encoding: gzip): " + err.Error()}
}

// extraLabels parses vminsert's extra_label=name=value query arguments.
func extraLabels(args []string) ([]Label, error) {
	var out []Label
	for _, a := range args {
		name, value, ok := strings.Cut(a, "=")
		if !ok || name == "" {
			return nil, &DecodeError{Reason: ReasonBadImport,
				Msg: fmt.Sprintf("extra_label=%s: write extra_label=<name>=<value>", url.QueryEscape(a))}
		}
		out = append(out, Label{Name: []byte(name), Value: []byte(value)})
	}
	return out, nil
}

// ImportPath reports whether path is a JSON-lines import path and returns
// the tenant it names, verbatim, as PathTenant does for write paths:
// /api/v1/import and /prometheus/api/v1/import (""), and
// /insert/<tenant>/prometheus/api/v1/import, vminsert's.
func ImportPath(path string) (string, bool) {
	switch path {
	case "/api/v1/import", "/prometheus/api/v1/import":
		return "", true
	}
	rest, ok := strings.CutPrefix(path, "/insert/")
	if !ok {
		return "", false
	}
	tenant, suffix, ok := strings.Cut(rest, "/")
	if !ok || tenant == "" || suffix != "prometheus/api/v1/import" {
		return "", false
	}
	return tenant, true
}
