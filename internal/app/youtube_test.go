package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"html"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/warden-schools/warden/internal/audit"
	"github.com/warden-schools/warden/internal/auth"
	"github.com/warden-schools/warden/internal/config"
	"github.com/warden-schools/warden/internal/policy"
	"github.com/warden-schools/warden/internal/store"
)

func TestYouTubeApprovals(t *testing.T) {
	a := openDemo(t)
	ctx := context.Background()
	const video, channel = "dQw4w9WgXcQ", "UC_x5XG1OV2P6uZZ5FSM9Ttw"

	before, err := store.CurrentRevision(ctx, a.DB())
	if err != nil {
		t.Fatal(err)
	}
	got, err := a.ApproveYouTube(ctx, "cli:teacher", DemoKeyStage2, "https://youtu.be/"+video+"?t=3", "  Year 5\n volcanoes ")
	if err != nil {
		t.Fatal(err)
	}
	if got.Ref != (policy.YouTubeRef{Kind: policy.YouTubeVideo, ID: video}) || got.Reason != "Year 5 volcanoes" || got.ExceptionID == 0 {
		t.Errorf("approval %+v", got)
	}
	if _, err := a.ApproveYouTube(ctx, "cli:teacher", "", channel, "assemblies"); err != nil {
		t.Fatal(err)
	}
	// The change record has both.
	after, err := store.CurrentRevision(ctx, a.DB())
	if err != nil || after != before+2 {
		t.Errorf("revisions %d -> %d, %v", before, after, err)
	}
	var summary, actor string
	if err := a.DB().QueryRowContext(ctx, a.DB().Rebind("SELECT summary, actor FROM revisions WHERE id = ?"), before+1).Scan(&summary, &actor); err != nil {
		t.Fatal(err)
	}
	if summary != "allow exception youtube.com/watch?v="+video+" for key-stage-2" || actor != "cli:teacher" {
		t.Errorf("revision %q by %q", summary, actor)
	}

	// The proxy's policy sees them.
	if err := a.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	snap := a.Snapshot()
	if !snap.YouTubeApproved(DemoKeyStage2, video, "") || snap.YouTubeApproved(DemoVisitors, video, "") ||
		!snap.YouTubeApproved(DemoVisitors, "", channel) {
		t.Error("approvals not in the policy as given")
	}

	list, err := a.YouTubeApprovals(ctx, DemoKeyStage2)
	if err != nil || len(list) != 2 {
		t.Fatalf("list %+v, %v", list, err)
	}
	if list[0].Group != DemoKeyStage2 || list[0].By != "cli:teacher" || list[0].At.IsZero() || list[1].Group != "" || list[1].Ref.Kind != policy.YouTubeChannel {
		t.Errorf("list %+v", list)
	}
	if list, _ := a.YouTubeApprovals(ctx, DemoVisitors); len(list) != 1 {
		t.Errorf("visitors see %+v", list)
	}

	// Errors that say what to do.
	tests := []struct {
		name, group, what string
		is                error
		msg               string
	}{
		{"again", DemoKeyStage2, "https://www.youtube.com/watch?v=" + video, store.ErrConflict, "already approved"},
		{"no group", "key-stage-9", video, store.ErrNotFound, "no group"},
		{"not YouTube", DemoKeyStage2, "https://example.com/watch?v=" + video, policy.ErrNotYouTube, "not a YouTube"},
		{"handle", DemoKeyStage2, "https://www.youtube.com/@teacher", policy.ErrNotYouTube, "channel ID"},
	}
	for _, tt := range tests {
		_, err := a.ApproveYouTube(ctx, "cli:teacher", tt.group, tt.what, "")
		if !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
	if _, err := a.ApproveYouTube(ctx, "t", DemoKeyStage2, "M7lc1UVf-VE", strings.Repeat("x", MaxYouTubeReason+1)); err == nil {
		t.Error("a long reason was kept")
	}
	// A blocked video cannot be approved.
	if _, err := a.Policies.AddException(ctx, "test", DemoVisitors, policy.Exception{Action: policy.Block, Pattern: "www.youtube.com/watch?v=M7lc1UVf-VE"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ApproveYouTube(ctx, "t", DemoVisitors, "M7lc1UVf-VE", ""); err == nil || !strings.Contains(err.Error(), "blocked") {
		t.Errorf("approving a blocked video: %v", err)
	}

	// Revoking.
	if _, err := a.RevokeYouTube(ctx, "cli:teacher", DemoVisitors, channel); !errors.Is(err, ErrYouTubeNotApproved) || !strings.Contains(err.Error(), "every group") {
		t.Errorf("revoking a school-wide approval for one group: %v", err)
	}
	removed, err := a.RevokeYouTube(ctx, "cli:teacher", DemoKeyStage2, video)
	if err != nil || len(removed) != 1 || removed[0].Ref.ID != video {
		t.Fatalf("revoke: %+v, %v", removed, err)
	}
	if _, err := a.RevokeYouTube(ctx, "cli:teacher", DemoKeyStage2, video); !errors.Is(err, ErrYouTubeNotApproved) {
		t.Errorf("revoking again: %v", err)
	}
	if err := a.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if a.Snapshot().YouTubeApproved(DemoKeyStage2, video, "") {
		t.Error("the revoked video is still approved")
	}
}

// End to end: a pupil signed in to the inspecting proxy opens a YouTube
// video their group may not see; the block page, served inside the
// intercepted HTTPS, offers staff an approval form; a pupil cannot
// approve, a member of staff with their Warden password can; the
// approval is recorded in their name and the video is allowed for the
// group, and for nothing else.
func TestYouTubeApprovalFromBlockPage(t *testing.T) {
	const video = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
	var cfg config.Config
	a, l := serveDemo(t, func(c *config.Config) {
		if _, err := InitCA(*c, "Test School", false, time.Now); err != nil {
			t.Fatal(err)
		}
		c.Listen.Proxy = "127.0.0.1:0"
		c.ProxyAllowLoopback = true
		c.Proxy.Inspect = true
		c.Proxy.RequireAuth = true
		cfg = *c
	})
	ctx := t.Context()
	for login, set := range map[string]struct {
		pw   string
		role auth.Role
	}{"ava.evans": {"purple otter 42", auth.RoleNone}, "gsmith": {"paper lantern over the river", auth.RoleHeadteacher}} {
		p, err := a.Directory.PersonByLogin(ctx, login)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Accounts.Set(ctx, "test", p.ID, set.pw, auth.SetOptions{Role: set.role}); err != nil {
			t.Fatal(err)
		}
	}
	rootPEM, err := os.ReadFile(filepath.Join(CADir(cfg), "root.crt"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(rootPEM)
	proxyURL := &url.URL{Scheme: "http", Host: l.Proxy, User: url.UserPassword("ava.evans", "purple otter 42")}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL), TLSClientConfig: &tls.Config{RootCAs: roots}}}
	defer client.CloseIdleConnections()
	// Reception (early-years-ks1) may visit approved sites only. The
	// request never leaves Warden: it is decided inside the tunnel.
	resp, err := client.Get(video)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(body)
	action := "http://" + l.HTTP + "/blocked/youtube"
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "Ava Evans") || !strings.Contains(page, `action="`+action+`"`) ||
		!strings.Contains(page, "Teachers: approve this video for early-years-ks1") {
		t.Fatalf("block page: %d\n%s", resp.StatusCode, page)
	}
	m := regexp.MustCompile(`name="token" value="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no token in\n%s", page)
	}
	token := html.UnescapeString(m[1])
	post := func(login, password string) (int, string) {
		t.Helper()
		c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := c.PostForm(action, url.Values{"token": {token}, "login": {login}, "password": {password}, "reason": {"Reception: minibeasts"}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Location") + string(b)
	}
	if code, out := post("ava.evans", "purple otter 42"); code != http.StatusForbidden || !strings.Contains(out, "Only staff can approve") {
		t.Fatalf("pupil approving: %d %s", code, out)
	}
	if code, out := post("gsmith", "not my password"); code != http.StatusForbidden || !strings.Contains(out, "Sign-in failed") {
		t.Fatalf("wrong password: %d %s", code, out)
	}
	if code, out := post("gsmith", "paper lantern over the river"); code != http.StatusSeeOther || !strings.HasPrefix(out, "thanks?kind=youtube") {
		t.Fatalf("staff approving: %d %s", code, out)
	}
	approvals, err := a.YouTubeApprovals(ctx, DemoEarlyYears)
	if err != nil || len(approvals) != 1 || approvals[0].Ref.ID != "dQw4w9WgXcQ" || approvals[0].By != "gsmith" ||
		approvals[0].Group != DemoEarlyYears || approvals[0].Reason != "Reception: minibeasts" {
		t.Fatalf("approvals %+v, %v", approvals, err)
	}
	// Every attempt is in the audit log, whose chain holds.
	log, err := a.AuditLog()
	if err != nil {
		t.Fatal(err)
	}
	entries, _, err := log.List(ctx, audit.Filter{Action: audit.ActionYouTubeApproved})
	if err != nil || len(entries) != 3 {
		t.Fatalf("audit entries %+v, %v", entries, err)
	}
	if e := entries[0]; e.Actor != "gsmith" || e.Outcome != audit.OK || e.Target != DemoEarlyYears+" "+video || e.Detail != "Reception: minibeasts" {
		t.Errorf("approval's audit entry %+v", e)
	}
	if entries[1].Outcome != audit.Failed || entries[2].Outcome != audit.Refused {
		t.Errorf("refusals' audit entries %+v", entries[1:])
	}
	if rep, err := log.Verify(ctx); err != nil || !rep.Intact() {
		t.Errorf("audit chain: %+v %v", rep, err)
	}
	if err := a.ReloadIfChanged(ctx); err != nil {
		t.Fatal(err)
	}
	for target, want := range map[string]policy.Action{video: policy.Allow, "https://www.youtube.com/watch?v=aaaaaaaaaaa": policy.Block} {
		res, err := a.Check(ctx, CheckRequest{Target: target, Group: DemoEarlyYears})
		if err != nil || res.Explanation.Decision.Action != want {
			t.Errorf("check %s: %+v, %v; want %s", target, res.Explanation.Decision, err, want)
		}
	}
}
