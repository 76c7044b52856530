package queue

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"math"
	"time"

	"github.com/scoreproxy/scoreproxy/remotewrite"
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
// and a payload is
//
//	[version u8 = 3][endpoint id u32][enqueued unix nanoseconds i64][series u32][samples u32]
//	[query keys u16] query keys x [key length u16][key][series u32][samples u32]
//	[body]
//
// the body being the snappy-compressed remote-write 1.0 request, as sent
// upstream, and the query keys splitting series and samples by the query key
// of the series (remotewrite.KeyTallies), for the writer metrics when the
// block is delivered; none means all have the key "". Version 2 payloads,
// the same without the query keys, are read as having none.
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
	payloadHead   = 23         // version, endpoint, enqueued, series, samples, query keys
	formatVersion = 3
	// payloadHeadV2 and formatV2 are version 2's, read but not written.
	payloadHeadV2 = 21
	formatV2      = 2
	// maxKeyBytes bounds a query key as stored: longer ones are cut.
	maxKeyBytes = 1 << 10
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
	keys     remotewrite.KeyTallies // nil: all ""; copied out of the reader's buffer
	enqueued time.Time
}

// stats returns what the block holds, for the writer metrics.
func (b *block) stats() remotewrite.BatchStats {
	return remotewrite.BatchStats{Series: b.series, Samples: b.samples, QueryKeys: b.keys}
}

// recordSize is the size on disk of the record holding a body of n bytes
// and no query keys.
func recordSize(n int) int64 { return int64(headerSize + payloadHead + n) }

// recordKeys returns the query keys a record stores of stats: none when
// every series has the key "", and past MaxQueryKeys the rest folded into
// OverflowQueryKey.
func recordKeys(stats remotewrite.BatchStats) remotewrite.KeyTallies {
	k := stats.QueryKeys
	switch {
	case len(k) == 1 && k[0].Key == "":
		return nil
	case len(k) > remotewrite.MaxQueryKeys:
		return remotewrite.KeyTallies(nil).Merge(k)
	}
	return k
}

// keysSize is the size on disk of the query keys of a record.
func keysSize(keys remotewrite.KeyTallies) int64 {
	n := 0
	for _, k := range keys {
		n += 2 + min(len(k.Key), maxKeyBytes) + 8
	}
	return int64(n)
}

// appendRecord appends the record of body to dst (whose capacity is reused),
// copying body: the caller may reuse it as soon as this returns. keys are
// recordKeys(stats).
func appendRecord(dst []byte, endpoint uint32, body []byte, stats remotewrite.BatchStats, keys remotewrite.KeyTallies, enqueued time.Time) []byte {
	start := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, recordMagic)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(int64(payloadHead+len(body))+keysSize(keys)))
	dst = binary.LittleEndian.AppendUint32(dst, 0) // crc, filled below
	dst = append(dst, formatVersion)
	dst = binary.LittleEndian.AppendUint32(dst, endpoint)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(enqueued.UnixNano()))
	dst = binary.LittleEndian.AppendUint32(dst, clampUint32(stats.Series))
	dst = binary.LittleEndian.AppendUint32(dst, clampUint32(stats.Samples))
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(keys)))
	for _, k := range keys {
		key := k.Key[:min(len(k.Key), maxKeyBytes)]
		dst = binary.LittleEndian.AppendUint16(dst, uint16(len(key)))
		dst = append(dst, key...)
		dst = binary.LittleEndian.AppendUint32(dst, clampUint32(k.Series))
		dst = binary.LittleEndian.AppendUint32(dst, clampUint32(k.Samples))
	}
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
	if len(p) < payloadHeadV2 || !knownVersion(p[0]) || p[0] == formatVersion && len(p) < payloadHead {
		return block{}, errCorrupt
	}
	b := block{
		endpoint: binary.LittleEndian.Uint32(p[1:]),
		enqueued: time.Unix(0, int64(binary.LittleEndian.Uint64(p[5:]))),
		series:   int(binary.LittleEndian.Uint32(p[13:])),
		samples:  int(binary.LittleEndian.Uint32(p[17:])),
	}
	if p[0] == formatV2 {
		b.body = p[payloadHeadV2:]
		return b, nil
	}
	var ok bool
	if b.keys, b.body, ok = decodeKeys(p[payloadHeadV2:]); !ok {
		return block{}, errCorrupt
	}
	return b, nil
}

// decodeKeys parses the query keys at the start of p and returns them,
// copied, and the rest of p.
func decodeKeys(p []byte) (remotewrite.KeyTallies, []byte, bool) {
	n := int(binary.LittleEndian.Uint16(p))
	p = p[2:]
	if n == 0 {
		return nil, p, true
	}
	keys := make(remotewrite.KeyTallies, 0, n)
	for range n {
		if len(p) < 2 {
			return nil, nil, false
		}
		l := int(binary.LittleEndian.Uint16(p))
		if len(p) < 2+l+8 {
			return nil, nil, false
		}
		keys = append(keys, remotewrite.KeyTally{Key: string(p[2 : 2+l]),
			Series:  int(binary.LittleEndian.Uint32(p[2+l:])),
			Samples: int(binary.LittleEndian.Uint32(p[6+l:]))})
		p = p[2+l+8:]
	}
	return keys, p, true
}

// knownVersion reports whether v is a payload version this build reads.
func knownVersion(v byte) bool { return v == formatVersion || v == formatV2 }

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
	if binary.LittleEndian.Uint32(h[0:]) != recordMagic || length < payloadHeadV2 || length > end-off-headerSize {
		return buf, 0, errCorrupt
	}
	if int64(cap(buf)) < length {
		buf = make([]byte, length)
	}
	buf = buf[:length]
	if _, err := r.ReadAt(buf, off+headerSize); err != nil {
		return buf, 0, err
	}
	if crc32.Checksum(buf, castagnoli) != binary.LittleEndian.Uint32(h[8:]) || !knownVersion(buf[0]) {
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
