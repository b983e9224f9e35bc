package web

import (
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
