package directory

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/warden-schools/warden/internal/store"
)

// Device kinds.
const (
	DeviceSchool   = "school"
	DevicePersonal = "personal"
)

// Device is a school-owned or personal device that the filter can
// identify by its fixed IP address, its MAC address (through DHCP) or a
// device token (DNS over HTTPS/TLS); only the token's SHA-256 is stored.
type Device struct {
	ID   int64
	Name string
	// Kind is DeviceSchool or DevicePersonal; "" means DeviceSchool.
	Kind string
	// OwnerID is the person the device belongs to or is lent to; 0 = none.
	OwnerID int64
	// GroupID is the policy group for the device; "" = its owner's.
	GroupID string
	// IP is a fixed address; the zero Addr means none.
	IP netip.Addr
	// MAC is normalised to lower-case aa:bb:cc:dd:ee:ff; "" = none.
	MAC string
	// TokenHash is the hex SHA-256 of the device token; "" = none.
	TokenHash string
	// TokenCreatedAt is when the token was issued; zero = no token.
	TokenCreatedAt time.Time
	Notes          string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// maxNotesLen bounds device notes.
const maxNotesLen = 2000

// NormalizeMAC reads a MAC address written as aa:bb:cc:dd:ee:ff,
// AA-BB-CC-DD-EE-FF, aabb.ccdd.eeff, aabbccddeeff or a:b:c:d:e:f and
// returns the lower-case colon form.
func NormalizeMAC(s string) (string, error) {
	orig := strings.TrimSpace(s)
	bad := invalidf("MAC address %q not recognised (want six hex pairs, as in aa:bb:cc:dd:ee:ff)", trunc(orig))
	var hex string
	switch {
	case strings.ContainsAny(orig, ":-"):
		sep := ":"
		if !strings.Contains(orig, ":") {
			sep = "-"
		}
		parts := strings.Split(orig, sep)
		if len(parts) != 6 {
			return "", bad
		}
		for _, p := range parts {
			if len(p) < 1 || len(p) > 2 {
				return "", bad
			}
			if len(p) == 1 {
				p = "0" + p
			}
			hex += p
		}
	case strings.Contains(orig, "."):
		parts := strings.Split(orig, ".")
		if len(parts) != 3 {
			return "", bad
		}
		for _, p := range parts {
			if len(p) != 4 {
				return "", bad
			}
			hex += p
		}
	default:
		hex = orig
	}
	hex = strings.ToLower(hex)
	if len(hex) != 12 || strings.Trim(hex, "0123456789abcdef") != "" {
		return "", bad
	}
	var b strings.Builder
	for i := 0; i < 12; i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(hex[i : i+2])
	}
	return b.String(), nil
}

// normalize checks and tidies a device before it is written.
func (dev *Device) normalize() error {
	var err error
	if dev.Name, err = cleanText("device name", dev.Name, maxTextLen); err != nil {
		return err
	}
	if dev.Name == "" {
		return invalidf("device name is required")
	}
	switch dev.Kind {
	case "":
		dev.Kind = DeviceSchool
	case DeviceSchool, DevicePersonal:
	default:
		return invalidf("device kind %q not recognised (want school or personal)", trunc(dev.Kind))
	}
	if dev.IP.IsValid() {
		if dev.IP.Zone() != "" {
			return invalidf("device IP address %s has a zone; give the address alone", dev.IP)
		}
		dev.IP = dev.IP.Unmap()
		if dev.IP.IsUnspecified() || dev.IP.IsMulticast() {
			return invalidf("device IP address %s cannot belong to a device", dev.IP)
		}
	}
	if dev.MAC != "" {
		if dev.MAC, err = NormalizeMAC(dev.MAC); err != nil {
			return err
		}
	}
	dev.TokenHash = strings.ToLower(strings.TrimSpace(dev.TokenHash))
	if dev.TokenHash != "" && (len(dev.TokenHash) != 64 || strings.Trim(dev.TokenHash, "0123456789abcdef") != "") {
		return invalidf("device token hash should be 64 hex digits (a SHA-256)")
	}
	if dev.Notes, err = cleanNotes(dev.Notes); err != nil {
		return err
	}
	return nil
}

// cleanNotes trims notes, which may span lines, and rejects other control
// characters.
func cleanNotes(s string) (string, error) {
	s = strings.TrimSpace(s)
	for _, r := range s {
		if r < 0x20 && r != '\n' && r != '\r' && r != '\t' || r == 0x7f {
			return "", invalidf("notes contain a control character")
		}
	}
	if len([]rune(s)) > maxNotesLen {
		return "", invalidf("notes are longer than %d characters", maxNotesLen)
	}
	return s, nil
}

// ipString stores an address, NULL for none.
func ipString(a netip.Addr) any {
	if !a.IsValid() {
		return nil
	}
	return a.String()
}

const deviceColumns = "id, name, kind, owner_id, group_id, ip, mac, token_hash, token_created_at, notes, created_at, updated_at"

// scanDevice reads one row of deviceColumns.
func scanDevice(scan func(...any) error) (Device, error) {
	var (
		dev                   Device
		owner                 sql.NullInt64
		group, ip, mac, token sql.NullString
		tokenAt               sql.NullInt64
		created, updated      int64
	)
	if err := scan(&dev.ID, &dev.Name, &dev.Kind, &owner, &group, &ip, &mac, &token, &tokenAt, &dev.Notes, &created, &updated); err != nil {
		return Device{}, err
	}
	dev.OwnerID = owner.Int64
	dev.GroupID, dev.MAC, dev.TokenHash = scanNullString(group), scanNullString(mac), scanNullString(token)
	if ip.Valid {
		a, err := netip.ParseAddr(ip.String)
		if err != nil {
			return Device{}, fmt.Errorf("device %d: stored IP address %q: %w", dev.ID, ip.String, err)
		}
		dev.IP = a
	}
	if tokenAt.Valid && dev.TokenHash != "" {
		dev.TokenCreatedAt = store.FromMillis(tokenAt.Int64)
	}
	dev.CreatedAt, dev.UpdatedAt = store.FromMillis(created), store.FromMillis(updated)
	return dev, nil
}

// checkDeviceRefs checks that the owner and group exist and that no other
// device has the same name, IP, MAC or token.
func checkDeviceRefs(ctx context.Context, q store.Querier, dev Device) error {
	if dev.OwnerID != 0 {
		if _, err := getPerson(ctx, q, dev.OwnerID); err != nil {
			return fmt.Errorf("owner: %w", err)
		}
	}
	if err := checkGroup(ctx, q, dev.GroupID); err != nil {
		return err
	}
	checks := []struct {
		what, col string
		val       any
	}{
		{"name " + dev.Name, "name", dev.Name},
		{"IP address " + dev.IP.String(), "ip", ipString(dev.IP)},
		{"MAC address " + dev.MAC, "mac", nullString(dev.MAC)},
		{"device token", "token_hash", nullString(dev.TokenHash)},
	}
	for _, c := range checks {
		if c.val == nil {
			continue
		}
		var other string
		err := q.QueryRowContext(ctx, q.Rebind("SELECT name FROM devices WHERE "+c.col+" = ? AND id <> ? LIMIT 1"), c.val, dev.ID).Scan(&other)
		if err == nil {
			return fmt.Errorf("%s is already used by device %q: %w", c.what, other, store.ErrConflict)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("check device %s: %w", c.what, err)
		}
	}
	return nil
}

// AddDevice adds a device and returns its id. It returns an ErrInvalid
// error for a bad name, kind, address or token hash, a wrapped
// store.ErrNotFound for an unknown owner or group, and a wrapped
// store.ErrConflict when another device has the same name, IP, MAC or
// token.
func (d *Directory) AddDevice(ctx context.Context, actor string, dev Device) (int64, error) {
	dev.ID = 0
	if err := dev.normalize(); err != nil {
		return 0, fmt.Errorf("add device: %w", err)
	}
	var id int64
	err := d.db.WithTx(ctx, func(tx *store.Tx) error {
		if err := checkDeviceRefs(ctx, tx, dev); err != nil {
			return err
		}
		at := store.Millis(d.now())
		var tokenAt any
		if dev.TokenHash != "" {
			tokenAt = at
		}
		err := tx.QueryRowContext(ctx, tx.Rebind(`INSERT INTO devices (name, kind, owner_id, group_id, ip, mac, token_hash,
			token_created_at, notes, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`),
			dev.Name, dev.Kind, nullID(dev.OwnerID), nullString(dev.GroupID), ipString(dev.IP), nullString(dev.MAC),
			nullString(dev.TokenHash), tokenAt, dev.Notes, at, at).Scan(&id)
		if store.IsUniqueViolation(err) {
			return fmt.Errorf("%w: %v", store.ErrConflict, err)
		}
		if err != nil {
			return err
		}
		_, err = store.AddRevision(ctx, tx, d.now(), actor, fmt.Sprintf("add device %q", dev.Name))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("add device %q: %w", dev.Name, err)
	}
	return id, nil
}

// UpdateDevice rewrites the device with dev.ID, with the same checks as
// AddDevice; a missing device is a wrapped store.ErrNotFound. Setting a
// different TokenHash restarts the token's age.
func (d *Directory) UpdateDevice(ctx context.Context, actor string, dev Device) error {
	if err := dev.normalize(); err != nil {
		return fmt.Errorf("update device %d: %w", dev.ID, err)
	}
	err := d.db.WithTx(ctx, func(tx *store.Tx) error {
		old, err := getDevice(ctx, tx, dev.ID)
		if err != nil {
			return err
		}
		if err := checkDeviceRefs(ctx, tx, dev); err != nil {
			return err
		}
		at := store.Millis(d.now())
		q := `UPDATE devices SET name = ?, kind = ?, owner_id = ?, group_id = ?, ip = ?, mac = ?, token_hash = ?,
			notes = ?, updated_at = ?`
		args := []any{dev.Name, dev.Kind, nullID(dev.OwnerID), nullString(dev.GroupID), ipString(dev.IP),
			nullString(dev.MAC), nullString(dev.TokenHash), dev.Notes, at}
		if old.TokenHash != dev.TokenHash {
			q += ", token_created_at = ?"
			if dev.TokenHash == "" {
				args = append(args, nil)
			} else {
				args = append(args, at)
			}
		}
		args = append(args, dev.ID)
		_, err = tx.ExecContext(ctx, tx.Rebind(q+" WHERE id = ?"), args...)
		if store.IsUniqueViolation(err) {
			return fmt.Errorf("%w: %v", store.ErrConflict, err)
		}
		if err != nil {
			return err
		}
		_, err = store.AddRevision(ctx, tx, d.now(), actor, fmt.Sprintf("update device %q", dev.Name))
		return err
	})
	if err != nil {
		return fmt.Errorf("update device %d: %w", dev.ID, err)
	}
	return nil
}

// SetDeviceToken gives the device with this id a new token, by its hex
// SHA-256 (identity.HashToken), replacing any earlier one, or takes its
// token away when tokenHash is "". The change is a new policy version, so
// running filters stop accepting the old token at their next reload. A
// malformed hash is an ErrInvalid error, a missing device a wrapped
// store.ErrNotFound, and a hash another device holds a wrapped
// store.ErrConflict.
func (d *Directory) SetDeviceToken(ctx context.Context, actor string, id int64, tokenHash string) error {
	tokenHash = strings.ToLower(strings.TrimSpace(tokenHash))
	if tokenHash != "" && (len(tokenHash) != 64 || strings.Trim(tokenHash, "0123456789abcdef") != "") {
		return fmt.Errorf("set device %d token: %w", id, invalidf("device token hash should be 64 hex digits (a SHA-256)"))
	}
	err := d.db.WithTx(ctx, func(tx *store.Tx) error {
		dev, err := getDevice(ctx, tx, id)
		if err != nil {
			return err
		}
		at := store.Millis(d.now())
		var tokenAt any
		what := fmt.Sprintf("revoke the token of device %q", dev.Name)
		if tokenHash != "" {
			tokenAt = at
			what = fmt.Sprintf("issue a token to device %q", dev.Name)
		}
		_, err = tx.ExecContext(ctx, tx.Rebind("UPDATE devices SET token_hash = ?, token_created_at = ?, updated_at = ? WHERE id = ?"),
			nullString(tokenHash), tokenAt, at, id)
		if store.IsUniqueViolation(err) {
			return fmt.Errorf("device token is already used by another device: %w", store.ErrConflict)
		}
		if err != nil {
			return err
		}
		_, err = store.AddRevision(ctx, tx, d.now(), actor, what)
		return err
	})
	if err != nil {
		return fmt.Errorf("set device %d token: %w", id, err)
	}
	return nil
}

// DeleteDevice removes a device; a missing device is a wrapped
// store.ErrNotFound.
func (d *Directory) DeleteDevice(ctx context.Context, actor string, id int64) error {
	err := d.db.WithTx(ctx, func(tx *store.Tx) error {
		dev, err := getDevice(ctx, tx, id)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, tx.Rebind("DELETE FROM devices WHERE id = ?"), id); err != nil {
			return err
		}
		_, err = store.AddRevision(ctx, tx, d.now(), actor, fmt.Sprintf("delete device %q", dev.Name))
		return err
	})
	if err != nil {
		return fmt.Errorf("delete device %d: %w", id, err)
	}
	return nil
}

// getDevice reads one device by id.
func getDevice(ctx context.Context, q store.Querier, id int64) (Device, error) {
	dev, err := scanDevice(q.QueryRowContext(ctx, q.Rebind("SELECT "+deviceColumns+" FROM devices WHERE id = ?"), id).Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return Device{}, fmt.Errorf("device %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return Device{}, fmt.Errorf("read device %d: %w", id, err)
	}
	return dev, nil
}

// Device returns the device with this id, or a wrapped store.ErrNotFound.
func (d *Directory) Device(ctx context.Context, id int64) (Device, error) {
	return getDevice(ctx, d.db, id)
}

// Devices returns every device, ordered by name.
func (d *Directory) Devices(ctx context.Context) ([]Device, error) {
	rows, err := d.db.QueryContext(ctx, "SELECT "+deviceColumns+" FROM devices ORDER BY name, id")
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	defer rows.Close()
	var out []Device
	for rows.Next() {
		dev, err := scanDevice(rows.Scan)
		if err != nil {
			return nil, fmt.Errorf("list devices: %w", err)
		}
		out = append(out, dev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	return out, nil
}

// DeviceByName returns the device with this name, ignoring case (an exact
// match wins), or a wrapped store.ErrNotFound.
func (d *Directory) DeviceByName(ctx context.Context, name string) (Device, error) {
	name = strings.TrimSpace(name)
	row := d.db.QueryRowContext(ctx, d.db.Rebind("SELECT "+deviceColumns+
		" FROM devices WHERE LOWER(name) = LOWER(?) ORDER BY CASE WHEN name = ? THEN 0 ELSE 1 END, id LIMIT 1"), name, name)
	dev, err := scanDevice(row.Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return Device{}, fmt.Errorf("device %q: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return Device{}, fmt.Errorf("read device %q: %w", name, err)
	}
	return dev, nil
}
