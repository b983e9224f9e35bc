package blockpage

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Token errors, for errors.Is. The web listener answers both with 400
// and a page that says what went wrong.
var (
	// ErrTokenInvalid means a token is malformed, was not made with this
	// key, or was altered.
	ErrTokenInvalid = errors.New("block page token is not valid")
	// ErrTokenExpired means a token was genuine but is too old.
	ErrTokenExpired = errors.New("block page token has expired")
)

// MinKeyLen is the shortest HMAC key New and VerifyToken accept.
const MinKeyLen = 32

// DefaultTokenMaxAge is how long a block page's forms stay usable.
const DefaultTokenMaxAge = 7 * 24 * time.Hour

// maxTokenLen bounds what VerifyToken reads; a genuine token with the
// longest URL and reason is well under half of it.
const maxTokenLen = 8 << 10

// Field limits applied when a token is made, so that every genuine token
// passes the store's input checks.
const (
	maxHostLen   = 253
	maxURLLen    = 2048
	maxReasonLen = 500
	maxIDLen     = 200
)

// tokenPrefix names the token format; the MAC covers it too.
const tokenPrefix = "wbp1."

// macLabel separates this MAC from any other use of the same key.
const macLabel = "warden block page token v1\x00"

// Claims are the details a block page's token binds: what was blocked,
// for whom, when and why, exactly as Warden decided it. The forms carry
// the token, so the review and report handlers store these details
// rather than anything the client could change.
type Claims struct {
	// Ref is the page's reference id (canonical form).
	Ref string `json:"r"`
	// Issued is when the token was made (the page was rendered).
	Issued time.Time `json:"i"`
	// Time is when the blocked request was made.
	Time time.Time `json:"t"`
	// Host is the blocked host; URL the blocked URL when known. URL is
	// always empty for a mandatory (IWF, CTIRU) block.
	Host string `json:"h"`
	URL  string `json:"u,omitempty"`
	// Category, List and Rule are the decision's.
	Category string `json:"c,omitempty"`
	List     string `json:"l,omitempty"`
	Rule     string `json:"ru,omitempty"`
	// Mandatory marks a block by a mandatory list: it cannot be
	// reviewed.
	Mandatory bool `json:"m,omitempty"`
	// Reason is the reason the page showed.
	Reason string `json:"re,omitempty"`
	// Group is the group whose policy decided; PolicyVersion the
	// snapshot's version.
	Group         string `json:"g,omitempty"`
	PolicyVersion int64  `json:"v,omitempty"`
	// ClientIP is the address the blocked request came from.
	ClientIP netip.Addr `json:"ip"`
	// DeviceID and PersonID identify the device and person (0 when not
	// known).
	DeviceID int64 `json:"d,omitempty"`
	PersonID int64 `json:"p,omitempty"`
}

// signToken encodes c and appends its HMAC-SHA256 under key.
func signToken(key []byte, c Claims) (string, error) {
	body, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("encode block page token: %w", err)
	}
	payload := tokenPrefix + base64.RawURLEncoding.EncodeToString(body)
	return payload + "." + base64.RawURLEncoding.EncodeToString(tokenMAC(key, payload)), nil
}

func tokenMAC(key []byte, payload string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(macLabel))
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// clockSkew is how far in the future a token's issue time may be, for
// several Warden nodes whose clocks differ a little.
const clockSkew = 2 * time.Minute

// VerifyToken checks a token made by a Page with the same key and
// returns its claims. It returns an error wrapping ErrTokenInvalid for a
// token that is malformed, signed with another key or altered, and one
// wrapping ErrTokenExpired for a genuine token issued more than maxAge
// before now (DefaultTokenMaxAge if maxAge is 0).
func VerifyToken(key []byte, token string, now time.Time, maxAge time.Duration) (Claims, error) {
	if len(key) < MinKeyLen {
		return Claims{}, fmt.Errorf("verify block page token: key is %d bytes, need at least %d", len(key), MinKeyLen)
	}
	if maxAge <= 0 {
		maxAge = DefaultTokenMaxAge
	}
	if len(token) > maxTokenLen {
		return Claims{}, fmt.Errorf("%w: %d bytes is too long", ErrTokenInvalid, len(token))
	}
	rest, ok := strings.CutPrefix(token, tokenPrefix)
	if !ok {
		return Claims{}, fmt.Errorf("%w: unknown format", ErrTokenInvalid)
	}
	body64, mac64, ok := strings.Cut(rest, ".")
	if !ok {
		return Claims{}, fmt.Errorf("%w: no signature", ErrTokenInvalid)
	}
	mac, err := base64.RawURLEncoding.DecodeString(mac64)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: signature is not base64", ErrTokenInvalid)
	}
	// The MAC is checked before anything else is decoded, in constant
	// time, so altered or forged input never reaches the JSON decoder.
	if !hmac.Equal(mac, tokenMAC(key, tokenPrefix+body64)) {
		return Claims{}, fmt.Errorf("%w: signature does not match", ErrTokenInvalid)
	}
	body, err := base64.RawURLEncoding.DecodeString(body64)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: body is not base64", ErrTokenInvalid)
	}
	var c Claims
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Claims{}, fmt.Errorf("%w: body: %v", ErrTokenInvalid, err)
	}
	if !ValidRef(c.Ref) || c.Host == "" || c.Issued.IsZero() {
		return Claims{}, fmt.Errorf("%w: incomplete", ErrTokenInvalid)
	}
	if c.Issued.After(now.Add(clockSkew)) {
		return Claims{}, fmt.Errorf("%w: issued in the future", ErrTokenInvalid)
	}
	if now.Sub(c.Issued) > maxAge {
		return Claims{}, fmt.Errorf("%w: issued %s", ErrTokenExpired, c.Issued.UTC().Format(time.RFC3339))
	}
	return c, nil
}
