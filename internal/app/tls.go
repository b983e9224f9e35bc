package app

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warden-schools/warden/internal/config"
)

// certCheckInterval is how often, at most, a handshake looks at the
// certificate files for a renewal.
const certCheckInterval = 10 * time.Second

// certReloader serves the configured certificate and picks up renewed
// files without a restart (certbot and most ACME clients replace them in
// place). A handshake at most every certCheckInterval compares the files'
// modification times and sizes with those loaded and, when they differ,
// loads them again. New files that do not load (say the key is not yet
// written beside its new certificate) leave the old certificate in use;
// the next check tries again, and the failure is logged once.
type certReloader struct {
	files config.TLS
	log   *slog.Logger
	now   func() time.Time

	cert atomic.Pointer[tls.Certificate]
	// checking is held by the one handshake that looks at the files;
	// others meanwhile get the certificate in use.
	checking sync.Mutex
	checked  time.Time
	loaded   fileStamp // the files the certificate in use came from
	lastErr  string    // the last failure logged, so it is logged once
}

// fileStamp tells one version of the certificate and key files from
// another.
type fileStamp struct {
	certMod, keyMod   time.Time
	certSize, keySize int64
}

func stampOf(files config.TLS) (fileStamp, error) {
	c, err := os.Stat(files.CertFile)
	if err != nil {
		return fileStamp{}, fmt.Errorf("tls.cert_file: %w", err)
	}
	k, err := os.Stat(files.KeyFile)
	if err != nil {
		return fileStamp{}, fmt.Errorf("tls.key_file: %w", err)
	}
	return fileStamp{certMod: c.ModTime(), keyMod: k.ModTime(), certSize: c.Size(), keySize: k.Size()}, nil
}

// newCertReloader loads the certificate; an error says what is wrong with
// the files, and nothing should start.
func newCertReloader(files config.TLS, log *slog.Logger, now func() time.Time) (*certReloader, error) {
	r := &certReloader{files: files, log: log.With("component", "tls"), now: now}
	// The stamp before the load: files replaced in between are loaded
	// again at the next check, never missed.
	st, err := stampOf(files)
	if err != nil {
		return nil, err
	}
	cert, err := files.Load()
	if err != nil {
		return nil, err
	}
	r.cert.Store(&cert)
	r.loaded, r.checked = st, now()
	return r, nil
}

// getCertificate is the tls.Config hook.
func (r *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if r.checking.TryLock() {
		if now := r.now(); now.Sub(r.checked) >= certCheckInterval {
			r.checked = now
			r.reload()
		}
		r.checking.Unlock()
	}
	return r.cert.Load(), nil
}

// reload loads the files again if they changed. The caller holds
// checking.
func (r *certReloader) reload() {
	st, err := stampOf(r.files)
	if err == nil && st == r.loaded {
		return
	}
	var cert tls.Certificate
	if err == nil {
		cert, err = r.files.Load()
	}
	if err != nil {
		if msg := err.Error(); msg != r.lastErr {
			r.lastErr = msg
			r.log.Error("certificate_reload_failed", "err", err)
		}
		return
	}
	r.cert.Store(&cert)
	r.loaded, r.lastErr = st, ""
	attrs := []any{"cert_file", r.files.CertFile}
	if cert.Leaf != nil {
		attrs = append(attrs, "not_after", cert.Leaf.NotAfter)
	}
	r.log.Info("certificate_reloaded", attrs...)
}

// tlsConfig is the server configuration for the web listener and
// DNS-over-TLS.
func (r *certReloader) tlsConfig() *tls.Config {
	return &tls.Config{GetCertificate: r.getCertificate, MinVersion: tls.VersionTLS12}
}
