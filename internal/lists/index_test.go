package lists_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/warden-schools/warden/internal/lists"
	"github.com/warden-schools/warden/internal/lists/liststest"
)

// buildIndex builds an index from name -> lists.
func buildIndex(t *testing.T, capacity int, entries map[string][]uint16) *lists.Index {
	t.Helper()
	b := lists.NewIndexBuilder(capacity)
	for name, ls := range entries {
		for _, l := range ls {
			if err := b.Add(name, l); err != nil {
				t.Fatalf("Add(%q, %d): %v", name, l, err)
			}
		}
	}
	ix, err := b.Build()
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return ix
}

// hitNames renders hits as "suffix=[lists]" for comparison.
func hitNames(ix *lists.Index, host string, hits []lists.Hit) []string {
	var out []string
	for _, h := range hits {
		out = append(out, fmt.Sprintf("%s=%v", host[h.Start:], ix.Set(h.Set)))
	}
	return out
}

func TestIndexLookup(t *testing.T) {
	ix := buildIndex(t, 0, map[string][]uint16{
		"example.com":     {0},
		"b.example.com":   {1},
		"com":             {2},
		"shared.example":  {0, 3},
		"192.0.2.1":       {4},
		"2001:db8::1":     {4},
		"0.2.1":           {5}, // not a valid name; must never match an address
		"xn--bcher-kva.x": {6},
	})
	tests := []struct {
		name string
		host string
		want []string // longest suffix first
	}{
		{name: "exact", host: "example.com", want: []string{"example.com=[0]", "com=[2]"}},
		{name: "subdomain", host: "www.example.com", want: []string{"example.com=[0]", "com=[2]"}},
		{name: "deep subdomain, longest first", host: "a.b.example.com",
			want: []string{"b.example.com=[1]", "example.com=[0]", "com=[2]"}},
		{name: "not a label boundary", host: "badexample.com", want: []string{"com=[2]"}},
		{name: "parent not covered", host: "example.org", want: nil},
		{name: "several lists", host: "www.shared.example", want: []string{"shared.example=[0 3]"}},
		{name: "IPv4 itself", host: "192.0.2.1", want: []string{"192.0.2.1=[4]"}},
		{name: "IPv4 neighbour", host: "192.0.2.2", want: nil},
		{name: "IPv4 suffix entry does not match", host: "10.0.2.1", want: nil},
		{name: "IPv6 itself", host: "2001:db8::1", want: []string{"2001:db8::1=[4]"}},
		{name: "IPv6 neighbour", host: "2001:db8::2", want: nil},
		{name: "punycode", host: "www.xn--bcher-kva.x", want: []string{"xn--bcher-kva.x=[6]"}},
		{name: "empty", host: "", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := hitNames(ix, tt.host, ix.Lookup(tt.host, nil))
			if !slices.Equal(got, tt.want) {
				t.Errorf("Lookup(%q) = %v, want %v", tt.host, got, tt.want)
			}
		})
	}
}

func TestIndexLookupAppends(t *testing.T) {
	ix := buildIndex(t, 0, map[string][]uint16{"example.com": {0}})
	var buf [4]lists.Hit
	hits := ix.Lookup("a.example.com", buf[:0])
	hits = ix.Lookup("example.com", hits)
	if len(hits) != 2 || hits[0].Start != 2 || hits[1].Start != 0 {
		t.Errorf("hits = %+v, want starts 2 then 0", hits)
	}
}

func TestIndexGetExact(t *testing.T) {
	ix := buildIndex(t, 0, map[string][]uint16{"example.com": {7}})
	if set, ok := ix.Get("example.com"); !ok || !slices.Equal(ix.Set(set), []uint16{7}) {
		t.Errorf("Get(example.com) = %v, %v; want the set [7]", set, ok)
	}
	for _, name := range []string{"www.example.com", "com", "example.co", "xample.com", ""} {
		if set, ok := ix.Get(name); ok {
			t.Errorf("Get(%q) = %v, true; want not found", name, set)
		}
	}
}

func TestIndexSets(t *testing.T) {
	b := lists.NewIndexBuilder(0)
	add := func(name string, l uint16) {
		t.Helper()
		if err := b.Add(name, l); err != nil {
			t.Fatalf("Add(%q, %d): %v", name, l, err)
		}
	}
	add("a.example", 5)
	add("a.example", 2)
	add("a.example", 5) // again: no change
	add("b.example", 2)
	add("b.example", 5)
	add("c.example", 2)
	ix, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	sa, _ := ix.Get("a.example")
	sb, _ := ix.Get("b.example")
	sc, _ := ix.Get("c.example")
	if got := ix.Set(sa); !slices.Equal(got, []uint16{2, 5}) {
		t.Errorf("Set(a.example) = %v, want [2 5] (sorted)", got)
	}
	if sa != sb {
		t.Errorf("a.example and b.example are in the same lists but have sets %d and %d", sa, sb)
	}
	if got := ix.Set(sc); !slices.Equal(got, []uint16{2}) {
		t.Errorf("Set(c.example) = %v, want [2]", got)
	}
	if got := ix.Set(0); len(got) != 0 {
		t.Errorf("Set(0) = %v, want empty", got)
	}
	if got := ix.Set(60000); got != nil {
		t.Errorf("Set(60000) = %v, want nil", got)
	}
	if ix.Len() != 3 {
		t.Errorf("Len() = %d, want 3", ix.Len())
	}
}

// TestIndexGrowth starts from the smallest table and adds far more names
// than it was sized for.
func TestIndexGrowth(t *testing.T) {
	const n = 100_000
	names := make([]string, 0, n)
	liststest.GenerateDomains(n, 7, func(d string) { names = append(names, d) })
	b := lists.NewIndexBuilder(8)
	nameBytes := 0
	for i, d := range names {
		if err := b.Add(d, uint16(i%3)); err != nil {
			t.Fatalf("Add(%q): %v", d, err)
		}
		nameBytes += len(d)
	}
	// Every name again in a second list: sets grow, the table does not.
	for i, d := range names {
		if i%10 == 0 {
			if err := b.Add(d, 9); err != nil {
				t.Fatalf("Add(%q, 9): %v", d, err)
			}
		}
	}
	ix, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if ix.Len() != n {
		t.Fatalf("Len() = %d, want %d", ix.Len(), n)
	}
	var buf [8]lists.Hit
	for i, d := range names {
		want := []uint16{uint16(i % 3)}
		if i%10 == 0 {
			want = append(want, 9)
		}
		set, ok := ix.Get(d)
		if !ok || !slices.Equal(ix.Set(set), want) {
			t.Fatalf("Get(%q) = %v (%v), %v; want %v", d, set, ix.Set(set), ok, want)
		}
		hits := ix.Lookup("www."+d, buf[:0])
		if len(hits) != 1 || hits[0].Start != 4 || hits[0].Set != set {
			t.Fatalf("Lookup(www.%s) = %+v, want one hit at 4", d, hits)
		}
		if _, ok := ix.Get("no" + d); ok {
			t.Fatalf("Get(no%s) found a name never added", d)
		}
		if _, ok := ix.Get(d + "x"); ok {
			t.Fatalf("Get(%sx) found a name never added", d)
		}
	}
	// The table keeps hashes, not names: about 14 bytes a name, whatever
	// the names' length.
	if got := ix.Bytes(); got < 10*n || got > 20*n+1024 {
		t.Errorf("Bytes() = %d for %d names (of %d bytes)", got, n, nameBytes)
	}
}

// TestIndexShrink builds with a generous capacity hint: the finished index
// must not keep the oversized table.
func TestIndexShrink(t *testing.T) {
	b := lists.NewIndexBuilder(1_000_000)
	names := []string{"a.example", "b.example", "c.example", "1.2.3.4"}
	for _, d := range names {
		for range 100 { // duplicates too
			if err := b.Add(d, 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	ix, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if ix.Len() != len(names) {
		t.Errorf("Len() = %d, want %d", ix.Len(), len(names))
	}
	for _, d := range names {
		if _, ok := ix.Get(d); !ok {
			t.Errorf("Get(%q) not found after shrinking", d)
		}
	}
	if ix.Bytes() > 4096 {
		t.Errorf("Bytes() = %d for %d names: table not shrunk", ix.Bytes(), len(names))
	}
}

func TestIndexEmptyAndNil(t *testing.T) {
	ix, err := lists.NewIndexBuilder(0).Build()
	if err != nil {
		t.Fatal(err)
	}
	var nilIndex *lists.Index
	for name, ix := range map[string]*lists.Index{"empty": ix, "nil": nilIndex} {
		t.Run(name, func(t *testing.T) {
			if ix.Len() != 0 {
				t.Errorf("Len() = %d", ix.Len())
			}
			if hits := ix.Lookup("example.com", nil); len(hits) != 0 {
				t.Errorf("Lookup = %v", hits)
			}
			if _, ok := ix.Get("example.com"); ok {
				t.Error("Get found a name")
			}
			if ix.Set(0) != nil {
				t.Errorf("Set(0) = %v", ix.Set(0))
			}
		})
	}
	if nilIndex.Bytes() != 0 {
		t.Errorf("nil Bytes() = %d", nilIndex.Bytes())
	}
}

func TestIndexAddRejects(t *testing.T) {
	b := lists.NewIndexBuilder(0)
	for _, name := range []string{"", strings.Repeat("a", 256)} {
		if err := b.Add(name, 0); !errors.Is(err, lists.ErrBadHost) {
			t.Errorf("Add(%d bytes) = %v, want ErrBadHost", len(name), err)
		}
	}
	// The builder stays usable.
	long := strings.Repeat("a", 255)
	if err := b.Add(long, 0); err != nil {
		t.Fatalf("Add(255 bytes): %v", err)
	}
	ix, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ix.Get(long); !ok || ix.Len() != 1 {
		t.Errorf("Get(255 bytes) = %v, Len() = %d", ok, ix.Len())
	}
}

func TestIndexTooManySets(t *testing.T) {
	b := lists.NewIndexBuilder(1 << 16)
	var err error
	i := 0
	for ; i < 1<<16; i++ {
		// Each name in its own list: a new set every time.
		if err = b.Add(fmt.Sprintf("n%d.example", i), uint16(i)); err != nil {
			break
		}
	}
	if !errors.Is(err, lists.ErrTooManySets) {
		t.Fatalf("after %d sets: %v, want ErrTooManySets", i, err)
	}
	if i != 1<<16-2 {
		t.Errorf("failed at set %d, want %d (65535 sets including the empty one)", i, 1<<16-2)
	}
	if err := b.Add("again.example", 0); !errors.Is(err, lists.ErrTooManySets) {
		t.Errorf("Add after failure = %v, want the same error", err)
	}
	if _, err := b.Build(); !errors.Is(err, lists.ErrTooManySets) {
		t.Errorf("Build = %v, want ErrTooManySets", err)
	}
}
