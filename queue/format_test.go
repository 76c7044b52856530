package queue

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/scoreproxy/scoreproxy/remotewrite"
)

func TestRecordRoundTrip(t *testing.T) {
	at := time.Unix(1700000000, 123456789)
	for _, body := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte("snappy"), 10000)} {
		rec := appendRecord(nil, 3, body, stats(7, 14), nil, at)
		if int64(len(rec)) != recordSize(len(body)) {
			t.Fatalf("record of %d bytes is %d long, recordSize says %d", len(body), len(rec), recordSize(len(body)))
		}
		payload, next, err := readRecordAt(bytes.NewReader(rec), 0, int64(len(rec)), nil)
		if err != nil || next != int64(len(rec)) {
			t.Fatalf("readRecordAt: next %d, err %v", next, err)
		}
		b, err := decodePayload(payload)
		if err != nil || !bytes.Equal(b.body, body) || b.series != 7 || b.endpoint != 3 || b.samples != 14 || !b.enqueued.Equal(at) {
			t.Fatalf("decoded %+v, %v", b, err)
		}
	}
}

func stats(series, samples int) remotewrite.BatchStats {
	return remotewrite.BatchStats{Series: series, Samples: samples}
}

// The query keys of a batch survive the queue; a batch whose series all
// have the key "" stores none, and reads back as nil.
func TestRecordQueryKeys(t *testing.T) {
	long := strings.Repeat("k", maxKeyBytes+10)
	tests := []struct {
		name string
		keys remotewrite.KeyTallies
		want remotewrite.KeyTallies
	}{
		{"none", nil, nil},
		{"only the empty key", remotewrite.KeyTallies{{Key: "", Series: 3, Samples: 6}}, nil},
		{"several", remotewrite.KeyTallies{{Key: "q1", Series: 1, Samples: 2}, {Key: "", Series: 2, Samples: 4}},
			remotewrite.KeyTallies{{Key: "q1", Series: 1, Samples: 2}, {Key: "", Series: 2, Samples: 4}}},
		{"too many keys", manyKeys(remotewrite.MaxQueryKeys + 2), append(manyKeys(remotewrite.MaxQueryKeys),
			remotewrite.KeyTally{Key: remotewrite.OverflowQueryKey, Series: 2, Samples: 2})},
		{"a long key is cut", remotewrite.KeyTallies{{Key: long, Series: 3, Samples: 6}},
			remotewrite.KeyTallies{{Key: long[:maxKeyBytes], Series: 3, Samples: 6}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := remotewrite.BatchStats{Series: 3, Samples: 6, QueryKeys: tt.keys}
			rec := appendRecord(nil, 2, []byte("body"), s, recordKeys(s), time.Now())
			if want := recordSize(4) + keysSize(recordKeys(s)); int64(len(rec)) != want {
				t.Fatalf("record is %d bytes, size %d", len(rec), want)
			}
			payload, _, err := readRecordAt(bytes.NewReader(rec), 0, int64(len(rec)), nil)
			if err != nil {
				t.Fatal(err)
			}
			b, err := decodePayload(payload)
			if err != nil || string(b.body) != "body" || !reflect.DeepEqual(b.keys, tt.want) {
				t.Fatalf("decoded %+v, %v; want keys %+v", b, err, tt.want)
			}
		})
	}
}

func manyKeys(n int) remotewrite.KeyTallies {
	var k remotewrite.KeyTallies
	for i := range n {
		k = append(k, remotewrite.KeyTally{Key: fmt.Sprint("q", i), Series: 1, Samples: 1})
	}
	return k
}

// A record of format version 2 (no query keys) is read as having none.
func TestRecordVersion2(t *testing.T) {
	payload := []byte{formatV2}
	payload = binary.LittleEndian.AppendUint32(payload, 5)
	payload = binary.LittleEndian.AppendUint64(payload, uint64(time.Unix(1700000000, 0).UnixNano()))
	payload = binary.LittleEndian.AppendUint32(payload, 2)
	payload = binary.LittleEndian.AppendUint32(payload, 4)
	payload = append(payload, "old body"...)
	rec := binary.LittleEndian.AppendUint32(nil, recordMagic)
	rec = binary.LittleEndian.AppendUint32(rec, uint32(len(payload)))
	rec = binary.LittleEndian.AppendUint32(rec, crc32.Checksum(payload, castagnoli))
	rec = append(rec, payload...)
	got, next, err := readRecordAt(bytes.NewReader(rec), 0, int64(len(rec)), nil)
	if err != nil || next != int64(len(rec)) {
		t.Fatalf("readRecordAt: next %d, err %v", next, err)
	}
	b, err := decodePayload(got)
	if err != nil || string(b.body) != "old body" || b.endpoint != 5 || b.series != 2 || b.samples != 4 || b.keys != nil {
		t.Fatalf("decoded %+v, %v", b, err)
	}
}

// A version 3 payload whose query keys run past its end is corrupt.
func TestRecordKeysCutShort(t *testing.T) {
	s := remotewrite.BatchStats{Series: 1, Samples: 1, QueryKeys: remotewrite.KeyTallies{{Key: "abc", Series: 1, Samples: 1}}}
	rec := appendRecord(nil, 1, nil, s, recordKeys(s), time.Now())
	payload := rec[headerSize:]
	for n := payloadHead; n < len(payload); n++ {
		if _, err := decodePayload(payload[:n]); !errors.Is(err, errCorrupt) {
			t.Fatalf("payload cut at %d of %d: err %v, want errCorrupt", n, len(payload), err)
		}
	}
}

// Every kind of damage is detected, and nextValid finds the record after it.
func TestRecordDamage(t *testing.T) {
	first := appendRecord(nil, 1, []byte("first block"), stats(1, 1), nil, time.Now())
	second := appendRecord(nil, 1, []byte("second block, with SPQ2 inside"), stats(1, 1), nil, time.Now())
	tests := []struct {
		name   string
		damage func(seg []byte) []byte
		// wantNext is where the next intact record starts (len(first) when the second survives)
		wantNext func(seg []byte) int64
	}{
		{"bit flipped in the payload", func(s []byte) []byte { s[headerSize+3] ^= 1; return s }, secondStart(first)},
		{"bit flipped in the length", func(s []byte) []byte { s[5] ^= 0x10; return s }, secondStart(first)},
		{"magic overwritten", func(s []byte) []byte { copy(s, "XXXX"); return s }, secondStart(first)},
		{"zeros over the header", func(s []byte) []byte { clear(s[:headerSize]); return s }, secondStart(first)},
		{"torn: cut in the payload", func(s []byte) []byte { return s[:len(first)/2] }, end},
		{"torn: cut in the header", func(s []byte) []byte { return s[:5] }, end},
		{"zero-filled tail", func(s []byte) []byte { s = s[:len(first)]; clear(s); return s }, end},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seg := tt.damage(append(append([]byte{}, first...), second...))
			r := bytes.NewReader(seg)
			_, _, err := readRecordAt(r, 0, int64(len(seg)), nil)
			if !errors.Is(err, errCorrupt) {
				t.Fatalf("readRecordAt: err %v, want errCorrupt", err)
			}
			next, err := nextValid(r, 0, int64(len(seg)))
			if err != nil || next != tt.wantNext(seg) {
				t.Fatalf("nextValid = %d, %v; want %d", next, err, tt.wantNext(seg))
			}
		})
	}
}

func secondStart(first []byte) func([]byte) int64 {
	return func([]byte) int64 { return int64(len(first)) }
}

func end(seg []byte) int64 { return int64(len(seg)) }

func TestOffsetEncoding(t *testing.T) {
	b := encodeOffset(42, 1234)
	if seg, off, ok := decodeOffset(b); !ok || seg != 42 || off != 1234 {
		t.Fatalf("decodeOffset = %d, %d, %v", seg, off, ok)
	}
	b[3] ^= 1
	if _, _, ok := decodeOffset(b); ok {
		t.Fatal("a damaged offset file was accepted")
	}
	if _, _, ok := decodeOffset(b[:10]); ok {
		t.Fatal("a short offset file was accepted")
	}
}

func TestDirName(t *testing.T) {
	a := dirName("http://user:secret@vm:8480/insert/5:0/prometheus/api/v1/write")
	b := dirName("http://user:other@vm:8480/insert/5:0/prometheus/api/v1/write")
	if a == b {
		t.Fatal("two credentials for one URL share a directory")
	}
	for _, name := range []string{a, b} {
		if bytes.Contains([]byte(name), []byte("secret")) || bytes.ContainsAny([]byte(name), "/:@") {
			t.Fatalf("directory name %q holds a credential or a path separator", name)
		}
	}
	if want := "vm_8480_insert_5_0_prometheus_api_v1_write-"; a[:len(want)] != want {
		t.Fatalf("dirName = %q, want it to start with %q", a, want)
	}
}
