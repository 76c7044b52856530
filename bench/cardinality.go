package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
)

// Never-seen series carry their request's number in the value of their
// instance label: the pre-built body holds churnMarker there, and the
// sender overwrites its last churnDigits bytes with the zero-padded number
// of each request just before sending it (see Pool.body).
const churnDigits = 12

// churnMarker is the placeholder appended to a never-seen series' instance
// value; no other label value of the presets contains it.
var churnMarker = "-g" + strings.Repeat("~", churnDigits)

// seriesPlan says which series every body of a pool carries. Each body has
// Series positions. Churned of them carry a never-seen series: the series
// of the distinct set at that position's index, with churnMarker in its
// instance value. The others (the steady positions) carry series of the
// distinct set: position p carries series p when the set is as large as a
// request (today's workload: the same series in every body, in the same
// order); from a larger set they are dealt from seriesStream, so bodies
// differ in composition and order and the pool carries every series.
type seriesPlan struct {
	series, distinct, churned int
	// order is a fixed pseudo-random order of the positions: the steady
	// positions of body i are order[i*k .. (i+1)*k) (mod series) with
	// k = series - churned, so over the bodies every position is steady.
	order []int32
	// steady[i] are the distinct series at body i's steady positions, in
	// position order; nil when distinct == series.
	steady [][]int32
}

// planSeed seeds the plan's pseudo-random choices: the same workload
// always gets the same plan.
const planSeed = 0xc0ffee

// minBodies is the number of bodies that carries every distinct series at
// a steady position at least once.
func minBodies(w Workload) int {
	k := w.Series - w.ChurnedPerRequest()
	if k == 0 || (w.DistinctSeries() == w.Series && k == w.Series) {
		return 1
	}
	return (w.DistinctSeries() + k - 1) / k
}

// newSeriesPlan plans n bodies of workload w.
func newSeriesPlan(w Workload, n int) *seriesPlan {
	p := &seriesPlan{series: w.Series, distinct: w.DistinctSeries(), churned: w.ChurnedPerRequest()}
	rng := rand.New(rand.NewPCG(planSeed, uint64(p.distinct)))
	p.order = make([]int32, p.series)
	for i := range p.order {
		p.order[i] = int32(i)
	}
	rng.Shuffle(len(p.order), func(i, j int) { p.order[i], p.order[j] = p.order[j], p.order[i] })
	if p.distinct == p.series {
		return p
	}
	k := p.series - p.churned
	all := make([]int32, n*k)
	st := newSeriesStream(p.distinct, rng)
	p.steady = make([][]int32, n)
	for i := range p.steady {
		p.steady[i] = st.take(all[i*k : (i+1)*k : (i+1)*k])
	}
	return p
}

// fill sets, for body i, the distinct series of every position and
// whether it is churned. slots and churned have one entry per position.
func (p *seriesPlan) fill(i int, slots []int32, churned []bool) {
	k := p.series - p.churned
	for pos := range churned {
		churned[pos] = true
	}
	for j := 0; j < k; j++ {
		churned[p.order[(i*k+j)%p.series]] = false
	}
	next := 0
	for pos := range slots {
		slots[pos] = int32(pos)
		if !churned[pos] && p.steady != nil {
			slots[pos] = p.steady[i][next]
			next++
		}
	}
}

// seriesStream deals the series 0..n-1 as one pseudo-random permutation
// after another, so every n series dealt are all n, and no take repeats a
// series even where it spans two permutations.
type seriesStream struct {
	rng  *rand.Rand
	perm []int32
	next int
}

// newSeriesStream returns a stream over n series; rng makes it repeatable.
func newSeriesStream(n int, rng *rand.Rand) *seriesStream {
	s := &seriesStream{rng: rng, perm: make([]int32, n)}
	for i := range s.perm {
		s.perm[i] = int32(i)
	}
	s.shuffle()
	return s
}

// shuffle starts the next permutation.
func (s *seriesStream) shuffle() {
	s.rng.Shuffle(len(s.perm), func(i, j int) { s.perm[i], s.perm[j] = s.perm[j], s.perm[i] })
	s.next = 0
}

// take fills dst with the next len(dst) series, which must be fewer than
// n, and returns it.
func (s *seriesStream) take(dst []int32) []int32 {
	old := copy(dst, s.perm[s.next:])
	s.next += old
	if old == len(dst) {
		return dst
	}
	taken := make(map[int32]bool, old)
	for _, v := range dst[:old] {
		taken[v] = true
	}
	s.shuffle()
	for j := old; j < len(dst); j++ {
		s.skipTaken(taken)
		dst[j] = s.perm[s.next]
		s.next++
	}
	return dst
}

// skipTaken swaps the next series of the permutation with the first later
// one not in taken, if it is in taken; the permutation stays one.
func (s *seriesStream) skipTaken(taken map[int32]bool) {
	if !taken[s.perm[s.next]] {
		return
	}
	for j := s.next + 1; j < len(s.perm); j++ {
		if !taken[s.perm[j]] {
			s.perm[s.next], s.perm[j] = s.perm[j], s.perm[s.next]
			return
		}
	}
}

// markerOffsets returns where the digits of each churnMarker start in a
// raw body; want is the number of markers the body must have.
func markerOffsets(raw []byte, want int) ([]int32, error) {
	offs := make([]int32, 0, want)
	marker := []byte(churnMarker)
	for at := 0; ; {
		k := bytes.Index(raw[at:], marker)
		if k < 0 {
			break
		}
		at += k + len(marker)
		offs = append(offs, int32(at-churnDigits))
	}
	if len(offs) != want {
		return nil, fmt.Errorf("body has %d never-seen series markers, want %d", len(offs), want)
	}
	return offs, nil
}

// patchNumber writes n, zero-padded to churnDigits, at each offset of raw.
func patchNumber(raw []byte, offs []int32, n uint64) {
	var digits [churnDigits]byte
	for i := churnDigits - 1; i >= 0; i-- {
		digits[i] = byte('0' + n%10)
		n /= 10
	}
	for _, o := range offs {
		copy(raw[o:], digits[:])
	}
}
