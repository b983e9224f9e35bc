package app

import (
	"slices"
	"testing"
)

// TestMemoryRelease: a release comes once per burst, after quietFor quiet
// ticks, and only when enough was allocated since the last one.
func TestMemoryRelease(t *testing.T) {
	const busy, trickle = releaseAfter / 2, quietRate / 2
	tests := []struct {
		name  string
		rates []uint64 // bytes allocated in each tick
		want  []int    // ticks (0-based) that release
	}{
		{"idle from the start", []uint64{0, 0, 0, 0, 0, 0, 0, 0}, nil},
		{"burst then quiet", []uint64{busy, busy, 0, 0, 0, 0, 0, 0, 0, 0}, []int{6}},
		{"burst then trickle", []uint64{busy, busy, trickle, trickle, trickle, trickle, trickle, trickle}, []int{6}},
		{"small burst", []uint64{busy, 0, 0, 0, 0, 0, 0, 0}, nil},
		{"quiet broken by load", []uint64{busy, busy, 0, 0, 0, 0, quietRate, 0, 0, 0, 0, 0}, []int{11}},
		{"two bursts", []uint64{busy, busy, 0, 0, 0, 0, 0, busy, busy, 0, 0, 0, 0, 0}, []int{6, 13}},
		{"one release per burst", []uint64{busy, busy, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, []int{6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := memoryRelease{last: 1000, atRelease: 1000}
			total := uint64(1000)
			var got []int
			for i, r := range tt.rates {
				total += r
				if m.observe(total) {
					got = append(got, i)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("released at ticks %v, want %v", got, tt.want)
			}
		})
	}
}
