package web

import (
	"bytes"
	"context"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/warden-schools/warden/internal/audit"
	"github.com/warden-schools/warden/internal/auth"
	"github.com/warden-schools/warden/internal/directory"
)

// upload posts a CSV file to the import form as a browser would.
func (b *browser) upload(csrf, name, content, kind string) page {
	b.t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	w.WriteField("csrf", csrf)
	w.WriteField("kind", kind)
	fw, _ := w.CreateFormFile("file", name)
	io.WriteString(fw, content)
	w.Close()
	req, _ := http.NewRequest("POST", b.f.srv.URL+"/people/import", &body)
	req.Header.Set("Content-Type", w.FormDataContentType())
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return page{status: resp.StatusCode, body: string(raw), header: resp.Header}
}

func TestConsoleImport(t *testing.T) {
	f := newConsoleFixture(t, func(o *ConsoleOptions) { o.SignInLimit = 1000 })
	ctx := context.Background()
	f.account(t, "itech", auth.RoleIT)
	f.account(t, "leader", auth.RoleLeadership)
	b := f.browser(t)
	b.signIn("itech", testPassword)
	form := b.do("GET", "/people/import", nil)
	if form.status != http.StatusOK || !strings.Contains(form.body, `enctype="multipart/form-data"`) {
		t.Fatalf("import form: %d", form.status)
	}
	tok := b.csrf(form)

	// A file with wrong rows: each is named with its line; nothing changes.
	bad := "UPN,Legal Forename,Legal Surname,Year\nA820000000101,Ava,Evans,R\n,Noah,,99\n"
	p := b.upload(tok, "pupils.csv", bad, "pupil")
	if p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, "pupils.csv:3") || strings.Contains(p.body, "Import these") {
		t.Fatalf("bad file: %d\n%s", p.status, p.body)
	}
	// A good file: preview, then import.
	good := "UPN,Legal Forename,Legal Surname,Year\nA820000000101,Ava,Evans,R\nA820000000102,Noah,Patel,2\n"
	p = b.upload(tok, "pupils.csv", good, "pupil")
	if p.status != http.StatusOK || !strings.Contains(p.body, "<strong>2 new</strong>") {
		t.Fatalf("preview: %d\n%s", p.status, p.body)
	}
	if _, n, _ := f.dir.People(ctx, directory.PeopleFilter{Kind: directory.KindPupil}); n != 0 {
		t.Fatal("the preview imported")
	}
	up := regexp.MustCompile(`name="upload" value="([0-9a-f]+)"`).FindStringSubmatch(p.body)
	if up == nil {
		t.Fatal("no confirmation form")
	}
	// Someone else cannot confirm another's upload.
	l := f.browser(t)
	l.signIn("leader", testPassword)
	if p := l.do("POST", "/people/import/confirm", url.Values{"csrf": {l.csrf(l.do("GET", "/", nil))}, "upload": {up[1]}}); p.status != http.StatusForbidden {
		t.Errorf("leadership confirming: %d", p.status)
	}
	p = b.do("POST", "/people/import/confirm", url.Values{"csrf": {tok}, "upload": {up[1]}})
	if p.status != http.StatusOK || !strings.Contains(p.body, "Imported pupils.csv: 2 new") {
		t.Fatalf("confirm: %d\n%s", p.status, p.body)
	}
	if _, n, _ := f.dir.People(ctx, directory.PeopleFilter{Kind: directory.KindPupil}); n != 2 {
		t.Fatalf("%d pupils after the import", n)
	}
	if p := b.do("POST", "/people/import/confirm", url.Values{"csrf": {tok}, "upload": {up[1]}}); p.status != http.StatusBadRequest {
		t.Errorf("confirming twice: %d", p.status)
	}
	if entries, _, _ := f.audit.List(ctx, audit.Filter{Action: audit.ActionPeopleImported}); len(entries) != 1 || !strings.Contains(entries[0].Detail, "2 new") {
		t.Errorf("import audited: %+v", entries)
	}
}
