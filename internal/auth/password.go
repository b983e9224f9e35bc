package auth

import (
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id's cost parameters and sizes.
type Params struct {
	// Memory is in KiB.
	Memory  uint32
	Time    uint32
	Threads uint8
	SaltLen uint32
	KeyLen  uint32
}

// DefaultParams are OWASP's recommended minimum for argon2id (19 MiB, two
// passes, one lane): some 22 ms a hash on one core of a school server,
// slow enough for guessing to cost dearly and cheap enough for sign-in
// and proxy authentication (whose answers the proxy caches).
func DefaultParams() Params {
	return Params{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
}

// Bounds on the parameters a stored hash may carry: a hash is read from
// the database, and one with absurd costs must not be able to exhaust the
// server's memory or time.
const (
	maxMemory  = 256 * 1024 // KiB
	maxTime    = 16
	maxThreads = 16
	minSalt    = 8
	maxSalt    = 64
	minKey     = 16
	maxKey     = 64
)

// ErrBadHash means a stored password hash is not a well-formed argon2id
// hash within the accepted bounds.
var ErrBadHash = errors.New("malformed password hash")

// maxPasswordBytes bounds what is hashed: longer input is refused before
// any work.
const maxPasswordBytes = 1024

// HashPassword hashes password with argon2id under p and a fresh salt from
// rand, in the PHC string format:
// $argon2id$v=19$m=19456,t=2,p=1$SALT$KEY (unpadded standard base64).
func HashPassword(rand io.Reader, p Params, password string) (string, error) {
	if len(password) > maxPasswordBytes {
		return "", fmt.Errorf("hash password: longer than %d bytes", maxPasswordBytes)
	}
	if err := p.check(); err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	salt := make([]byte, p.SaltLen)
	if _, err := io.ReadFull(rand, salt); err != nil {
		return "", fmt.Errorf("hash password: read salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return p.encode(salt, key), nil
}

func (p Params) encode(salt, key []byte) string {
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key))
}

func (p Params) check() error {
	switch {
	case p.Memory < 8*uint32(p.Threads) || p.Memory > maxMemory:
		return fmt.Errorf("memory %d KiB out of range (8 per lane to %d)", p.Memory, maxMemory)
	case p.Time < 1 || p.Time > maxTime:
		return fmt.Errorf("time %d out of range (1 to %d)", p.Time, maxTime)
	case p.Threads < 1 || p.Threads > maxThreads:
		return fmt.Errorf("threads %d out of range (1 to %d)", p.Threads, maxThreads)
	case p.SaltLen < minSalt || p.SaltLen > maxSalt:
		return fmt.Errorf("salt length %d out of range (%d to %d)", p.SaltLen, minSalt, maxSalt)
	case p.KeyLen < minKey || p.KeyLen > maxKey:
		return fmt.Errorf("key length %d out of range (%d to %d)", p.KeyLen, minKey, maxKey)
	}
	return nil
}

// VerifyPassword reports whether password matches the encoded hash, and
// the parameters the hash was made with (so a caller can rehash under
// newer ones). A malformed hash is an error wrapping ErrBadHash.
func VerifyPassword(encoded, password string) (bool, Params, error) {
	p, salt, key, err := parseHash(encoded)
	if err != nil {
		return false, Params{}, err
	}
	if len(password) > maxPasswordBytes {
		return false, p, nil
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return subtle.ConstantTimeCompare(got, key) == 1, p, nil
}

// parseHash reads a PHC argon2id string strictly.
func parseHash(s string) (Params, []byte, []byte, error) {
	bad := func(why string) (Params, []byte, []byte, error) {
		return Params{}, nil, nil, fmt.Errorf("%w: %s", ErrBadHash, why)
	}
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" {
		return bad("want $argon2id$v=..$m=..,t=..,p=..$salt$key")
	}
	if parts[1] != "argon2id" {
		return bad(fmt.Sprintf("algorithm %q, want argon2id", parts[1]))
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return bad(fmt.Sprintf("version %q, want v=%d", parts[2], argon2.Version))
	}
	var p Params
	fields := strings.Split(parts[3], ",")
	if len(fields) != 3 {
		return bad("parameters must be m=..,t=..,p=..")
	}
	for i, name := range []string{"m", "t", "p"} {
		v, ok := strings.CutPrefix(fields[i], name+"=")
		if !ok {
			return bad(fmt.Sprintf("parameter %d must be %s=", i+1, name))
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || (len(v) > 1 && v[0] == '0') {
			return bad(fmt.Sprintf("parameter %s=%q is not a number", name, v))
		}
		switch name {
		case "m":
			p.Memory = uint32(n)
		case "t":
			p.Time = uint32(n)
		case "p":
			if n > maxThreads {
				return bad(fmt.Sprintf("p=%d out of range", n))
			}
			p.Threads = uint8(n)
		}
	}
	b64 := base64.RawStdEncoding.Strict()
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return bad("salt is not unpadded base64")
	}
	key, err := b64.DecodeString(parts[5])
	if err != nil {
		return bad("key is not unpadded base64")
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	if err := p.check(); err != nil {
		return bad(err.Error())
	}
	return p, salt, key, nil
}
