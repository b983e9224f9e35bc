package directory

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/warden-schools/warden/internal/store"
)

func TestParseNetworks(t *testing.T) {
	got, err := ParseNetworks("10.20.0.0/24, 192.168.5.7\n2001:db8::/48;10.30.0.0/16")
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.20.0.0/24"), netip.MustParsePrefix("192.168.5.7/32"),
		netip.MustParsePrefix("2001:db8::/48"), netip.MustParsePrefix("10.30.0.0/16")}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseNetworks = %v, want %v", got, want)
	}
	bad := []struct{ in, msg string }{
		{"10.20.0.0/33", `network "10.20.0.0/33" is not a CIDR prefix such as 10.20.0.0/24`},
		{"10.20.0/24", `network "10.20.0/24" is not a CIDR prefix such as 10.20.0.0/24`},
		{"staffroom", `network "staffroom" is not a CIDR prefix such as 10.20.0.0/24 or an IP address`},
		{"10.20.0.5/24", "network 10.20.0.5/24 has host bits set: write 10.20.0.0/24 for the whole network, or 10.20.0.5/32 for one address"},
		{"::ffff:10.0.0.0/104", "network ::ffff:10.0.0.0/104 is an IPv4-mapped IPv6 prefix; write the IPv4 form"},
	}
	for _, tt := range bad {
		if _, err := ParseNetworks(tt.in); !errors.Is(err, ErrInvalid) || err.Error() != tt.msg {
			t.Errorf("ParseNetworks(%q) = %v, want %q", tt.in, err, tt.msg)
		}
	}
}

func TestZones(t *testing.T) {
	d, db := newTestDirectory(t)
	ctx := context.Background()
	staffRoom := Zone{ID: "staff-room", Name: "Staff room", GroupID: "staff",
		Networks: []netip.Prefix{netip.MustParsePrefix("10.20.0.0/24"), netip.MustParsePrefix("10.2.0.0/16")}}
	before := revision(t, db)
	if err := d.PutZone(ctx, "it", staffRoom); err != nil {
		t.Fatal(err)
	}
	if err := d.PutZone(ctx, "it", Zone{ID: "library", Networks: []netip.Prefix{netip.MustParsePrefix("10.40.0.0/24")}}); err != nil {
		t.Fatal(err)
	}
	if revision(t, db) != before+2 {
		t.Error("zone writes made no revisions")
	}
	zones, err := d.Zones(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []Zone{
		{ID: "library", Name: "library", Networks: []netip.Prefix{netip.MustParsePrefix("10.40.0.0/24")}},
		{ID: "staff-room", Name: "Staff room", GroupID: "staff",
			Networks: []netip.Prefix{netip.MustParsePrefix("10.2.0.0/16"), netip.MustParsePrefix("10.20.0.0/24")}},
	}
	if !reflect.DeepEqual(zones, want) {
		t.Errorf("zones\n got %+v\nwant %+v", zones, want)
	}

	// Replacing a zone replaces its networks.
	staffRoom.Networks = []netip.Prefix{netip.MustParsePrefix("10.21.0.0/24")}
	staffRoom.Description = "First floor"
	if err := d.PutZone(ctx, "it", staffRoom); err != nil {
		t.Fatal(err)
	}
	zones, _ = d.Zones(ctx)
	if z := zones[1]; z.Description != "First floor" || !reflect.DeepEqual(z.Networks, staffRoom.Networks) {
		t.Errorf("replaced zone %+v", z)
	}

	bad := []struct {
		z   Zone
		is  error
		msg string
	}{
		{Zone{ID: "Staff Room"}, ErrInvalid, `put zone: zone id "Staff Room" should be lower-case letters, digits and hyphens, as in staff-room`},
		{Zone{ID: "hall", Networks: []netip.Prefix{netip.MustParsePrefix("10.20.0.5/24")}}, ErrInvalid,
			"put zone: zone hall: network 10.20.0.5/24 has host bits set: write 10.20.0.0/24 for the whole network, or 10.20.0.5/32 for one address"},
		{Zone{ID: "hall", Networks: []netip.Prefix{{}}}, ErrInvalid, "put zone: zone hall: network invalid Prefix is not a valid CIDR prefix"},
		{Zone{ID: "hall", Networks: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16"), netip.MustParsePrefix("10.9.0.0/16")}}, ErrInvalid,
			"put zone: zone hall: network 10.9.0.0/16 is listed twice"},
		{Zone{ID: "hall", GroupID: "nope"}, store.ErrNotFound, `put zone hall: group "nope": not found`},
	}
	for _, tt := range bad {
		s := snapshot(t, db)
		if err := d.PutZone(ctx, "it", tt.z); !errors.Is(err, tt.is) || err.Error() != tt.msg {
			t.Errorf("PutZone(%+v) = %v, want %q", tt.z, err, tt.msg)
		}
		if snapshot(t, db) != s {
			t.Error("failed PutZone changed the store")
		}
	}

	if err := d.DeleteZone(ctx, "it", "library"); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteZone(ctx, "it", "library"); !errors.Is(err, store.ErrNotFound) || err.Error() != "zone library: not found" {
		t.Errorf("delete twice: %v", err)
	}
	var nets int
	db.QueryRow("SELECT COUNT(*) FROM zone_networks WHERE zone_id = 'library'").Scan(&nets)
	if nets != 0 {
		t.Error("networks of a deleted zone remain")
	}
}

func TestDeleteZoneInUseByRule(t *testing.T) {
	ctx := context.Background()
	d, db := newTestDirectory(t)
	z := Zone{ID: "staff-room", Name: "Staff room", Networks: []netip.Prefix{netip.MustParsePrefix("10.20.0.0/24")}}
	if err := d.PutZone(ctx, "test", z); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO rules (group_id, name, action, zones, created_at, updated_at)
		VALUES ('staff', 'Lunchtime', 'allow', 'classrooms staff-room', 0, 0)`); err != nil {
		t.Fatal(err)
	}
	err := d.DeleteZone(ctx, "test", "staff-room")
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "staff: Lunchtime") {
		t.Fatalf("DeleteZone of a zone in use: %v", err)
	}
	if zs, _ := d.Zones(ctx); len(zs) != 1 {
		t.Fatal("zone deleted while in use")
	}
	if _, err := db.Exec(`DELETE FROM rules`); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteZone(ctx, "test", "staff-room"); err != nil {
		t.Fatal(err)
	}
}
