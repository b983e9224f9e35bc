package proxy

import (
	"crypto/sha256"
	"encoding/base64"
	"sync"
	"time"

	"github.com/warden-schools/warden/internal/identity"
)

// authCache remembers recent answers of the Authenticator, keyed by the
// SHA-256 of the Proxy-Authorization value (never the credentials
// themselves), for a short time and for one identity table: a new table
// (a device revoked, a group changed) invalidates every entry.
type authCache struct {
	mu  sync.Mutex
	m   map[[32]byte]authEntry
	ttl time.Duration
}

type authEntry struct {
	who     identity.Subject
	ok      bool
	table   *identity.Table
	expires time.Time
}

// maxAuthEntries bounds the cache; a school has fewer devices than this
// authenticating within a minute.
const maxAuthEntries = 16384

func newAuthCache(ttl time.Duration) *authCache {
	return &authCache{m: map[[32]byte]authEntry{}, ttl: ttl}
}

// authenticate checks a Proxy-Authorization value with the
// Authenticator, through the cache.
func (p *Proxy) authenticate(authz []byte, table *identity.Table) (identity.Subject, bool) {
	key := sha256.Sum256(authz)
	now := time.Now()
	c := p.auth
	c.mu.Lock()
	e, hit := c.m[key]
	c.mu.Unlock()
	if hit && now.Before(e.expires) && e.table == table {
		return e.who, e.ok
	}
	user, pass, ok := parseBasic(authz)
	var who identity.Subject
	if ok {
		who, ok = p.opts.Auth.Authenticate(user, pass)
	}
	ttl := c.ttl
	if !ok {
		ttl /= 10
	}
	c.mu.Lock()
	if len(c.m) >= maxAuthEntries {
		for k, old := range c.m {
			if now.After(old.expires) || len(c.m) >= maxAuthEntries {
				delete(c.m, k)
			}
		}
	}
	c.m[key] = authEntry{who: who, ok: ok, table: table, expires: now.Add(ttl)}
	c.mu.Unlock()
	return who, ok
}

// parseBasic reads "Basic base64(user:password)".
func parseBasic(v []byte) (user, pass string, ok bool) {
	const prefix = "basic "
	if len(v) <= len(prefix) || !equalFold(v[:len(prefix)], prefix) {
		return "", "", false
	}
	enc := trimOWS(v[len(prefix):])
	var buf [768]byte
	if base64.StdEncoding.DecodedLen(len(enc)) > len(buf) {
		return "", "", false
	}
	n, err := base64.StdEncoding.Decode(buf[:], enc)
	if err != nil {
		return "", "", false
	}
	dec := buf[:n]
	for i, c := range dec {
		if c == ':' {
			return string(dec[:i]), string(dec[i+1:]), true
		}
	}
	return "", "", false
}
