// Package identity answers "who is this?" for the filters: it turns
// connection facts (a device token, a client address) into a Subject with
// the group whose policy applies. The Table is in memory, built by the app
// from the directory and swapped whole when the directory changes, so the
// filters never wait on the database.
//
// Order: device token, then device IP address, then the network zone the
// address is in, else the unknown-client policy.
package identity

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
)

// How a subject was identified.
const (
	ByToken    = "device-token"
	ByDeviceIP = "device-ip"
	ByZone     = "zone"
	ByUser     = "user"
	ByGroup    = "group"
	Unknown    = "unknown"
)

// Subject is who a request comes from, as far as Warden can tell.
type Subject struct {
	// Group is the policy group that applies.
	Group string
	// PersonID and Person identify the person, when known.
	PersonID int64
	Person   string
	// DeviceID and Device identify the device, when known.
	DeviceID int64
	Device   string
	// Zone is the network zone of the client address, if any.
	Zone string
	// Via says how the subject was identified (ByToken, ByDeviceIP, ...).
	Via string
}

// Device is a device as the table needs it.
type Device struct {
	ID        int64
	Name      string
	IP        netip.Addr
	TokenHash string
	// GroupID is the device's own group, if set; else its owner's.
	GroupID string
	OwnerID int64
}

// Person is a device owner as the table needs it.
type Person struct {
	ID      int64
	Name    string
	GroupID string
}

// Zone is a network zone; GroupID, if set, is the group for otherwise
// unidentified clients in it.
type Zone struct {
	ID       string
	GroupID  string
	Networks []netip.Prefix
}

// Data is what a Table is built from.
type Data struct {
	Devices      []Device
	People       []Person
	Zones        []Zone
	UnknownGroup string
}

// Table maps connection facts to subjects. It is immutable.
type Table struct {
	byIP    map[netip.Addr]*Device
	byToken map[string]*Device
	people  map[int64]Person
	zones   []Zone
	unknown string
}

// New builds a Table.
func New(d Data) *Table {
	t := &Table{
		byIP:    map[netip.Addr]*Device{},
		byToken: map[string]*Device{},
		people:  map[int64]Person{},
		zones:   d.Zones,
		unknown: d.UnknownGroup,
	}
	for _, p := range d.People {
		t.people[p.ID] = p
	}
	for i := range d.Devices {
		dev := &d.Devices[i]
		if dev.IP.IsValid() {
			t.byIP[dev.IP.Unmap()] = dev
		}
		if dev.TokenHash != "" {
			t.byToken[dev.TokenHash] = dev
		}
	}
	return t
}

// TokenLen is the length of a device token: 32 random bytes in
// lower-case base32 without padding.
const TokenLen = 52

// tokenEncoding writes tokens with only [a-z2-7], so that a token is safe
// in a URL path and as a DNS label (at most 63 characters), where
// DNS-over-TLS clients carry it in the server name.
var tokenEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewToken returns a new device token made from 32 bytes of rand (pass
// crypto/rand.Reader). Only its HashToken is stored; the token itself is
// shown once, when it is issued.
func NewToken(rand io.Reader) (string, error) {
	var b [32]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return "", fmt.Errorf("new device token: %w", err)
	}
	return tokenEncoding.EncodeToString(b[:]), nil
}

// ValidToken reports whether s has the form of a device token (TokenLen
// characters of [a-z2-7]); it says nothing about whether the token was
// issued. Checking the form first keeps junk (and names that are not
// tokens, such as a DNS-over-TLS server name) from being hashed and
// looked up.
func ValidToken(s string) bool {
	if len(s) != TokenLen {
		return false
	}
	return strings.Trim(s, "abcdefghijklmnopqrstuvwxyz234567") == ""
}

// HashToken returns the stored form of a device token (hex SHA-256); the
// token itself is never stored.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// ByToken identifies a client by its device token; addr, the client's
// address, only sets the zone. The table is keyed by the token's SHA-256,
// so the time a lookup takes depends on the hash, not on how much of the
// token an attacker has guessed.
func (t *Table) ByToken(token string, addr netip.Addr) (Subject, bool) {
	dev, ok := t.byToken[HashToken(token)]
	if !ok {
		return Subject{}, false
	}
	s := t.device(dev, addr)
	s.Via = ByToken
	return s, true
}

// LocalNetworks returns the networks a school's own clients come from:
// loopback, the private and carrier-grade NAT ranges, and link-local.
// The filters serve these by default and nothing else, so that Warden is
// never an open resolver or proxy.
func LocalNetworks() []netip.Prefix {
	return []netip.Prefix{
		netip.MustParsePrefix("127.0.0.0/8"),
		netip.MustParsePrefix("::1/128"),
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("172.16.0.0/12"),
		netip.MustParsePrefix("192.168.0.0/16"),
		netip.MustParsePrefix("100.64.0.0/10"),
		netip.MustParsePrefix("169.254.0.0/16"),
		netip.MustParsePrefix("fc00::/7"),
		netip.MustParsePrefix("fe80::/10"),
	}
}

// ClientAddr returns a connection's remote address as a netip.Addr, with
// an IPv4-mapped IPv6 address unmapped (the form the table is keyed by);
// the zero Addr when it is not an IP address.
func ClientAddr(a net.Addr) netip.Addr {
	switch v := a.(type) {
	case *net.UDPAddr:
		ip, _ := netip.AddrFromSlice(v.IP)
		return ip.Unmap()
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(v.IP)
		return ip.Unmap()
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// ByAddr identifies a client by its address: a device with that address,
// else the zone the address is in, else the unknown-client policy.
func (t *Table) ByAddr(addr netip.Addr) Subject {
	addr = addr.Unmap()
	if dev, ok := t.byIP[addr]; ok {
		s := t.device(dev, addr)
		s.Via = ByDeviceIP
		return s
	}
	z := t.zoneOf(addr)
	if z != nil && z.GroupID != "" {
		return Subject{Group: z.GroupID, Zone: z.ID, Via: ByZone}
	}
	s := Subject{Group: t.unknown, Via: Unknown}
	if z != nil {
		s.Zone = z.ID
	}
	return s
}

// ZoneOf returns the id of the zone holding addr, or "".
func (t *Table) ZoneOf(addr netip.Addr) string {
	if z := t.zoneOf(addr.Unmap()); z != nil {
		return z.ID
	}
	return ""
}

func (t *Table) zoneOf(addr netip.Addr) *Zone {
	if !addr.IsValid() {
		return nil
	}
	for i := range t.zones {
		for _, p := range t.zones[i].Networks {
			if p.Contains(addr) {
				return &t.zones[i]
			}
		}
	}
	return nil
}

// device builds the subject for a known device: its own group, else its
// owner's, else its zone's, else unknown.
func (t *Table) device(dev *Device, addr netip.Addr) Subject {
	s := Subject{DeviceID: dev.ID, Device: dev.Name, Group: dev.GroupID}
	if owner, ok := t.people[dev.OwnerID]; ok && dev.OwnerID != 0 {
		s.PersonID, s.Person = owner.ID, owner.Name
		if s.Group == "" {
			s.Group = owner.GroupID
		}
	}
	z := t.zoneOf(addr.Unmap())
	if z != nil {
		s.Zone = z.ID
		if s.Group == "" {
			s.Group = z.GroupID
		}
	}
	if s.Group == "" {
		s.Group = t.unknown
	}
	return s
}

// ByPerson identifies a client by the person who signed in (the web
// proxy's credentials): the person's group, else the unknown-client
// policy.
func (t *Table) ByPerson(p Person) Subject {
	s := Subject{PersonID: p.ID, Person: p.Name, Group: p.GroupID, Via: ByUser}
	if s.Group == "" {
		s.Group = t.unknown
	}
	return s
}
