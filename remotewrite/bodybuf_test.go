package remotewrite

import "testing"

func TestBodyClass(t *testing.T) {
	tests := []struct {
		n, size int
	}{
		{0, 4 << 10},
		{1, 4 << 10},
		{4 << 10, 4 << 10},
		{4<<10 + 1, 6 << 10},
		{6 << 10, 6 << 10},
		{6<<10 + 1, 8 << 10},
		{324 << 10, 384 << 10},
		{384<<10 + 1, 512 << 10},
		{12 << 20, 12 << 20},
		{16 << 20, 16 << 20},
	}
	for _, tt := range tests {
		c := bodyClass(tt.n)
		if c < 0 || bodyClassSize(c) != tt.size {
			t.Errorf("bodyClass(%d) = %d of %d bytes, want a class of %d", tt.n, c, bodyClassSize(c), tt.size)
		}
	}
	if c := bodyClass(16<<20 + 1); c != -1 {
		t.Errorf("bodyClass(16 MiB + 1) = %d, want -1 (beyond the largest class)", c)
	}
	for c := range numBodyClasses {
		if got := bodyClass(bodyClassSize(c)); got != c {
			t.Errorf("class %d (%d bytes): bodyClass of its size is %d", c, bodyClassSize(c), got)
		}
		if c > 0 && bodyClass(bodyClassSize(c-1)+1) != c {
			t.Errorf("one byte more than class %d is not class %d", c-1, c)
		}
	}
}

func TestBodyPoolsReuseByClass(t *testing.T) {
	var p bodyPools
	b := p.get(300 << 10)
	if cap(*b) != 384<<10 {
		t.Fatalf("get(300 KiB) has capacity %d, want 384 KiB", cap(*b))
	}
	*b = append(*b, 1, 2, 3)
	p.put(b)
	odd := make([]byte, 0, 100<<10) // not a class size: dropped
	p.put(&odd)
	if got := p.get(100 << 10); cap(*got) != 128<<10 {
		t.Fatalf("get(100 KiB) has capacity %d, want 128 KiB (the odd buffer is not pooled)", cap(*got))
	}
}
