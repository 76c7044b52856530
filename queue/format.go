package queue

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"math"
	"time"
)

// On-disk format of a queue directory (all integers little-endian):
//
//	lock                       flock'ed by the process using the queue
//	log/0000000000000001.seg   segment files of the one log all endpoints share, named by a growing 16-hex-digit id
//	<endpoint>/endpoint.json   {"url": "<upstream URL>", "id": N}: where the endpoint's blocks go, for restarts
//	<endpoint>/read-offset     [segment id u64][offset u64][crc32c u32]: every record of the endpoint before it is delivered
//	<endpoint>/rejected.jsonl  blocks the upstream refused with a 4xx (see rejected.go)
//
// A segment is a sequence of records:
//
//	[magic u32 "SPQ2"][payload length u32][crc32c (Castagnoli) of payload u32][payload]
//
// and a payload is [version u8 = 2][endpoint id u32][enqueued unix nanoseconds i64][series u32][samples u32][body],
// the body being the snappy-compressed remote-write 1.0 request, as sent upstream.
// The magic lets a reader find the next record after a corrupted one.
//
// Beside each segment, log/<id>.idx indexes the records committed to it, one
// 24-byte entry each, appended after the fsync that made them durable:
//
//	[offset u64][record size u32][endpoint id u32][samples u32][crc32c of the 20 bytes before u32]
//
// so that damage found at start-up is reported in the blocks and samples it
// cost, even where the records themselves are unreadable or cut off. An
// index is written without fsync until its segment is sealed (it survives a
// crash of the process, not necessarily a power loss, in the segment being
// written); a damaged entry is skipped. A segment without an index (or the
// records its index lacks) still reads: its damage is reported in bytes.
//
// One log for every endpoint means one fsync per commit round however many
// endpoints a round writes to (split mode writes one record per tenant per
// request). A segment is deleted once every record in it is delivered or set
// aside, whichever endpoints they belong to.
const (
	recordMagic   = 0x32515053 // "SPQ2"
	headerSize    = 12         // magic, length, crc
	payloadHead   = 21         // version, endpoint, enqueued, series, samples
	formatVersion = 2
)

const indexEntrySize = 24

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errCorrupt marks a record whose header or checksum is wrong, or that is
// cut short by the end of the segment (a torn write).
var errCorrupt = errors.New("corrupted record")

// block is one queued upstream request.
type block struct {
	endpoint uint32 // id of the endpoint it goes to
	body     []byte // snappy RW1; aliases the reader's buffer
	series   int
	samples  int
	enqueued time.Time
}

// recordSize is the size on disk of the record holding a body of n bytes.
func recordSize(n int) int64 { return int64(headerSize + payloadHead + n) }

// appendRecord appends the record of body to dst (whose capacity is reused),
// copying body: the caller may reuse it as soon as this returns.
func appendRecord(dst []byte, endpoint uint32, body []byte, series, samples int, enqueued time.Time) []byte {
	start := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, recordMagic)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(payloadHead+len(body)))
	dst = binary.LittleEndian.AppendUint32(dst, 0) // crc, filled below
	dst = append(dst, formatVersion)
	dst = binary.LittleEndian.AppendUint32(dst, endpoint)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(enqueued.UnixNano()))
	dst = binary.LittleEndian.AppendUint32(dst, clampUint32(series))
	dst = binary.LittleEndian.AppendUint32(dst, clampUint32(samples))
	dst = append(dst, body...)
	crc := crc32.Checksum(dst[start+headerSize:], castagnoli)
	binary.LittleEndian.PutUint32(dst[start+8:], crc)
	return dst
}

func clampUint32(n int) uint32 {
	if n < 0 {
		return 0
	}
	return uint32(min(int64(n), math.MaxUint32))
}

// decodePayload parses a payload whose checksum was verified.
func decodePayload(p []byte) (block, error) {
	if len(p) < payloadHead || p[0] != formatVersion {
		return block{}, errCorrupt
	}
	return block{
		endpoint: binary.LittleEndian.Uint32(p[1:]),
		enqueued: time.Unix(0, int64(binary.LittleEndian.Uint64(p[5:]))),
		series:   int(binary.LittleEndian.Uint32(p[13:])),
		samples:  int(binary.LittleEndian.Uint32(p[17:])),
		body:     p[payloadHead:],
	}, nil
}

// readRecordAt reads and verifies the record at off of a segment holding end
// valid bytes. It returns the payload (in buf, grown as needed) and the offset
// of the next record; errCorrupt when the record is torn or damaged, any other
// error when reading failed.
func readRecordAt(r io.ReaderAt, off, end int64, buf []byte) (payload []byte, next int64, err error) {
	if end-off < headerSize {
		return buf, 0, errCorrupt
	}
	var h [headerSize]byte
	if _, err := r.ReadAt(h[:], off); err != nil {
		return buf, 0, err
	}
	length := int64(binary.LittleEndian.Uint32(h[4:]))
	if binary.LittleEndian.Uint32(h[0:]) != recordMagic || length < payloadHead || length > end-off-headerSize {
		return buf, 0, errCorrupt
	}
	if int64(cap(buf)) < length {
		buf = make([]byte, length)
	}
	buf = buf[:length]
	if _, err := r.ReadAt(buf, off+headerSize); err != nil {
		return buf, 0, err
	}
	if crc32.Checksum(buf, castagnoli) != binary.LittleEndian.Uint32(h[8:]) || buf[0] != formatVersion {
		return buf, 0, errCorrupt
	}
	return buf, off + headerSize + length, nil
}

// nextValid returns the offset of the first intact record after the damaged
// one at off, or end when none follows: the bytes in between are lost. It
// looks for the magic and verifies each candidate, so a stray "SPQ1" inside a
// body is not mistaken for a record.
func nextValid(r io.ReaderAt, off, end int64) (int64, error) {
	const chunk = 1 << 20
	buf := make([]byte, chunk+3)
	var scratch []byte
	for pos := off + 1; pos < end; pos += chunk {
		n := int(min(int64(len(buf)), end-pos))
		if _, err := r.ReadAt(buf[:n], pos); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		for i := 0; i+4 <= n; i++ {
			if binary.LittleEndian.Uint32(buf[i:]) != recordMagic {
				continue
			}
			var err error
			if scratch, _, err = readRecordAt(r, pos+int64(i), end, scratch); err == nil {
				return pos + int64(i), nil
			} else if !errors.Is(err, errCorrupt) {
				return 0, err
			}
		}
	}
	return end, nil
}

// encodeOffset renders the read position as the read-offset file holds it.
func encodeOffset(seg uint64, off int64) []byte {
	b := binary.LittleEndian.AppendUint64(nil, seg)
	b = binary.LittleEndian.AppendUint64(b, uint64(off))
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// decodeOffset parses a read-offset file; ok is false when it is missing,
// short or damaged, and the queue then starts at its oldest segment.
func decodeOffset(b []byte) (seg uint64, off int64, ok bool) {
	if len(b) < 20 || crc32.Checksum(b[:16], castagnoli) != binary.LittleEndian.Uint32(b[16:]) {
		return 0, 0, false
	}
	return binary.LittleEndian.Uint64(b), int64(binary.LittleEndian.Uint64(b[8:])), true
}

// recordEndpoint returns the endpoint id of rec, an encoded record.
func recordEndpoint(rec []byte) uint32 { return binary.LittleEndian.Uint32(rec[headerSize+1:]) }

// indexEntry is one record of a segment as its index lists it.
type indexEntry struct {
	off      int64
	size     int64
	endpoint uint32
	samples  int
}

// appendIndexEntry appends the index entry of rec, an encoded record
// (appendRecord's output) at off, to dst.
func appendIndexEntry(dst []byte, off int64, rec []byte) []byte {
	start := len(dst)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(off))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(rec)))
	dst = binary.LittleEndian.AppendUint32(dst, recordEndpoint(rec))
	dst = append(dst, rec[headerSize+17:headerSize+21]...) // samples
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// decodeIndex returns the intact entries of an index file's content.
func decodeIndex(b []byte) []indexEntry {
	var out []indexEntry
	for ; len(b) >= indexEntrySize; b = b[indexEntrySize:] {
		if crc32.Checksum(b[:20], castagnoli) != binary.LittleEndian.Uint32(b[20:]) {
			continue
		}
		out = append(out, indexEntry{
			off:      int64(binary.LittleEndian.Uint64(b)),
			size:     int64(binary.LittleEndian.Uint32(b[8:])),
			endpoint: binary.LittleEndian.Uint32(b[12:]),
			samples:  int(binary.LittleEndian.Uint32(b[16:])),
		})
	}
	return out
}
