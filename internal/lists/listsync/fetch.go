package listsync

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/warden-schools/warden/internal/lists"
)

// Fetch defaults.
const (
	// DefaultMaxDownload bounds a downloaded set (the whole UT1 archive
	// is some 20 MB compressed).
	DefaultMaxDownload = 512 << 20
	// DefaultMinShare is how much of the entries in force a new set must
	// hold: a set that suddenly shrinks is a broken download, not a
	// cleaner Internet.
	DefaultMinShare = 0.5
	// fetchTimeout bounds a download.
	fetchTimeout = 10 * time.Minute
)

// ErrBadDownload marks a download refused before anything was stored:
// the lists in force stay as they were.
var ErrBadDownload = errors.New("bad download")

// FetchOptions say where a UT1 set is downloaded from.
type FetchOptions struct {
	// URL is the UT1 archive (blacklists.tar.gz), http or https.
	URL string
	// Actor is who updates, for the change record.
	Actor string
	// Client makes the request (nil: one with a 10-minute limit).
	Client *http.Client
	// MaxBytes bounds the download (DefaultMaxDownload).
	MaxBytes int64
	// MinShare is the least share of the UT1 entries in force the new
	// set may hold (DefaultMinShare; a negative value turns the check
	// off, for a first import).
	MinShare float64
}

// FetchResult says what an update did.
type FetchResult struct {
	ImportResult
	// Bytes and SHA256 describe the download.
	Bytes  int64
	SHA256 string
}

// FetchUT1 downloads a UT1 set and stores it as Import does, but only if
// it is sound: an answer other than 200, an HTML page, a download over
// MaxBytes, a damaged archive, a set with no mapped category, one much
// smaller than the set in force, or one the lists in force cannot be
// compiled with is refused (ErrBadDownload) and the lists in force are
// kept. Nothing is written until all of it has been read and checked.
func (s *Store) FetchUT1(ctx context.Context, o FetchOptions) (FetchResult, error) {
	bad := func(format string, args ...any) (FetchResult, error) {
		return FetchResult{}, fmt.Errorf("update from %s: %w: %s", o.URL, ErrBadDownload, fmt.Sprintf(format, args...))
	}
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return bad("give an http or https address")
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxDownload
	}
	if o.MinShare == 0 {
		o.MinShare = DefaultMinShare
	}
	client := o.Client
	if client == nil {
		client = &http.Client{Timeout: fetchTimeout}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.URL, nil)
	if err != nil {
		return bad("%v", err)
	}
	req.Header.Set("User-Agent", "Warden list update")
	resp, err := client.Do(req)
	if err != nil {
		return bad("%v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return bad("the server answered %s", resp.Status)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "text/html" {
		return bad("the server sent a web page, not an archive (a login or error page?)")
	}
	tmp, err := os.CreateTemp("", "warden-ut1-*.tar.gz")
	if err != nil {
		return FetchResult{}, fmt.Errorf("update from %s: %w", o.URL, err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(resp.Body, o.MaxBytes+1))
	if err != nil {
		return bad("the download broke off after %d bytes: %v", n, err)
	}
	if n > o.MaxBytes {
		return bad("the download is over %d bytes", o.MaxBytes)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return FetchResult{}, err
	}
	cats, err := lists.ReadUT1Tar(tmp, o.URL)
	if err != nil {
		return bad("the archive is damaged: %v", err)
	}
	res, ls, malformed, err := s.buildUT1(cats, o.URL)
	if err != nil {
		return bad("%v", err)
	}
	if err := s.checkUT1(ctx, ls, o.MinShare); err != nil {
		return bad("%v", err)
	}
	res, err = s.writeUT1(ctx, res, ls, malformed, o.URL, o.Actor)
	if err != nil {
		return FetchResult{}, err
	}
	return FetchResult{ImportResult: res, Bytes: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// checkUT1 compares a new UT1 set with the lists in force: it must hold
// at least minShare of the UT1 entries in force, and compile together
// with every other list.
func (s *Store) checkUT1(ctx context.Context, ls []*lists.List, minShare float64) error {
	current, _, err := s.Load(ctx)
	if err != nil {
		return fmt.Errorf("read the lists in force: %w", err)
	}
	entries := func(l *lists.List) int { return len(l.Domains) + len(l.URLs) + len(l.Hashes) }
	var before, after int
	all := make([]*lists.List, 0, len(current)+len(ls))
	for _, l := range current {
		if strings.HasPrefix(l.ID, "ut1/") {
			before += entries(l)
			continue
		}
		all = append(all, l)
	}
	for _, l := range ls {
		after += entries(l)
	}
	if minShare > 0 && float64(after) < minShare*float64(before) {
		return fmt.Errorf("the new set has %d entries where %d are in force: it looks cut short, so the lists in force are kept", after, before)
	}
	if _, err := lists.Compile(append(all, ls...)); err != nil {
		return fmt.Errorf("the new set cannot be used with the other lists: %v", err)
	}
	return nil
}
