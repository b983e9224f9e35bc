// Package keyring holds Warden's master key and seals data with keys
// derived from it: the school CA's private key, and later the sensitive
// text of safeguarding records, are encrypted at rest under it.
//
// The master key is 32 random bytes in one file (by default
// DATA_DIR/master.key), readable by Warden's user only. Back it up
// separately from the database: a stolen database backup is then of no
// use without it, and a lost key cannot be recovered — whatever was sealed
// with it is gone.
//
// Each purpose ("ca-key", "blockpage", ...) gets its own subkey, derived
// with HKDF-SHA-256, so one purpose's key reveals nothing of another's and
// data sealed for one purpose cannot be opened as another.
package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
)

// KeySize is the size of the master key in bytes.
const KeySize = 32

// FileName is the master key's file name in the data folder.
const FileName = "master.key"

// version1 starts every sealed value: AES-256-GCM, a 12-byte random nonce,
// the purpose as additional data.
const version1 = 1

// nonceSize is GCM's standard nonce size.
const nonceSize = 12

// ErrOpen is returned (wrapped) when sealed data does not open: it was
// altered, sealed for another purpose or under another master key.
var ErrOpen = errors.New("sealed data does not open (altered, another purpose, or another master key)")

// Ring is the master key with its random source. It is safe for
// concurrent use.
type Ring struct {
	master [KeySize]byte
	rand   io.Reader
}

// New returns a Ring over a master key of KeySize bytes (for tests and
// for keys kept elsewhere); rand supplies nonces.
func New(master []byte, rand io.Reader) (*Ring, error) {
	if len(master) != KeySize {
		return nil, fmt.Errorf("master key is %d bytes, want %d", len(master), KeySize)
	}
	if rand == nil {
		return nil, errors.New("keyring: no random source")
	}
	r := &Ring{rand: rand}
	copy(r.master[:], master)
	return r, nil
}

// LoadOrCreate reads the master key at path, or creates it with KeySize
// bytes from rand (mode 0600, in a directory created with mode 0700) if
// there is none. It refuses a key file that group or others may read or
// write, or that is not exactly KeySize bytes, naming the path: such a
// file was changed by someone else and is not to be trusted or repaired
// silently.
func LoadOrCreate(path string, rand io.Reader) (*Ring, error) {
	if rand == nil {
		return nil, errors.New("keyring: no random source")
	}
	key, err := load(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := create(path, rand); err != nil {
			return nil, err
		}
		key, err = load(path)
	}
	if err != nil {
		return nil, err
	}
	return New(key, rand)
}

// Load reads the master key at path, with the checks of LoadOrCreate,
// and never creates one.
func Load(path string, rand io.Reader) (*Ring, error) {
	key, err := load(path)
	if err != nil {
		return nil, err
	}
	return New(key, rand)
}

// Exists reports whether a master key file is at path (whatever its
// state; LoadOrCreate checks it).
func Exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func load(path string) ([]byte, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, fmt.Errorf("master key %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("master key %s: not a regular file (%s)", path, fi.Mode().Type())
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("master key %s: mode %04o lets other users read or change it; it must be 0600 (chmod 600 %s, and check who may have copied it)", path, perm, path)
	}
	if fi.Size() != KeySize {
		return nil, fmt.Errorf("master key %s: %d bytes, want %d (restore it from its backup)", path, fi.Size(), KeySize)
	}
	key, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read master key %s: %w", path, err)
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("master key %s: %d bytes, want %d (restore it from its backup)", path, len(key), KeySize)
	}
	return key, nil
}

// create writes a new key to a temporary file, syncs it and links it into
// place, so a crash leaves either no key or a whole one, and two
// processes racing to create it end with the same key.
func create(path string, rand io.Reader) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create folder %s for the master key: %w", dir, err)
	}
	var key [KeySize]byte
	if _, err := io.ReadFull(rand, key[:]); err != nil {
		return fmt.Errorf("generate master key: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".master.key-*")
	if err != nil {
		return fmt.Errorf("create master key %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("create master key %s: %w", path, err)
	}
	if _, err := tmp.Write(key[:]); err != nil {
		tmp.Close()
		return fmt.Errorf("write master key %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write master key %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write master key %s: %w", path, err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil // another process made it first: use theirs
		}
		return fmt.Errorf("create master key %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// subkey derives a KeySize key for a use and purpose.
func (r *Ring) subkey(use, purpose string, n int) []byte {
	k, err := hkdf.Key(sha256.New, r.master[:], nil, "warden "+use+"\x00"+purpose, n)
	if err != nil {
		// Only an impossible length makes HKDF fail; callers check n.
		panic(fmt.Sprintf("keyring: derive %s key: %v", use, err))
	}
	return k
}

// aead returns AES-256-GCM under the sealing subkey for purpose.
func (r *Ring) aead(purpose string) (cipher.AEAD, error) {
	block, err := aes.NewCipher(r.subkey("seal", purpose, 32))
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	return cipher.NewGCM(block)
}

// additional is the additional data bound to a sealed value: its version
// and purpose.
func additional(purpose string) []byte {
	return append([]byte{version1}, purpose...)
}

// Seal encrypts plaintext for purpose: a version byte, a random nonce,
// and the AES-256-GCM ciphertext under the purpose's subkey, with the
// purpose bound as additional data.
func (r *Ring) Seal(purpose string, plaintext []byte) ([]byte, error) {
	if purpose == "" {
		return nil, errors.New("keyring: seal with no purpose")
	}
	g, err := r.aead(purpose)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+nonceSize, 1+nonceSize+len(plaintext)+g.Overhead())
	out[0] = version1
	if _, err := io.ReadFull(r.rand, out[1:]); err != nil {
		return nil, fmt.Errorf("keyring: nonce: %w", err)
	}
	return g.Seal(out, out[1:1+nonceSize], plaintext, additional(purpose)), nil
}

// Open decrypts what Seal sealed for the same purpose. Data that was
// altered, sealed for another purpose or under another master key gives
// an error wrapping ErrOpen.
func (r *Ring) Open(purpose string, sealed []byte) ([]byte, error) {
	if len(sealed) < 1+nonceSize+16 {
		return nil, fmt.Errorf("open %s: %d bytes is too short: %w", purpose, len(sealed), ErrOpen)
	}
	if sealed[0] != version1 {
		return nil, fmt.Errorf("open %s: unknown format version %d: %w", purpose, sealed[0], ErrOpen)
	}
	g, err := r.aead(purpose)
	if err != nil {
		return nil, err
	}
	pt, err := g.Open(nil, sealed[1:1+nonceSize], sealed[1+nonceSize:], additional(purpose))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", purpose, ErrOpen)
	}
	return pt, nil
}

// Key derives an n-byte key for purpose, for uses other than sealing
// (the block page signs its references with one). The same ring and
// purpose always give the same key; keys for different purposes, and the
// sealing keys, are unrelated. n must be between 1 and 8160 (it panics
// otherwise: a programming error).
func (r *Ring) Key(purpose string, n int) []byte {
	if n < 1 || n > 255*sha256.Size {
		panic(fmt.Sprintf("keyring: key of %d bytes", n))
	}
	return r.subkey("key", purpose, n)
}

// LogValue keeps the master key out of logs.
func (r *Ring) LogValue() slog.Value { return slog.StringValue("keyring(redacted)") }

// String keeps the master key out of formatted output.
func (r *Ring) String() string { return "keyring(redacted)" }

// GoString keeps the master key out of %#v.
func (r *Ring) GoString() string { return "keyring(redacted)" }
