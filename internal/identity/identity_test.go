package identity

import (
	"bytes"
	"crypto/rand"
	"net/netip"
	"strings"
	"testing"
)

func TestTable(t *testing.T) {
	tab := New(Data{
		Devices: []Device{
			{ID: 1, Name: "ks2-ipad-01", IP: netip.MustParseAddr("10.30.1.21"), GroupID: "key-stage-2"},
			{ID: 2, Name: "dsl-laptop", IP: netip.MustParseAddr("10.20.0.15"), OwnerID: 7, TokenHash: HashToken("secret-token")},
			{ID: 3, Name: "orphan", IP: netip.MustParseAddr("10.40.0.1")},
		},
		People: []Person{{ID: 7, Name: "Alfie Williams", GroupID: "staff"}},
		Zones: []Zone{
			{ID: "staff-room", Networks: []netip.Prefix{netip.MustParsePrefix("10.20.0.0/24")}},
			{ID: "guest-wifi", GroupID: "visitors", Networks: []netip.Prefix{netip.MustParsePrefix("10.99.0.0/16")}},
		},
		UnknownGroup: "unknown",
	})
	tests := []struct {
		name  string
		got   Subject
		group string
		via   string
		zone  string
		dev   string
	}{
		{"device with own group", tab.ByAddr(netip.MustParseAddr("10.30.1.21")), "key-stage-2", ByDeviceIP, "", "ks2-ipad-01"},
		{"device takes owner's group", tab.ByAddr(netip.MustParseAddr("10.20.0.15")), "staff", ByDeviceIP, "staff-room", "dsl-laptop"},
		{"IPv4-mapped address", tab.ByAddr(netip.MustParseAddr("::ffff:10.30.1.21")), "key-stage-2", ByDeviceIP, "", "ks2-ipad-01"},
		{"zone with group", tab.ByAddr(netip.MustParseAddr("10.99.3.4")), "visitors", ByZone, "guest-wifi", ""},
		{"zone without group", tab.ByAddr(netip.MustParseAddr("10.20.0.99")), "unknown", Unknown, "staff-room", ""},
		{"nothing known", tab.ByAddr(netip.MustParseAddr("192.0.2.1")), "unknown", Unknown, "", ""},
		{"device with no group anywhere", tab.ByAddr(netip.MustParseAddr("10.40.0.1")), "unknown", ByDeviceIP, "", "orphan"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got.Group != tt.group || tt.got.Via != tt.via || tt.got.Zone != tt.zone || tt.got.Device != tt.dev {
				t.Errorf("got %+v, want group=%s via=%s zone=%s device=%s", tt.got, tt.group, tt.via, tt.zone, tt.dev)
			}
		})
	}
	s, ok := tab.ByToken("secret-token", netip.MustParseAddr("203.0.113.9"))
	if !ok || s.Group != "staff" || s.Via != ByToken || s.Person != "Alfie Williams" {
		t.Errorf("ByToken = %+v, %v", s, ok)
	}
	if _, ok := tab.ByToken("wrong", netip.Addr{}); ok {
		t.Error("wrong token accepted")
	}
}

func TestNewToken(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 50; i++ {
		tok, err := NewToken(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if !ValidToken(tok) || len(tok) > 63 {
			t.Fatalf("token %q is not a valid token or DNS label", tok)
		}
		if seen[tok] {
			t.Fatalf("token %q issued twice", tok)
		}
		seen[tok] = true
	}
	// The same bytes give the same token: the encoding is fixed.
	zero, err := NewToken(bytes.NewReader(make([]byte, 32)))
	if err != nil || zero != strings.Repeat("a", TokenLen) {
		t.Errorf("token of zero bytes = %q, %v", zero, err)
	}
	if _, err := NewToken(bytes.NewReader(make([]byte, 31))); err == nil {
		t.Error("a short random source gave a token")
	}
}

func TestValidToken(t *testing.T) {
	good := strings.Repeat("a", TokenLen-2) + "27"
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"valid", good, true},
		{"too short", good[1:], false},
		{"too long", good + "a", false},
		{"upper case", strings.ToUpper(good), false},
		{"digit outside base32", good[:TokenLen-1] + "1", false},
		{"dot", good[:TokenLen-1] + ".", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidToken(tt.in); got != tt.want {
				t.Errorf("ValidToken(%q) = %v", tt.in, got)
			}
		})
	}
}

func TestByPerson(t *testing.T) {
	tab := New(Data{UnknownGroup: "unknown"})
	if s := tab.ByPerson(Person{ID: 7, Name: "Mia Jones", GroupID: "key-stage-2"}); s != (Subject{PersonID: 7, Person: "Mia Jones", Group: "key-stage-2", Via: ByUser}) {
		t.Errorf("ByPerson with a group = %+v", s)
	}
	if s := tab.ByPerson(Person{ID: 8, Name: "New Starter"}); s.Group != "unknown" || s.Via != ByUser {
		t.Errorf("ByPerson without a group = %+v, want the unknown-client group", s)
	}
}
