package accesslog

import (
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/warden-schools/warden/internal/events"
)

func encoded(t testing.TB, batch []events.Event) []byte {
	t.Helper()
	var enc encoder
	s, err := enc.encode(batch)
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), s.data...)
}

func TestEncodeLimits(t *testing.T) {
	var enc encoder
	if _, err := enc.encode(nil); err == nil {
		t.Error("encoded an empty batch")
	}
	if _, err := enc.encode(make([]events.Event, maxSegmentEvents+1)); err == nil {
		t.Error("encoded more than a segment holds")
	}
}

func TestUnknownAndMissingColumns(t *testing.T) {
	e := full(1)
	blob := encoded(t, []events.Event{e, e})
	// A column from a later version is skipped.
	later := appendColumn(append([]byte(nil), blob...), 200, []byte("from the future"))
	var r reader
	got, err := r.decodeSegment(later, nil)
	if err != nil || len(got) != 2 || got[1] != stored(e) {
		t.Fatalf("with an unknown column: %v, %+v", err, got)
	}
	// A segment with only a time column: every other field is zero.
	var only []byte
	only = append(only, segmentFormat)
	only = binary.AppendUvarint(only, 1)
	only = appendColumn(only, colTime, binary.AppendVarint([]byte{intConst}, e.Time.UnixMicro()))
	got, err = r.decodeSegment(only, nil)
	if err != nil || len(got) != 1 || got[0] != (events.Event{Time: stored(e).Time}) {
		t.Fatalf("with columns missing: %v, %+v", err, got)
	}
}

func TestCorruptBlobs(t *testing.T) {
	batch := []events.Event{full(1), full(2), {Time: base}}
	batch[1].ClientIP = netip.MustParseAddr("fe80::1%eth0")
	blob := encoded(t, batch)
	var r reader
	if _, err := r.decodeSegment(blob, nil); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]byte{nil, {}, {2, 1}, {1}, {1, 0}, {1, 0xff, 0xff, 0xff, 0xff}, {1, 1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f}} {
		if _, err := r.decodeSegment(bad, nil); err == nil {
			t.Errorf("decoded % x", bad)
		}
	}
	// Every truncation and every byte changed: an error or a segment,
	// never a panic.
	q := newQuery(Filter{Host: "host", Group: "key-stage-4", PersonID: 1042})
	for n := range blob {
		r.decodeSegment(blob[:n], nil)
		r.match(1, blob[:n], &q, 10, nil)
	}
	for i := range blob {
		for _, x := range []byte{0x01, 0x80, 0xff} {
			b := append([]byte(nil), blob...)
			b[i] ^= x
			r.decodeSegment(b, nil)
			r.match(1, b, &q, 10, nil)
		}
	}
}

// FuzzDecodeSegment feeds the decoder and the query matcher arbitrary
// blobs: they must return an error rather than panic, and a blob that
// decodes must encode to one that decodes the same.
func FuzzDecodeSegment(f *testing.F) {
	tr := newTraffic(3, 50, 20, 200)
	tr.rare = 0.05
	f.Add(encoded(f, tr.events(nil, 40, time.Second)))
	f.Add(encoded(f, []events.Event{full(1), {}, full(2)}))
	f.Add(encoded(f, []events.Event{{Time: base, ClientIP: netip.MustParseAddr("fe80::1%eth0"), Host: "Ünï.example"}}))
	f.Add([]byte{1, 1})
	f.Add([]byte{1, 2, 7, 9, 2, 1, 0, 0, 0, 0, 0, 0, 0})
	queries := []query{newQuery(Filter{}), newQuery(Filter{Host: "e", PersonID: 1, Action: "block"}),
		newQuery(Filter{Host: "ü", DeviceID: 1, Group: "staff", From: base, To: base.Add(time.Hour), Before: 1<<16 | 3})}
	f.Fuzz(func(t *testing.T, blob []byte) {
		var r reader
		for i := range queries {
			r.match(1, blob, &queries[i], 100, nil)
		}
		got, err := r.decodeSegment(blob, nil)
		if err != nil {
			return
		}
		var enc encoder
		s, err := enc.encode(got)
		if err != nil {
			t.Fatalf("decoded %d events that do not encode: %v", len(got), err)
		}
		again, err := r.decodeSegment(s.data, nil)
		if err != nil || len(again) != len(got) {
			t.Fatalf("re-encoded segment: %v", err)
		}
		for i := range got {
			if again[i] != got[i] {
				t.Fatalf("event %d: %+v became %+v", i, got[i], again[i])
			}
		}
	})
}

func TestLowerASCII(t *testing.T) {
	for _, s := range []string{"", "a", "ABCDEFGHIJKLMNOPQRSTUVWXYZ@[`{", "Mixed.Case-Host.EXAMPLE.com", "0123456789:;<=>?@AZaz[\\]^_`{|}~\x7f\x00"} {
		got, ok := lowerASCII([]byte("x"), []byte(s))
		if !ok || string(got) != "x"+strings.ToLower(s) {
			t.Errorf("lowerASCII(%q) = %q, %v", s, got, ok)
		}
	}
	if _, ok := lowerASCII(nil, []byte("Ünïcode.example")); ok {
		t.Error("lowerASCII took non-ASCII")
	}
}

func TestGramFilter(t *testing.T) {
	tr := newTraffic(5, 10, 10, 3000)
	hosts := append([]string{"UPPER.Example.COM", "ünïcode.Example", "ab", "x", rareHost}, tr.hosts...)
	var d strDict
	d.reset(len(hosts), maphash.MakeSeed())
	d.addAll(hosts)
	var g gramFilter
	g.reset()
	body := d.appendBody(nil)
	g.addText(body[d.text[0]:d.text[1]], d.folded, d.vals)
	f := g.appendBytes()
	if m := len(f) * 8; m < gramMinBits || m&(m-1) != 0 {
		t.Fatalf("filter of %d bytes", len(f))
	}
	// No false negatives: every substring of every host may be there.
	for _, h := range hosts {
		l := strings.ToLower(h)
		for i := 0; i < len(l); i += 3 {
			for j := i + 1; j <= len(l) && j <= i+12; j++ {
				if !gramsMayHold(f, l[i:j]) {
					t.Fatalf("filter lacks %q of %q", l[i:j], h)
				}
			}
		}
	}
	misses := 0
	for i := range 1000 {
		if !gramsMayHold(f, fmt.Sprintf("zq%dxj-absent", i)) {
			misses++
		}
	}
	if misses < 900 {
		t.Errorf("the filter rejects only %d of 1000 absent hosts", misses)
	}
	misses, odd := 0, "!#$%&*+,;=?@^~"
	for i := range len(odd) {
		for j := range len(odd) {
			if !gramsMayHold(f, string([]byte{odd[i], odd[j]})) {
				misses++
			}
		}
	}
	if misses < len(odd)*len(odd)/2 {
		t.Errorf("the filter rejects only %d of %d absent bigrams", misses, len(odd)*len(odd))
	}
	if !gramsMayHold(nil, "a") || gramsMayHold(nil, "ab") || !gramsMayHold([]byte{1, 2, 3}, "abc") {
		t.Error("gramsMayHold without a usable filter")
	}
}

func TestPacking(t *testing.T) {
	for _, n := range []int{1, 2, 3, 5, 8, 9, 17, 100, 255, 256, 257, 1000, 4097, 65535} {
		for _, rows := range []int{1, 7, 8, 63, 64, 65, 1000} {
			in := make([]uint16, rows)
			for i := range in {
				in[i] = uint16((i*7919 + n) % n)
			}
			var p packed
			if err := p.set(appendIndexes(nil, in, n), rows, n); err != nil {
				t.Fatalf("n %d, rows %d: %v", n, rows, err)
			}
			for i, v := range in {
				if got := p.at(i); got != uint32(v) {
					t.Fatalf("n %d, rows %d: row %d = %d, want %d", n, rows, i, got, v)
				}
			}
		}
	}
	for _, s := range []string{"", "abc", "abcdefgh.ijklmnop", "abcdefgH", "Abc", "\x80", "abcdefgh\xc3\xbc", "@[`{"} {
		if got, want := isFolded([]byte(s)), strings.ToLower(s) == s && isASCII(s); got != want {
			t.Errorf("isFolded(%q) = %v", s, got)
		}
	}
}

func isASCII(s string) bool {
	for i := range len(s) {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
