package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/warden-schools/warden/internal/reviews"
)

// FuzzReviewForm decodes arbitrary form bodies as the review and report
// handlers do. Decoding must never panic, and what it accepts must be
// clean: valid UTF-8, trimmed, within its limit, with no control or
// bidirectional characters (line breaks only in messages).
func FuzzReviewForm(f *testing.F) {
	for _, s := range []string{
		"token=wbp1.abc.def&message=We+need+it+for+maths",
		"token=x&url=bad.example%2Fpage&message=line%0D%0Aline",
		"token=x&token=y",
		"message=%E2%80%AEevil%00%1B",
		"url=%FF%FE&message=%C3%A9%C3%A9",
		"url=http%3A%2F%2F%5B%3A%3A1%5D%3A80%2F",
		"message=" + strings.Repeat("%F0%9F%91%8D", 300),
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		v, err := url.ParseQuery(body)
		if err != nil {
			return
		}
		if rf, err := decodeReview(v); err == nil {
			checkClean(t, "message", rf.Message, reviews.MaxMessageLen, true)
		}
		if rf, err := decodeReport(v); err == nil {
			checkClean(t, "url", rf.URL, reviews.MaxURLLen, false)
			checkClean(t, "message", rf.Message, reviews.MaxMessageLen, true)
			if rf.URL == "" || reviews.HostOf(rf.URL) == "" {
				t.Fatalf("report accepted without a usable address: %q", rf.URL)
			}
		}
	})
}

func checkClean(t *testing.T, field, s string, max int, multiline bool) {
	t.Helper()
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > max || strings.TrimSpace(s) != s {
		t.Fatalf("%s not clean: %q", field, s)
	}
	for _, r := range s {
		if (unicode.IsControl(r) && !(multiline && r == '\n')) || isBidiControl(r) {
			t.Fatalf("%s keeps %U: %q", field, r, s)
		}
	}
}

// FuzzFreeTextForms: the staff approval form on the block page and the
// access-log viewer's filter take free text from anyone who can reach
// them; decoding must never panic, and what it keeps is valid, bounded
// text.
func FuzzFreeTextForms(f *testing.F) {
	for _, s := range []string{
		"token=x&login=gsmith&password=p&reason=Year+5+science",
		"login=%FF%FE&reason=%E2%80%AE%00&password=" + strings.Repeat("a", 2000),
		"person=mia&site=ROBLOX&from=2026-09-03T09%3A00&to=x&before=-1&action=block",
		"person=" + strings.Repeat("%C3%A9", 400) + "&group=%0A%0D",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		if form, err := decodeYouTube(v); err == nil {
			if !utf8.ValidString(form.Login) || !utf8.ValidString(form.Reason) || utf8.RuneCountInString(form.Reason) > 500 ||
				form.Login == "" || form.Reason == "" || len(form.Password) > 1024 {
				t.Fatalf("decodeYouTube(%q) kept %+v", raw, form)
			}
		}
		mf := readMonitoringForm(&http.Request{URL: &url.URL{RawQuery: raw}})
		for _, s := range []string{mf.Person, mf.Device, mf.Group, mf.Category, mf.Action, mf.Site, mf.From, mf.To} {
			if !utf8.ValidString(s) || len(s) > 254 {
				t.Fatalf("readMonitoringForm(%q) kept %q", raw, s)
			}
		}
		_ = mf.describe()
	})
}
