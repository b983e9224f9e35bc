package lists_test

import (
	"crypto/sha256"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/warden-schools/warden/internal/lists"
)

func sampleList() *lists.List {
	return &lists.List{
		Info:    lists.Info{ID: "test"},
		Domains: []string{"a.example", "b.example", "xn--bcher-kva.example", "192.0.2.1"},
		URLs:    []lists.URLKey{"a.example/x", "c.example:8080/y?z=1", "[::1]/p"},
		Hashes:  [][32]byte{sha256.Sum256([]byte("a")), sha256.Sum256([]byte("b"))},
	}
}

func TestMarshalEntriesRoundTrip(t *testing.T) {
	tests := map[string]*lists.List{
		"full":    sampleList(),
		"empty":   {},
		"domains": {Domains: []string{"example.com"}},
		"urls":    {URLs: []lists.URLKey{"example.com/a"}},
		"hashes":  {Hashes: [][32]byte{{0xff}}},
	}
	for name, l := range tests {
		t.Run(name, func(t *testing.T) {
			enc := l.MarshalEntries()
			var got lists.List
			if err := got.UnmarshalEntries(string(enc)); err != nil {
				t.Fatalf("UnmarshalEntries: %v\n%s", err, enc)
			}
			if len(got.Domains) != len(l.Domains) || len(got.URLs) != len(l.URLs) || len(got.Hashes) != len(l.Hashes) {
				t.Fatalf("decoded %d/%d/%d entries, want %d/%d/%d", len(got.Domains), len(got.URLs), len(got.Hashes),
					len(l.Domains), len(l.URLs), len(l.Hashes))
			}
			if len(l.Domains) > 0 && !reflect.DeepEqual(got.Domains, l.Domains) ||
				len(l.URLs) > 0 && !reflect.DeepEqual(got.URLs, l.URLs) ||
				len(l.Hashes) > 0 && !reflect.DeepEqual(got.Hashes, l.Hashes) {
				t.Errorf("decoded %+v, want %+v", got, l)
			}
			if again := got.MarshalEntries(); string(again) != string(enc) {
				t.Errorf("re-encoded\n%s\nwant\n%s", again, enc)
			}
			if got.Len() != l.Len() {
				t.Errorf("Len() = %d, want %d", got.Len(), l.Len())
			}
		})
	}
}

func TestMarshalEntriesFormat(t *testing.T) {
	l := &lists.List{
		Domains: []string{"a.example", "b.example"},
		URLs:    []lists.URLKey{"a.example/x"},
		Hashes:  [][32]byte{{0x01, 0xab}},
	}
	want := "warden-list 1\n" +
		"domains 2\na.example\nb.example\n" +
		"urls 1\na.example/x\n" +
		"sha256 1\n01ab" + strings.Repeat("0", 60) + "\n"
	if got := string(l.MarshalEntries()); got != want {
		t.Errorf("MarshalEntries =\n%s\nwant\n%s", got, want)
	}
}

func TestUnmarshalEntriesCorrupt(t *testing.T) {
	hash := strings.Repeat("ab", 32)
	tests := []struct {
		name string
		data string
	}{
		{"empty", ""},
		{"bad header", "warden-list 2\ndomains 0\nurls 0\nsha256 0\n"},
		{"no sections", "warden-list 1\n"},
		{"missing urls", "warden-list 1\ndomains 0\nsha256 0\n"},
		{"sections out of order", "warden-list 1\nurls 0\ndomains 0\nsha256 0\n"},
		{"count not a number", "warden-list 1\ndomains x\nurls 0\nsha256 0\n"},
		{"negative count", "warden-list 1\ndomains -1\nurls 0\nsha256 0\n"},
		{"count with sign", "warden-list 1\ndomains +1\na.example\nurls 0\nsha256 0\n"},
		{"count with leading zero", "warden-list 1\ndomains 01\na.example\nurls 0\nsha256 0\n"},
		{"count too big", "warden-list 1\ndomains 99\na.example\nurls 0\nsha256 0\n"},
		{"huge count", "warden-list 1\ndomains 99999999999999999999\nurls 0\nsha256 0\n"},
		{"count too small", "warden-list 1\ndomains 1\na.example\nb.example\nurls 0\nsha256 0\n"},
		{"section cut short", "warden-list 1\ndomains 0\nurls 0\nsha256 2\n" + hash + "\n"},
		{"no final newline", "warden-list 1\ndomains 0\nurls 0\nsha256 1\n" + hash},
		{"hash too short", "warden-list 1\ndomains 0\nurls 0\nsha256 1\n" + hash[:62] + "\n"},
		{"hash not hex", "warden-list 1\ndomains 0\nurls 0\nsha256 1\n" + strings.Repeat("zz", 32) + "\n"},
		{"hash upper case", "warden-list 1\ndomains 0\nurls 0\nsha256 1\n" + strings.ToUpper(hash) + "\n"},
		{"trailing data", "warden-list 1\ndomains 0\nurls 0\nsha256 0\nmore\n"},
		{"trailing newline", "warden-list 1\ndomains 0\nurls 0\nsha256 0\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := sampleList()
			before := string(l.MarshalEntries())
			err := l.UnmarshalEntries(tt.data)
			if !errors.Is(err, lists.ErrBadEncoding) {
				t.Fatalf("UnmarshalEntries = %v, want ErrBadEncoding", err)
			}
			if after := string(l.MarshalEntries()); after != before {
				t.Errorf("a failed decode changed the list:\n%s", after)
			}
		})
	}
}

// TestUnmarshalEntriesTruncated cuts a valid encoding at every byte.
func TestUnmarshalEntriesTruncated(t *testing.T) {
	enc := string(sampleList().MarshalEntries())
	for i := range len(enc) {
		var l lists.List
		if err := l.UnmarshalEntries(enc[:i]); !errors.Is(err, lists.ErrBadEncoding) {
			t.Fatalf("UnmarshalEntries(first %d of %d bytes) = %v, want ErrBadEncoding", i, len(enc), err)
		}
	}
}
