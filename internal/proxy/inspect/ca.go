package inspect

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/warden-schools/warden/internal/keyring"
)

// Files of a CA folder (DATA_DIR/ca by default).
const (
	// RootCertFile is the root certificate as PEM: public, installed on
	// the school's devices.
	RootCertFile = "root.crt"
	// RootDERFile is the same certificate as DER, which Windows and iOS
	// prefer.
	RootDERFile = "root.cer"
	// RootKeyFile is the root's PKCS#8 private key sealed with the key
	// ring (purpose KeyPurpose).
	RootKeyFile = "root.key.sealed"
)

// KeyPurpose is the key ring purpose the CA key is sealed for.
const KeyPurpose = "ca-key"

// RootValidity is how long a school root CA is valid.
const RootValidity = 10 * 365 * 24 * time.Hour

// ErrCAExists is returned by InitCA when the folder already holds a CA
// and CAOptions.Force is not set.
var ErrCAExists = errors.New("a school CA already exists")

// CAOptions tune InitCA and LoadCA.
type CAOptions struct {
	// SchoolName goes into the root's name: "Warden school root CA
	// (SCHOOL NAME)".
	SchoolName string
	// Force replaces an existing CA. Devices that trust the old root
	// then no longer trust inspected sites until the new root is
	// installed.
	Force bool
	// CacheSize bounds the minted certificates kept (0: DefaultCacheSize).
	CacheSize int
	// Rand is the random source for keys and serials (nil: crypto/rand).
	Rand io.Reader
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// CA is a school root CA that mints short-lived certificates for the
// hosts Warden inspects. It is safe for concurrent use.
type CA struct {
	// Root is the root certificate.
	Root    *x509.Certificate
	key     *ecdsa.PrivateKey
	rand    io.Reader
	now     func() time.Time
	cache   *certCache
	minted  atomic.Uint64
	rootDER []byte
}

func (o *CAOptions) defaults() {
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.CacheSize <= 0 {
		o.CacheSize = DefaultCacheSize
	}
}

// RootName is the root certificate's common name for a school.
func RootName(school string) string {
	school = strings.Join(strings.Fields(school), " ")
	if school == "" {
		return "Warden school root CA"
	}
	// RFC 5280 bounds a common name at 64 characters.
	const max = 64 - len("Warden school root CA ()")
	if r := []rune(school); len(r) > max {
		school = string(r[:max-1]) + "…"
	}
	return "Warden school root CA (" + school + ")"
}

// InitCA creates a school root CA in dir (created with mode 0700): an
// ECDSA P-256 key and a self-signed certificate valid for RootValidity,
// written as RootCertFile, RootDERFile and RootKeyFile (the key sealed
// with ring). It refuses to replace an existing CA unless opts.Force.
func InitCA(dir string, ring *keyring.Ring, opts CAOptions) (*CA, error) {
	opts.defaults()
	if ring == nil {
		return nil, errors.New("init CA: no key ring")
	}
	if !opts.Force {
		for _, f := range []string{RootCertFile, RootKeyFile} {
			p := filepath.Join(dir, f)
			if _, err := os.Lstat(p); err == nil {
				return nil, fmt.Errorf("init CA in %s: %w (%s); give --force to replace it, then install the new root on every device", dir, ErrCAExists, p)
			}
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("init CA: create folder %s: %w", dir, err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), opts.Rand)
	if err != nil {
		return nil, fmt.Errorf("init CA: generate key: %w", err)
	}
	serial, err := newSerial(opts.Rand)
	if err != nil {
		return nil, fmt.Errorf("init CA: %w", err)
	}
	now := opts.Now()
	name := pkix.Name{CommonName: RootName(opts.SchoolName), Organization: []string{"Warden"}}
	if s := strings.TrimSpace(opts.SchoolName); s != "" {
		name.Organization = []string{truncateRunes(s, 64)}
		name.OrganizationalUnit = []string{"Warden web filter"}
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               name,
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(RootValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		// No name constraints: the CA must mint for any host.
	}
	der, err := x509.CreateCertificate(opts.Rand, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("init CA: create certificate: %w", err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("init CA: encode key: %w", err)
	}
	sealed, err := ring.Seal(KeyPurpose, pkcs8)
	if err != nil {
		return nil, fmt.Errorf("init CA: seal key: %w", err)
	}
	// The key first: a root certificate without its key is useless,
	// while a key without its certificate is never used.
	if err := writeFile(filepath.Join(dir, RootKeyFile), sealed, 0o600); err != nil {
		return nil, err
	}
	if err := writeFile(filepath.Join(dir, RootDERFile), der, 0o644); err != nil {
		return nil, err
	}
	if err := writeFile(filepath.Join(dir, RootCertFile), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, err
	}
	root, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("init CA: %w", err)
	}
	return newCA(root, key, opts), nil
}

// LoadCA reads the CA InitCA wrote in dir, opening its key with ring.
// Errors name the file at fault.
func LoadCA(dir string, ring *keyring.Ring, opts CAOptions) (*CA, error) {
	opts.defaults()
	if ring == nil {
		return nil, errors.New("load CA: no key ring")
	}
	root, err := ReadRoot(dir)
	if err != nil {
		return nil, err
	}
	keyPath := filepath.Join(dir, RootKeyFile)
	sealed, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("load CA key %s: %w", keyPath, err)
	}
	pkcs8, err := ring.Open(KeyPurpose, sealed)
	if err != nil {
		return nil, fmt.Errorf("load CA key %s: %w (was the master key replaced? restore master.key from its backup, or run warden ca init --force)", keyPath, err)
	}
	k, err := x509.ParsePKCS8PrivateKey(pkcs8)
	if err != nil {
		return nil, fmt.Errorf("load CA key %s: %w", keyPath, err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("load CA key %s: a %T, want an ECDSA key", keyPath, k)
	}
	if !key.PublicKey.Equal(root.PublicKey) {
		return nil, fmt.Errorf("load CA: the key in %s does not belong to %s", keyPath, filepath.Join(dir, RootCertFile))
	}
	return newCA(root, key, opts), nil
}

// ReadRoot reads and checks the root certificate in dir (no key needed).
func ReadRoot(dir string) (*x509.Certificate, error) {
	path := filepath.Join(dir, RootCertFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("load CA certificate %s: %w (run warden ca init first)", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("load CA certificate %s: %w", path, err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("load CA certificate %s: no PEM CERTIFICATE block", path)
	}
	root, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("load CA certificate %s: %w", path, err)
	}
	if !root.IsCA || root.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("load CA certificate %s: not a CA certificate", path)
	}
	if _, ok := root.PublicKey.(*ecdsa.PublicKey); !ok {
		return nil, fmt.Errorf("load CA certificate %s: a %T key, want ECDSA", path, root.PublicKey)
	}
	return root, nil
}

func newCA(root *x509.Certificate, key *ecdsa.PrivateKey, opts CAOptions) *CA {
	return &CA{Root: root, key: key, rand: opts.Rand, now: opts.Now, cache: newCertCache(opts.CacheSize), rootDER: root.Raw}
}

// Fingerprint returns the SHA-256 fingerprint of a certificate as
// colon-separated upper-case hex, as operating systems show it.
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

// RootPEM returns the root certificate as PEM.
func (ca *CA) RootPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.rootDER})
}

// newSerial returns a random positive 128-bit serial number.
func newSerial(r io.Reader) (*big.Int, error) {
	var b [16]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	b[0] &= 0x7f // positive
	b[0] |= 0x40 // and never so short that it loses bytes
	return new(big.Int).SetBytes(b[:]), nil
}

// writeFile writes data to path through a synced temporary file renamed
// into place.
func writeFile(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func truncateRunes(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n])
	}
	return s
}
