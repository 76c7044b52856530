package remotewrite

// MaxQueryKeys bounds the distinct query_key values counted per upstream URL
// and stored per queued block: the query key is producer input, and a
// producer sending a new one with every series must not grow the metrics
// without bound. The series of further keys count under OverflowQueryKey.
const MaxQueryKeys = 100

// OverflowQueryKey is the query_key label value of the series whose query
// key came after MaxQueryKeys others.
const OverflowQueryKey = "__other__"

// KeyTally counts what one batch holds of the series of one query key: the
// value of routing.query_key_label as received, "" for series without it.
type KeyTally struct {
	Key     string
	Series  int
	Samples int
}

// KeyTallies are the query keys of one batch, in first-seen order, each once.
// The nil value means every series of the batch has the key "".
type KeyTallies []KeyTally

// Add counts series and samples under key and returns the tallies. A key
// beyond MaxQueryKeys others counts under OverflowQueryKey.
func (t KeyTallies) Add(key string, series, samples int) KeyTallies {
	i := t.index(key)
	if i < 0 && len(t) >= MaxQueryKeys {
		key = OverflowQueryKey
		i = t.index(key)
	}
	if i < 0 {
		return append(t, KeyTally{Key: key, Series: series, Samples: samples})
	}
	t[i].Series += series
	t[i].Samples += samples
	return t
}

// index returns the position of key's tally, -1 when t has none.
func (t KeyTallies) index(key string) int {
	for i := range t {
		if t[i].Key == key {
			return i
		}
	}
	return -1
}

// Merge adds every tally of other to t and returns the tallies.
func (t KeyTallies) Merge(other KeyTallies) KeyTallies {
	for _, o := range other {
		t = t.Add(o.Key, o.Series, o.Samples)
	}
	return t
}
