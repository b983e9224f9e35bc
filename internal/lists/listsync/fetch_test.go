package listsync

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/warden-schools/warden/internal/lists/liststest"
)

// A UT1 set is updated from a loopback web server serving a fixture
// archive; every kind of bad download is refused with the lists in force
// kept.
func TestFetchUT1(t *testing.T) {
	ctx := context.Background()
	good := liststest.Tar(t, ut1Entries(t), true)
	small := liststest.Tar(t, ut1Entries(t)[:4], true) // a set cut short
	serve := map[string]func(http.ResponseWriter){
		"/blacklists.tar.gz": func(w http.ResponseWriter) { w.Write(good) },
		"/truncated.tar.gz":  func(w http.ResponseWriter) { w.Write(good[:len(good)/2]) },
		"/login": func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Write([]byte("<html><body>Please sign in</body></html>"))
		},
		"/small.tar.gz": func(w http.ResponseWriter) { w.Write(small) },
		"/garbage":      func(w http.ResponseWriter) { w.Write([]byte(strings.Repeat("not an archive ", 100))) },
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h, ok := serve[r.URL.Path]; ok {
			h(w)
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()

	s, db := newTestStore(t)
	res, err := s.FetchUT1(ctx, FetchOptions{URL: srv.URL + "/blacklists.tar.gz", Actor: "it"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Lists) == 0 || res.PolicyVersion == 0 || res.Bytes != int64(len(good)) || len(res.SHA256) != 64 {
		t.Fatalf("first update %+v", res)
	}
	before := snapshot(t, s, db)
	for _, tc := range []struct {
		name string
		o    FetchOptions
		want string
	}{
		{"not found", FetchOptions{URL: srv.URL + "/missing.tar.gz"}, "404"},
		{"a web page", FetchOptions{URL: srv.URL + "/login"}, "web page"},
		{"truncated", FetchOptions{URL: srv.URL + "/truncated.tar.gz"}, "damaged"},
		{"not an archive", FetchOptions{URL: srv.URL + "/garbage"}, "damaged"},
		{"cut short", FetchOptions{URL: srv.URL + "/small.tar.gz"}, "looks cut short"},
		{"too big", FetchOptions{URL: srv.URL + "/blacklists.tar.gz", MaxBytes: 100}, "over 100 bytes"},
		{"not http", FetchOptions{URL: "ftp://example.org/x"}, "http or https"},
		{"nothing listening", FetchOptions{URL: "http://127.0.0.1:1/x"}, "refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Actor = "it"
			_, err := s.FetchUT1(ctx, tc.o)
			if !errors.Is(err, ErrBadDownload) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v, want ErrBadDownload saying %q", err, tc.want)
			}
			checkUnchanged(t, before, snapshot(t, s, db))
		})
	}
	// The same set again changes nothing; a smaller set passes when the
	// check is turned off on purpose.
	if res, err := s.FetchUT1(ctx, FetchOptions{URL: srv.URL + "/blacklists.tar.gz", Actor: "it"}); err != nil || res.PolicyVersion != 0 {
		t.Fatalf("same set again: %+v %v", res, err)
	}
	if _, err := s.FetchUT1(ctx, FetchOptions{URL: srv.URL + "/small.tar.gz", Actor: "it", MinShare: -1}); err != nil {
		t.Fatalf("small set, check off: %v", err)
	}
}
