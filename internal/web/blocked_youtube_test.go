package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/warden-schools/warden/internal/auth"
	"github.com/warden-schools/warden/internal/store"
)

// approverFunc adapts a function to YouTubeApprover; the app's real one
// (accounts and exceptions) is tested end to end in internal/app.
type approverFunc func(ctx context.Context, login, password, group, url, reason string) error

func (f approverFunc) ApproveYouTubeAsStaff(ctx context.Context, login, password, group, url, reason string) error {
	return f(ctx, login, password, group, url, reason)
}

func TestYouTubeApproval(t *testing.T) {
	type call struct{ login, password, group, url, reason string }
	var calls []call
	fx := newFixture(t, func(o *Options) {
		o.RateLimit = 100
		o.YouTube = approverFunc(func(_ context.Context, login, password, group, url, reason string) error {
			calls = append(calls, call{login, password, group, url, reason})
			switch password {
			case "right password here":
				return nil
			case "pupil password":
				return fmt.Errorf("Mia Jones (role none): %w", auth.ErrNotPermitted)
			case "locked":
				return &auth.LockedError{Until: time.Date(2026, 9, 3, 9, 0, 0, 0, time.UTC)}
			case "again":
				return fmt.Errorf("video dQw4w9WgXcQ is already approved for key-stage-2 (by gsmith on 3 September 2026): %w", store.ErrConflict)
			case "broken":
				return fmt.Errorf("database is locked")
			}
			return auth.ErrInvalidCredentials
		})
	})
	const video = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
	tok := fx.token(t, video)
	form := func(password string) url.Values {
		return url.Values{"token": {tok}, "login": {"  gsmith "}, "password": {password}, "reason": {"Year 5 science:\tvolcanoes"}}
	}
	r := fx.do(t, "POST", "/blocked/youtube", "", form("right password here"))
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "thanks?kind=youtube&ref=") {
		t.Fatalf("approval: %d %s\n%s", r.status, r.header.Get("Location"), r.body)
	}
	if len(calls) != 1 || calls[0] != (call{"gsmith", "right password here", "key-stage-2", video, "Year 5 science: volcanoes"}) {
		t.Fatalf("approver called with %+v", calls)
	}
	must(t, fx.do(t, "GET", "/blocked/"+r.header.Get("Location"), "", nil), http.StatusOK, "Approved for teaching")

	for _, tc := range []struct {
		name   string
		form   url.Values
		status int
		want   string
	}{
		{"wrong password", form("wrong"), http.StatusForbidden, "Sign-in failed"},
		{"pupil", form("pupil password"), http.StatusForbidden, "Only staff can approve"},
		{"locked", form("locked"), http.StatusForbidden, "locked until"},
		{"already approved", form("again"), http.StatusOK, "already approved for key-stage-2"},
		{"store failure", form("broken"), http.StatusServiceUnavailable, "was not approved"},
		{"no reason", url.Values{"token": {tok}, "login": {"gsmith"}, "password": {"x"}, "reason": {" "}}, http.StatusBadRequest, "which lesson"},
		{"no password", url.Values{"token": {tok}, "login": {"gsmith"}, "reason": {"r"}}, http.StatusBadRequest, "Warden password"},
		{"bad token", url.Values{"token": {tok + "x"}, "login": {"gsmith"}, "password": {"x"}, "reason": {"r"}}, http.StatusBadRequest, "could not be sent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			must(t, fx.do(t, "POST", "/blocked/youtube", "", tc.form), tc.status, tc.want)
		})
	}
	// A block page with no URL (a name the DNS filter blocked) offers no
	// approval.
	hostOnly := tokenOf(t, fx.do(t, "GET", "/blocked?host=www.youtube.com", "", nil).body)
	must(t, fx.do(t, "POST", "/blocked/youtube", "", url.Values{"token": {hostOnly}, "login": {"gsmith"}, "password": {"right password here"}, "reason": {"r"}}),
		http.StatusBadRequest, "does not offer an approval")
}

func TestYouTubeApprovalOff(t *testing.T) {
	fx := newFixture(t, nil)
	if r := fx.do(t, "POST", "/blocked/youtube", "", url.Values{"token": {"x"}}); r.status != http.StatusNotFound {
		t.Fatalf("without an approver: %d", r.status)
	}
}
