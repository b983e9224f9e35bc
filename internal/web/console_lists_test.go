package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/warden-schools/warden/internal/audit"
	"github.com/warden-schools/warden/internal/auth"
	"github.com/warden-schools/warden/internal/lists/liststest"
)

// IT updates the UT1 lists from a loopback server serving a fixture
// archive; a damaged download is refused and the lists in force kept.
func TestConsoleListUpdate(t *testing.T) {
	f := newConsoleFixture(t, func(o *ConsoleOptions) { o.SignInLimit = 1000 })
	archive := liststest.Tar(t, []liststest.TarEntry{
		{Name: "blacklists/gambling/domains", Body: []byte("bet365.com\npaddypower.com\n")},
		{Name: "blacklists/games/domains", Body: []byte("roblox.com\ncoolmathgames.com\n")},
	}, true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/broken.tar.gz" {
			w.Write(archive[:len(archive)/2])
			return
		}
		w.Write(archive)
	}))
	defer srv.Close()
	f.account(t, "itech", auth.RoleIT)
	b := f.browser(t)
	b.signIn("itech", testPassword)
	update := func(u string) {
		t.Helper()
		p := b.do("POST", "/filtering/lists/update", url.Values{"csrf": {b.csrf(b.do("GET", "/filtering", nil))}, "url": {u}})
		if p.location != "/filtering?done=updating#lists-h" {
			t.Fatalf("start update: %d %s\n%s", p.status, p.location, p.body)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			f.console.updates.mu.Lock()
			running := f.console.updates.running
			f.console.updates.mu.Unlock()
			if !running {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("the update did not finish")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	update(srv.URL + "/blacklists.tar.gz")
	page := b.do("GET", "/filtering", nil).body
	for _, want := range []string{"ut1/gambling", "ut1/games", "2 lists read, 2 changed"} {
		if !strings.Contains(page, want) {
			t.Errorf("after the update the page lacks %q", want)
		}
	}
	update(srv.URL + "/broken.tar.gz")
	page = b.do("GET", "/filtering", nil).body
	if !strings.Contains(page, "failed, and the lists in force were kept") || !strings.Contains(page, "damaged") || !strings.Contains(page, "ut1/games") {
		t.Errorf("after a broken download:\n%s", page)
	}
	if p := b.do("POST", "/filtering/lists/update", url.Values{"csrf": {b.csrf(b.do("GET", "/filtering", nil))}, "url": {"file:///etc/passwd"}}); p.status != http.StatusBadRequest {
		t.Errorf("a file URL: %d", p.status)
	}
	// Staff cannot start an update.
	f.account(t, "teacher", auth.RoleStaff)
	s := f.browser(t)
	s.signIn("teacher", testPassword)
	if p := s.do("POST", "/filtering/lists/update", url.Values{"csrf": {s.csrf(s.do("GET", "/", nil))}, "url": {srv.URL}}); p.status != http.StatusForbidden {
		t.Errorf("staff updating lists: %d", p.status)
	}
	entries, _, _ := f.audit.List(context.Background(), audit.Filter{Action: audit.ActionListsUpdated})
	seen := map[string]int{}
	for _, e := range entries {
		seen[e.Outcome]++
	}
	if seen[audit.OK] != 3 || seen[audit.Failed] != 1 { // two starts and one success, one failure
		t.Errorf("list updates audited: %+v", entries)
	}
}
