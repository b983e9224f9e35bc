package directory

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/warden-schools/warden/internal/store"
	"github.com/warden-schools/warden/internal/wardentest"
)

func TestNormalizeMAC(t *testing.T) {
	good := map[string]string{
		"aa:bb:cc:dd:ee:ff": "aa:bb:cc:dd:ee:ff",
		"AA:BB:CC:DD:EE:FF": "aa:bb:cc:dd:ee:ff",
		"AA-BB-CC-DD-EE-FF": "aa:bb:cc:dd:ee:ff",
		"aabb.ccdd.eeff":    "aa:bb:cc:dd:ee:ff",
		"AABBCCDDEEFF":      "aa:bb:cc:dd:ee:ff",
		" 0:1b:2:3c:4:5d ":  "00:1b:02:3c:04:5d",
	}
	for in, want := range good {
		if got, err := NormalizeMAC(in); err != nil || got != want {
			t.Errorf("NormalizeMAC(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "aa:bb:cc:dd:ee", "aa:bb:cc:dd:ee:ff:00", "gg:bb:cc:dd:ee:ff", "aabb.ccdd", "aa:bb-cc:dd:ee:ff",
		"aaa:bb:cc:dd:ee:f", "aa::bb:cc:dd:ee", "aabbccddeeff00"} {
		if got, err := NormalizeMAC(in); !errors.Is(err, ErrInvalid) {
			t.Errorf("NormalizeMAC(%q) = %q, %v; want an error", in, got, err)
		}
	}
}

func TestDevices(t *testing.T) {
	d, db := newTestDirectory(t)
	ctx := context.Background()
	owner, err := d.AddPerson(ctx, "it", Person{Kind: KindStaff, LegalForename: "Kacper", Surname: "Wilson", MISID: "S010"})
	if err != nil {
		t.Fatal(err)
	}
	id, err := d.AddDevice(ctx, "it", Device{Name: "Lab-PC-01", IP: netip.MustParseAddr("::ffff:10.20.1.11"),
		MAC: "00-1B-2C-3D-4E-5F", GroupID: "key-stage-2", Notes: "ICT suite\nback row"})
	if err != nil {
		t.Fatal(err)
	}
	dev, err := d.DeviceByName(ctx, "lab-pc-01")
	if err != nil {
		t.Fatal(err)
	}
	if dev.ID != id || dev.Kind != DeviceSchool || dev.IP != netip.MustParseAddr("10.20.1.11") || dev.MAC != "00:1b:2c:3d:4e:5f" ||
		dev.GroupID != "key-stage-2" || dev.OwnerID != 0 || !dev.CreatedAt.Equal(testNow) || dev.Notes != "ICT suite\nback row" {
		t.Errorf("device %+v", dev)
	}

	// Another device on the same IP, MAC or name conflicts.
	conflicts := []struct {
		dev Device
		msg string
	}{
		{Device{Name: "Lab-PC-02", IP: netip.MustParseAddr("10.20.1.11")},
			`add device "Lab-PC-02": IP address 10.20.1.11 is already used by device "Lab-PC-01": conflicts with an existing record`},
		{Device{Name: "Lab-PC-02", MAC: "001b2c3d4e5f"},
			`add device "Lab-PC-02": MAC address 00:1b:2c:3d:4e:5f is already used by device "Lab-PC-01": conflicts with an existing record`},
		{Device{Name: "Lab-PC-01"},
			`add device "Lab-PC-01": name Lab-PC-01 is already used by device "Lab-PC-01": conflicts with an existing record`},
	}
	for _, c := range conflicts {
		before := snapshot(t, db)
		if _, err := d.AddDevice(ctx, "it", c.dev); !errors.Is(err, store.ErrConflict) || err.Error() != c.msg {
			t.Errorf("AddDevice(%+v) = %v, want %q", c.dev, err, c.msg)
		}
		if snapshot(t, db) != before {
			t.Error("conflicting add changed the store")
		}
	}

	token := strings.Repeat("ab", 32)
	id2, err := d.AddDevice(ctx, "it", Device{Name: "Kacper's laptop", Kind: DevicePersonal, OwnerID: owner, IP: netip.MustParseAddr("10.20.1.12"), TokenHash: token})
	if err != nil {
		t.Fatal(err)
	}
	dev2, err := d.Device(ctx, id2)
	if err != nil {
		t.Fatal(err)
	}
	// Moving it onto the first device's address conflicts; elsewhere is fine.
	dev2.IP = netip.MustParseAddr("10.20.1.11")
	if err := d.UpdateDevice(ctx, "it", dev2); !errors.Is(err, store.ErrConflict) {
		t.Errorf("update onto a used IP: %v", err)
	}
	dev2.IP = netip.MustParseAddr("10.20.1.13")
	dev2.MAC = "AA:BB:CC:00:11:22"
	dev2.TokenHash = ""
	if err := d.UpdateDevice(ctx, "it", dev2); err != nil {
		t.Fatal(err)
	}
	var tokenAt *int64
	db.QueryRow("SELECT token_created_at FROM devices WHERE id = ?", id2).Scan(&tokenAt)
	if tokenAt != nil {
		t.Error("token time kept after the token was removed")
	}
	devs, err := d.Devices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) != 2 || devs[0].Name != "Kacper's laptop" || devs[0].MAC != "aa:bb:cc:00:11:22" || devs[0].OwnerID != owner ||
		devs[0].IP != netip.MustParseAddr("10.20.1.13") || devs[0].Kind != DevicePersonal || devs[1].Name != "Lab-PC-01" {
		t.Errorf("devices %+v", devs)
	}

	invalid := []struct {
		dev Device
		is  error
	}{
		{Device{Name: ""}, ErrInvalid},
		{Device{Name: "x", Kind: "borrowed"}, ErrInvalid},
		{Device{Name: "x", MAC: "not a mac"}, ErrInvalid},
		{Device{Name: "x", TokenHash: "abc"}, ErrInvalid},
		{Device{Name: "x", IP: netip.MustParseAddr("0.0.0.0")}, ErrInvalid},
		{Device{Name: "x", OwnerID: 999}, store.ErrNotFound},
		{Device{Name: "x", GroupID: "nope"}, store.ErrNotFound},
	}
	for _, tt := range invalid {
		if _, err := d.AddDevice(ctx, "it", tt.dev); !errors.Is(err, tt.is) {
			t.Errorf("AddDevice(%+v) = %v, want %v", tt.dev, err, tt.is)
		}
	}
	if err := d.UpdateDevice(ctx, "it", Device{ID: 999, Name: "x"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("update missing: %v", err)
	}
	if _, err := d.DeviceByName(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeviceByName missing: %v", err)
	}
	if err := d.DeleteDevice(ctx, "it", id); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteDevice(ctx, "it", id); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("delete twice: %v", err)
	}
}

func TestSetDeviceToken(t *testing.T) {
	d, db := newTestDirectory(t)
	ctx := context.Background()
	id, err := d.AddDevice(ctx, "it", Device{Name: "loan-laptop-07", GroupID: "key-stage-2"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := d.AddDevice(ctx, "it", Device{Name: "loan-laptop-08"})
	if err != nil {
		t.Fatal(err)
	}
	first, second := strings.Repeat("1a", 32), strings.Repeat("2b", 32)
	steps := []struct {
		name  string
		id    int64
		hash  string
		is    error
		want  string // the device's token hash afterwards
		moved bool   // a new policy version
	}{
		{name: "issue", id: id, hash: first, want: first, moved: true},
		{name: "issue again replaces", id: id, hash: strings.ToUpper(second), want: second, moved: true},
		{name: "another device's token conflicts", id: other, hash: second, is: store.ErrConflict, want: second},
		{name: "malformed hash", id: id, hash: "abc", is: ErrInvalid, want: second},
		{name: "missing device", id: 999, hash: first, is: store.ErrNotFound, want: second},
		{name: "revoke", id: id, hash: "", want: "", moved: true},
		{name: "revoke again", id: id, hash: "", want: "", moved: true},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			before := wardentest.Revision(t, db)
			err := d.SetDeviceToken(ctx, "it", st.id, st.hash)
			if st.is == nil && err != nil || st.is != nil && !errors.Is(err, st.is) {
				t.Fatalf("SetDeviceToken = %v, want %v", err, st.is)
			}
			dev, err := d.Device(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if dev.TokenHash != st.want {
				t.Errorf("token hash %q, want %q", dev.TokenHash, st.want)
			}
			if (st.want != "") != !dev.TokenCreatedAt.IsZero() || st.want != "" && !dev.TokenCreatedAt.Equal(testNow) {
				t.Errorf("token issued at %v", dev.TokenCreatedAt)
			}
			if moved := wardentest.Revision(t, db) != before; moved != st.moved {
				t.Errorf("policy version moved = %v, want %v", moved, st.moved)
			}
		})
	}
	// The other device still has no token, and the token column is clear.
	if dev, _ := d.Device(ctx, other); dev.TokenHash != "" || !dev.TokenCreatedAt.IsZero() {
		t.Errorf("other device %+v", dev)
	}
	var tokenAt *int64
	if err := db.QueryRow("SELECT token_created_at FROM devices WHERE id = ?", id).Scan(&tokenAt); err != nil || tokenAt != nil {
		t.Errorf("token time after revoking: %v, %v", tokenAt, err)
	}
}
