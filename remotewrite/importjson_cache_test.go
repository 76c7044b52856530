package remotewrite

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// transcodeTwice transcodes body with a fresh cache twice (the second pass
// finds what the first remembered) and fails unless both give what a
// transcoder without a cache gives. It returns the cache.
func transcodeTwice(t *testing.T, body string, extra []Label) *importLabelCache {
	t.Helper()
	var plain ImportTranscoder
	want, wantErr := plain.Transcode(nil, []byte(body), extra, 1<<30)
	cache := newImportLabelCache(defaultImportCacheBytes)
	for pass := 0; pass < 2; pass++ {
		tr := ImportTranscoder{cache: cache}
		got, err := tr.Transcode(nil, []byte(body), extra, 1<<30)
		if fmt.Sprint(err) != fmt.Sprint(wantErr) || wantErr == nil && string(got) != string(want) {
			t.Fatalf("pass %d: %v, %d bytes; without the cache: %v, %d bytes", pass, err, len(got), wantErr, len(want))
		}
	}
	return cache
}

// The bench workload's lines are all remembered on the first request and
// found on the second, which transcodes exactly as without the cache.
func TestImportLabelCacheFindsRepeatedSeries(t *testing.T) {
	body := benchImportBody()
	cache := transcodeTwice(t, string(body), nil)
	if len(cache.m) != 1000 {
		t.Fatalf("%d label sets cached, want the workload's 1000", len(cache.m))
	}
	tr := ImportTranscoder{cache: cache}
	if _, err := tr.Transcode(nil, body, nil, 1<<30); err != nil {
		t.Fatal(err)
	}
	if tr.hits != 0 || tr.misses != 0 || len(tr.pending) != 0 {
		t.Fatalf("counts not reset after the transcode: %d hits, %d misses, %d pending", tr.hits, tr.misses, len(tr.pending))
	}
}

// Lines the cache cannot hold, or must not answer, transcode as without it.
func TestImportLabelCacheEdgeCases(t *testing.T) {
	m := `{"metric":{"__name__":"m","a":"b"},"values":[1],"timestamps":[1]}`
	for _, tc := range []struct {
		name, body string
		extra      []Label
		cached     int
	}{
		{"a brace inside a label value", `{"metric":{"__name__":"m","a":"x}y"},"values":[1],"timestamps":[1]}` + "\n" +
			`{"metric":{"__name__":"m","a":"x}z"},"values":[1],"timestamps":[1]}`, nil, 0},
		{"a second metric object after a cached one", m + "\n" + `{"metric":{"__name__":"m","a":"b"},"metric":{"c":"d"},"values":[1],"timestamps":[1]}`, nil, 1},
		{"white space before the object", `{"metric": {"__name__":"m"},"values":[1],"timestamps":[1]}`, nil, 0},
		{"labels out of order", `{"metric":{"z":"1","__name__":"m"},"values":[1],"timestamps":[1]}`, nil, 1},
		{"escapes", `{"metric":{"__name__":"m","a":"\u00e9\n"},"values":[1],"timestamps":[1]}`, nil, 1},
		{"extra labels", m, []Label{{Name: []byte("a"), Value: []byte("x")}}, 0},
		{"a cached object with a bad value", m + "\n" + `{"metric":{"__name__":"m","a":"b"},"values":["x"],"timestamps":[1]}`, nil, 1},
		{"an invalid label set is not cached", `{"metric":{"__name__":"m","a":"1","a":"2"},"values":[1],"timestamps":[1]}`, nil, 0},
		{"an empty object", `{"metric":{},"values":[1],"timestamps":[1]}`, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := len(transcodeTwice(t, tc.body, tc.extra).m); got != tc.cached {
				t.Errorf("%d label sets cached, want %d", got, tc.cached)
			}
		})
	}
}

// A full cache takes nothing more, and is emptied by a request that
// finds nothing in it: the series have changed.
func TestImportLabelCacheBound(t *testing.T) {
	line := func(i int) string {
		return fmt.Sprintf(`{"metric":{"__name__":"m","i":"%d"},"values":[1],"timestamps":[1]}`, i)
	}
	var first, second []string
	for i := 0; i < 100; i++ {
		first, second = append(first, line(i)), append(second, line(1000+i))
	}
	cache := newImportLabelCache(20 * (100 + importCacheEntryOverhead))
	tr := ImportTranscoder{cache: cache}
	transcode := func(lines []string) {
		if _, err := tr.Transcode(nil, []byte(strings.Join(lines, "\n")), nil, 1<<30); err != nil {
			t.Fatal(err)
		}
	}
	transcode(first)
	n := len(cache.m)
	if n == 0 || n >= 100 || !cache.full() {
		t.Fatalf("%d entries, %d bytes of %d: want a full cache of some of the 100 series", n, cache.bytes, cache.limit)
	}
	transcode(first)
	if len(cache.m) != n {
		t.Fatalf("a full cache grew from %d to %d entries", n, len(cache.m))
	}
	transcode(second) // nothing found: emptied, then full of the new series
	for k := range cache.m {
		if !strings.Contains(k, `"i":"1`) || len(k) < len(`{"__name__":"m","i":"1000"}`) {
			t.Fatalf("old series %s kept after a request of new ones", k)
		}
	}
}

// Transcoders sharing a cache on several goroutines (run with -race).
func TestImportLabelCacheConcurrent(t *testing.T) {
	body := benchImportBody()
	var plain ImportTranscoder
	want, err := plain.Transcode(nil, body, nil, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	cache := newImportLabelCache(defaultImportCacheBytes)
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := ImportTranscoder{cache: cache}
			for i := 0; i < 5; i++ {
				got, err := tr.Transcode(nil, body, nil, 1<<30)
				if err != nil || string(got) != string(want) {
					errs <- fmt.Sprintf("transcode %d: %v, %d bytes, want %d", i, err, len(got), len(want))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
