package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/warden-schools/warden/internal/audit"
	"github.com/warden-schools/warden/internal/auth"
	"github.com/warden-schools/warden/internal/directory"
	"github.com/warden-schools/warden/internal/identity"
	"github.com/warden-schools/warden/internal/lists"
	"github.com/warden-schools/warden/internal/policy"
)

// snapshotChecker answers with the real policy engine over the tests'
// snapshot (the app's own, over the store, is tested in internal/app).
type snapshotChecker struct {
	snap *policy.Snapshot
	dir  *directory.Directory
	now  func() time.Time
}

func (s snapshotChecker) CheckSite(ctx context.Context, q SiteCheck) (SiteAnswer, error) {
	var ans SiteAnswer
	switch {
	case q.Group != "":
		if !s.snap.HasGroup(q.Group) {
			return ans, fmt.Errorf("%w: no group %q", ErrBadCheck, q.Group)
		}
		ans.Subject = identity.Subject{Group: q.Group, Via: identity.ByGroup}
	case q.Login != "":
		p, err := s.dir.PersonByLogin(ctx, q.Login)
		if err != nil {
			return ans, err
		}
		ans.Subject = identity.Subject{Group: "key-stage-2", Person: p.DisplayName(), PersonID: p.ID, Via: identity.ByUser}
	default:
		ans.Subject = identity.Subject{Group: "key-stage-2", Via: identity.Unknown}
	}
	t := q.Time
	if t.IsZero() {
		t = s.now()
	}
	req := policy.Request{Group: ans.Subject.Group, ClientIP: q.IP, Time: t}
	if strings.Contains(q.Target, "/") {
		k, err := lists.NormalizeURL(q.Target)
		if err != nil {
			return ans, errors.Join(ErrBadCheck, err)
		}
		req.URL, ans.URL, ans.Host = q.Target, string(k), k.Host()
	} else {
		h, err := lists.NormalizeHost(q.Target)
		if err != nil {
			return ans, errors.Join(ErrBadCheck, err)
		}
		req.Host, ans.Host = h, h
	}
	ans.Explanation = s.snap.Explain(req)
	return ans, nil
}

func (s snapshotChecker) Groups() []policy.Group { return s.snap.Groups() }

func TestConsoleCheck(t *testing.T) {
	f := newConsoleFixture(t, nil)
	f.account(t, "teacher", auth.RoleStaff)
	f.account(t, "mia", auth.RoleNone) // a pupil
	b := f.browser(t)
	b.signIn("teacher", testPassword)
	if p := b.do("GET", "/check", nil); p.status != http.StatusOK || !strings.Contains(p.body, `<option value="key-stage-2"`) {
		t.Fatalf("empty form: %d\n%s", p.status, p.body)
	}
	for _, tc := range []struct {
		query  url.Values
		status int
		want   []string
		never  string
	}{
		{url.Values{"target": {"www.bet365.com"}, "group": {"key-stage-2"}}, http.StatusOK,
			[]string{"Blocked", "www.bet365.com", "gambling", "ut1/gambling", "bet365.com", "Policy version"}, ""},
		{url.Values{"target": {"https://images.example-host.net/secret-abuse-path/x.jpg"}, "group": {"key-stage-2"}}, http.StatusOK,
			[]string{"Blocked", "entry not shown"}, "secret-abuse-path</"},
		{url.Values{"target": {"www.bbc.co.uk"}, "person": {"mia"}}, http.StatusOK, []string{"Allowed", "Test Person mia", "user"}, ""},
		{url.Values{"target": {"www.bbc.co.uk"}}, http.StatusBadRequest, []string{"Say who is asking"}, ""},
		{url.Values{"target": {"www.bbc.co.uk"}, "group": {"nope"}}, http.StatusBadRequest, []string{"no group"}, ""},
		{url.Values{"target": {"www.bbc.co.uk"}, "person": {"nobody"}}, http.StatusBadRequest, []string{"not found"}, ""},
		{url.Values{"target": {"www.bbc.co.uk"}, "ip": {"10.1"}}, http.StatusBadRequest, []string{"not an IP address"}, ""},
		{url.Values{"target": {"exa mple"}, "group": {"key-stage-2"}}, http.StatusBadRequest, []string{"cannot check"}, ""},
		{url.Values{"target": {"x.com"}, "group": {"key-stage-2"}, "when": {"tomorrow"}}, http.StatusBadRequest, []string{"date and time"}, ""},
	} {
		p := b.do("GET", "/check?"+tc.query.Encode(), nil)
		if p.status != tc.status {
			t.Errorf("%v: %d, want %d\n%s", tc.query, p.status, tc.status, p.body)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(p.body, w) {
				t.Errorf("%v: page lacks %q", tc.query, w)
			}
		}
		if tc.never != "" && strings.Contains(p.body, tc.never) {
			t.Errorf("%v: page shows %q", tc.query, tc.never)
		}
	}
	if _, n, _ := f.audit.List(context.Background(), audit.Filter{Action: audit.ActionSiteChecked}); n < 3 {
		t.Errorf("%d checks audited", n)
	}
}
