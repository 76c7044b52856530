package queue

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Rejected-data files. A block the upstream refused with a 4xx other than 429
// (the data itself is bad; sending it again cannot help) is not dropped: it is
// appended, fsynced, to rejected.jsonl in its endpoint's directory, one JSON
// object per line (RejectedBlock; the body is base64, as encoding/json writes
// []byte). When the file would grow past half of the configured maximum it is
// renamed to rejected.1.jsonl (replacing an older one), so the two files
// together stay under max_rejected_bytes and keep the newest rejections.
const (
	rejectedFile    = "rejected.jsonl"
	rejectedOldFile = "rejected.1.jsonl"
)

// RejectedBlock is one line of a rejected-data file.
type RejectedBlock struct {
	// Time is when the upstream refused the block.
	Time time.Time `json:"time"`
	// URL is the upstream write URL, without credentials.
	URL string `json:"url"`
	// Status is the upstream's HTTP status code.
	Status int `json:"status"`
	// Message is the upstream's answer (trimmed, at most 1 KiB).
	Message string `json:"message"`
	// Enqueued is when the producer's request was acknowledged.
	Enqueued time.Time `json:"enqueued"`
	// Series and Samples count the block's content.
	Series  int `json:"series"`
	Samples int `json:"samples"`
	// Body is the snappy-compressed remote-write 1.0 request as it was sent;
	// POST it again (Content-Encoding: snappy) once the cause is fixed.
	Body []byte `json:"body"`
}

// ReadRejected reads a rejected-data file back.
func ReadRejected(path string) ([]RejectedBlock, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []RejectedBlock
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<30)
	for line := 1; sc.Scan(); line++ {
		var b RejectedBlock
		if err := json.Unmarshal(sc.Bytes(), &b); err != nil {
			return out, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		out = append(out, b)
	}
	return out, sc.Err()
}

// rejectedLog appends to one endpoint's rejected-data file. Only the
// endpoint's delivery worker uses it.
type rejectedLog struct {
	dir      string
	maxBytes int64 // of both files together
	syncFile func(*os.File) error
}

// add appends b durably: the queue forgets the block right after.
func (r *rejectedLog) add(b RejectedBlock) error {
	line, err := json.Marshal(b)
	if err != nil {
		return err
	}
	line = append(line, '\n')
	path := filepath.Join(r.dir, rejectedFile)
	if st, err := os.Stat(path); err == nil && st.Size()+int64(len(line)) > r.maxBytes/2 {
		if err := os.Rename(path, filepath.Join(r.dir, rejectedOldFile)); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(line); err != nil {
		f.Close()
		return err
	}
	if err := r.syncFile(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
