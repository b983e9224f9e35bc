package app

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/warden-schools/warden/internal/keyring"
	"github.com/warden-schools/warden/internal/proxy/inspect"
)

// CADir returns the school CA's folder: DATA_DIR/ca.
func CADir(cfg Config) string { return filepath.Join(cfg.DataDir, "ca") }

// MasterKeyPath returns the master key's file: DATA_DIR/master.key.
func MasterKeyPath(cfg Config) string { return filepath.Join(cfg.DataDir, keyring.FileName) }

// OpenKeyring loads the master key, creating it if there is none; created
// says it was made now (and must be backed up).
func OpenKeyring(cfg Config) (ring *keyring.Ring, created bool, err error) {
	path := MasterKeyPath(cfg)
	existed := keyring.Exists(path)
	ring, err = keyring.LoadOrCreate(path, rand.Reader)
	if err != nil {
		return nil, false, err
	}
	return ring, !existed, nil
}

// CAInfo describes the school CA for people: where its files are and
// what devices will show for it.
type CAInfo struct {
	Dir      string
	CertFile string // PEM, root.crt
	DERFile  string // DER, root.cer
	KeyFile  string // the sealed key
	// MasterKey is the master key file; MasterKeyCreated says this
	// command created it.
	MasterKey        string
	MasterKeyCreated bool
	Subject          string
	// Fingerprint is the SHA-256 fingerprint, colon-separated hex.
	Fingerprint string
	NotBefore   time.Time
	NotAfter    time.Time
	// KeyProblem, when not empty, says why the CA key cannot be used
	// (ShowCA only).
	KeyProblem string
}

// InitCA creates the master key if missing and a school root CA in
// CADir, named after schoolName (or, when empty, the school's name in
// the store, if there is one). It refuses to replace an existing CA unless force.
func InitCA(cfg Config, schoolName string, force bool, now func() time.Time) (CAInfo, error) {
	if strings.TrimSpace(schoolName) == "" {
		schoolName = storedSchoolName(cfg)
	}
	if now == nil {
		now = time.Now
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return CAInfo{}, fmt.Errorf("create data folder %s: %w", cfg.DataDir, err)
	}
	// Refuse before a master key is made for nothing.
	if !force {
		if _, err := os.Lstat(filepath.Join(CADir(cfg), inspect.RootCertFile)); err == nil {
			return CAInfo{}, fmt.Errorf("a school CA already exists in %s: give --force to replace it (devices then need the new root installed), or see it with `warden ca show`", CADir(cfg))
		}
	}
	ring, created, err := OpenKeyring(cfg)
	if err != nil {
		return CAInfo{}, err
	}
	ca, err := inspect.InitCA(CADir(cfg), ring, inspect.CAOptions{SchoolName: schoolName, Force: force, Now: now})
	if err != nil {
		return CAInfo{}, err
	}
	info := caInfo(cfg, ca)
	info.MasterKeyCreated = created
	return info, nil
}

// ShowCA describes the school CA, and checks that its key opens with the
// master key (without creating a master key).
func ShowCA(cfg Config) (CAInfo, error) {
	root, err := inspect.ReadRoot(CADir(cfg))
	if err != nil {
		return CAInfo{}, err
	}
	info := caInfo(cfg, &inspect.CA{Root: root})
	switch _, err := os.Lstat(info.MasterKey); {
	case errors.Is(err, fs.ErrNotExist):
		info.KeyProblem = fmt.Sprintf("the master key %s is missing: restore it from its backup (without it the CA key cannot be opened)", info.MasterKey)
	case err != nil:
		info.KeyProblem = err.Error()
	default:
		ring, err := keyring.Load(info.MasterKey, rand.Reader)
		if err == nil {
			_, err = inspect.LoadCA(CADir(cfg), ring, inspect.CAOptions{})
		}
		if err != nil {
			info.KeyProblem = err.Error()
		}
	}
	return info, nil
}

// LoadSchoolCA opens the master key and loads the school CA, for the
// server to inspect TLS with.
func LoadSchoolCA(cfg Config, ring *keyring.Ring) (*inspect.CA, error) {
	ca, err := inspect.LoadCA(CADir(cfg), ring, inspect.CAOptions{})
	if err != nil {
		return nil, fmt.Errorf("proxy.inspect is on but the school CA does not load (run warden ca init): %w", err)
	}
	return ca, nil
}

func caInfo(cfg Config, ca *inspect.CA) CAInfo {
	dir := CADir(cfg)
	return CAInfo{
		Dir:         dir,
		CertFile:    filepath.Join(dir, inspect.RootCertFile),
		DERFile:     filepath.Join(dir, inspect.RootDERFile),
		KeyFile:     filepath.Join(dir, inspect.RootKeyFile),
		MasterKey:   MasterKeyPath(cfg),
		Subject:     ca.Root.Subject.CommonName,
		Fingerprint: inspect.Fingerprint(ca.Root),
		NotBefore:   ca.Root.NotBefore,
		NotAfter:    ca.Root.NotAfter,
	}
}

// storedSchoolName reads the school's name from the store, or "" when
// there is no store yet (ca init must not create one) or it cannot be
// read.
func storedSchoolName(cfg Config) string {
	if _, err := os.Stat(cfg.DatabasePath()); err != nil {
		return ""
	}
	ctx := context.Background()
	a, err := Open(ctx, cfg, Options{})
	if err != nil {
		return ""
	}
	defer a.Close()
	st, err := a.Policies.Settings(ctx)
	if err != nil {
		return ""
	}
	return st.SchoolName
}
