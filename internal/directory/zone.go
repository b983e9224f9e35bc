package directory

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/warden-schools/warden/internal/store"
)

// Zone is a named set of networks, such as the staff room, that time and
// place rules refer to. GroupID, if set, is the group that clients in the
// zone get when nothing else identifies them.
type Zone struct {
	// ID is a slug: lower-case letters, digits and single hyphens.
	ID          string
	Name        string
	Description string
	GroupID     string
	// Networks are in masked form (10.20.0.0/24, not 10.20.0.5/24).
	Networks []netip.Prefix
}

// maxDescriptionLen bounds a zone description.
const maxDescriptionLen = 500

// ParseNetworks reads networks as people type them: CIDR prefixes or
// single addresses, separated by spaces, commas or new lines. A prefix
// with host bits set (10.20.0.5/24) is refused with a suggestion, since it
// usually means a typing mistake.
func ParseNetworks(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ';' || r == ' ' || r == '\t' || r == '\n' || r == '\r' }) {
		var p netip.Prefix
		if strings.Contains(f, "/") {
			var err error
			if p, err = netip.ParsePrefix(f); err != nil {
				return nil, invalidf("network %q is not a CIDR prefix such as 10.20.0.0/24", trunc(f))
			}
		} else {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, invalidf("network %q is not a CIDR prefix such as 10.20.0.0/24 or an IP address", trunc(f))
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if err := checkPrefix(p); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// checkPrefix refuses invalid, zoned, IPv4-mapped and unmasked prefixes.
func checkPrefix(p netip.Prefix) error {
	if !p.IsValid() {
		return invalidf("network %s is not a valid CIDR prefix", p)
	}
	a := p.Addr()
	if a.Zone() != "" {
		return invalidf("network %s has an IPv6 zone; give the prefix alone", p)
	}
	if a.Is4In6() {
		return invalidf("network %s is an IPv4-mapped IPv6 prefix; write the IPv4 form", p)
	}
	if m := p.Masked(); m != p {
		return invalidf("network %s has host bits set: write %s for the whole network, or %s for one address",
			p, m, netip.PrefixFrom(a, a.BitLen()))
	}
	return nil
}

// normalize checks and tidies a zone before it is written.
func (z *Zone) normalize() error {
	z.ID = strings.TrimSpace(z.ID)
	if !slugRE.MatchString(z.ID) || len(z.ID) > maxSlugLen {
		return invalidf("zone id %q should be lower-case letters, digits and hyphens, as in staff-room", trunc(z.ID))
	}
	var err error
	if z.Name, err = cleanText("zone name", z.Name, maxTextLen); err != nil {
		return err
	}
	if z.Name == "" {
		z.Name = z.ID
	}
	if z.Description, err = cleanText("zone description", z.Description, maxDescriptionLen); err != nil {
		return err
	}
	z.GroupID = strings.TrimSpace(z.GroupID)
	nets := slices.Clone(z.Networks)
	for _, p := range nets {
		if err := checkPrefix(p); err != nil {
			return fmt.Errorf("zone %s: %w", z.ID, err)
		}
	}
	slices.SortFunc(nets, comparePrefix)
	for i := 1; i < len(nets); i++ {
		if nets[i] == nets[i-1] {
			return invalidf("zone %s: network %s is listed twice", z.ID, nets[i])
		}
	}
	z.Networks = nets
	return nil
}

// comparePrefix orders prefixes by address, then length.
func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// PutZone adds the zone, or replaces the zone with the same ID together
// with its networks. It returns an ErrInvalid error for a bad id or
// network and a wrapped store.ErrNotFound for an unknown group.
func (d *Directory) PutZone(ctx context.Context, actor string, z Zone) error {
	if err := z.normalize(); err != nil {
		return fmt.Errorf("put zone: %w", err)
	}
	err := d.db.WithTx(ctx, func(tx *store.Tx) error { return PutZoneTx(ctx, tx, d.now(), actor, z) })
	if err != nil {
		return fmt.Errorf("put zone %s: %w", z.ID, err)
	}
	return nil
}

// PutZoneTx is PutZone inside a transaction the caller owns (change
// control applies a zone change with its record).
func PutZoneTx(ctx context.Context, tx *store.Tx, now time.Time, actor string, z Zone) error {
	if err := z.normalize(); err != nil {
		return fmt.Errorf("put zone: %w", err)
	}
	if err := checkGroup(ctx, tx, z.GroupID); err != nil {
		return err
	}
	at := store.Millis(now)
	_, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO zones (id, name, description, group_id, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET name = excluded.name,
		description = excluded.description, group_id = excluded.group_id, updated_at = excluded.updated_at`),
		z.ID, z.Name, z.Description, nullString(z.GroupID), at, at)
	if err != nil {
		return fmt.Errorf("write zone: %w", err)
	}
	if _, err := tx.ExecContext(ctx, tx.Rebind("DELETE FROM zone_networks WHERE zone_id = ?"), z.ID); err != nil {
		return fmt.Errorf("clear zone networks: %w", err)
	}
	for _, p := range z.Networks {
		if _, err := tx.ExecContext(ctx, tx.Rebind("INSERT INTO zone_networks (zone_id, cidr) VALUES (?, ?)"), z.ID, p.String()); err != nil {
			return fmt.Errorf("write zone network %s: %w", p, err)
		}
	}
	_, err = store.AddRevision(ctx, tx, now, actor, fmt.Sprintf("put zone %s", z.ID))
	return err
}

// NormalizeZone checks and tidies a zone as PutZone stores it.
func NormalizeZone(z Zone) (Zone, error) {
	err := z.normalize()
	return z, err
}

// Zones returns every zone with its networks, ordered by id.
func (d *Directory) Zones(ctx context.Context) ([]Zone, error) {
	rows, err := d.db.QueryContext(ctx, "SELECT id, name, description, COALESCE(group_id, '') FROM zones ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("list zones: %w", err)
	}
	var out []Zone
	for rows.Next() {
		var z Zone
		if err := rows.Scan(&z.ID, &z.Name, &z.Description, &z.GroupID); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list zones: %w", err)
		}
		out = append(out, z)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list zones: %w", err)
	}
	nets, err := d.db.QueryContext(ctx, "SELECT zone_id, cidr FROM zone_networks")
	if err != nil {
		return nil, fmt.Errorf("list zone networks: %w", err)
	}
	defer nets.Close()
	byID := make(map[string]*Zone, len(out))
	for i := range out {
		byID[out[i].ID] = &out[i]
	}
	for nets.Next() {
		var id, cidr string
		if err := nets.Scan(&id, &cidr); err != nil {
			return nil, fmt.Errorf("list zone networks: %w", err)
		}
		p, err := netip.ParsePrefix(cidr)
		if err != nil {
			return nil, fmt.Errorf("zone %s: stored network %q: %w", id, cidr, err)
		}
		if z := byID[id]; z != nil {
			z.Networks = append(z.Networks, p)
		}
	}
	if err := nets.Err(); err != nil {
		return nil, fmt.Errorf("list zone networks: %w", err)
	}
	for i := range out {
		slices.SortFunc(out[i].Networks, comparePrefix)
	}
	return out, nil
}

// DeleteZone removes a zone and its networks; a missing zone is a wrapped
// store.ErrNotFound.
func (d *Directory) DeleteZone(ctx context.Context, actor, id string) error {
	err := d.db.WithTx(ctx, func(tx *store.Tx) error { return DeleteZoneTx(ctx, tx, d.now(), actor, id) })
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("zone %s: %w", id, err)
	}
	if err != nil {
		return fmt.Errorf("delete zone %s: %w", id, err)
	}
	return nil
}

// DeleteZoneTx is DeleteZone inside a transaction the caller owns. It
// refuses while rules use the zone: a rule naming a missing zone would
// never apply, which silently loosens a block rule.
func DeleteZoneTx(ctx context.Context, tx *store.Tx, now time.Time, actor, id string) error {
	users, err := zoneRules(ctx, tx, id)
	if err != nil {
		return err
	}
	if len(users) > 0 {
		return fmt.Errorf("%w: zone %s is used by rules (%s); change or remove them first", ErrInvalid, id, strings.Join(users, "; "))
	}
	res, err := tx.ExecContext(ctx, tx.Rebind("DELETE FROM zones WHERE id = ?"), id)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrNotFound
	}
	_, err = store.AddRevision(ctx, tx, now, actor, fmt.Sprintf("delete zone %s", id))
	return err
}

// zoneRules names the rules ("group: rule name") whose zones include id.
func zoneRules(ctx context.Context, q store.Querier, id string) ([]string, error) {
	rows, err := q.QueryContext(ctx, q.Rebind("SELECT group_id, name FROM rules WHERE ' ' || zones || ' ' LIKE ?"), "% "+id+" %")
	if err != nil {
		return nil, fmt.Errorf("find rules using zone %s: %w", id, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var g, n string
		if err := rows.Scan(&g, &n); err != nil {
			return nil, fmt.Errorf("find rules using zone %s: %w", id, err)
		}
		out = append(out, g+": "+n)
	}
	return out, rows.Err()
}
