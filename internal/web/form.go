package web

import (
	"fmt"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/warden-schools/warden/internal/blockpage"
	"github.com/warden-schools/warden/internal/reviews"
)

// maxFormBytes bounds a form's body: a token (under 4 KiB), a 2 KiB
// address and a message of 1,000 characters (at most 4 KiB of UTF-8,
// tripled by percent-encoding) fit.
const maxFormBytes = 16 << 10

// formError is a problem with a form, written to be shown to the person
// who sent it.
type formError struct{ msg string }

func (e *formError) Error() string { return e.msg }

func formErrorf(format string, args ...any) error {
	return &formError{msg: fmt.Sprintf(format, args...)}
}

// reviewForm is a decoded review form.
type reviewForm struct {
	Token   string
	Message string
}

// reportForm is a decoded report form.
type reportForm struct {
	Token   string
	URL     string
	Message string
}

// decodeReview reads a review form's fields.
func decodeReview(v url.Values) (reviewForm, error) {
	var f reviewForm
	var err error
	if f.Token, err = single(v, blockpage.FieldToken); err != nil {
		return reviewForm{}, err
	}
	if f.Message, err = single(v, blockpage.FieldMessage); err != nil {
		return reviewForm{}, err
	}
	if f.Message, err = cleanText("Your message", f.Message, reviews.MaxMessageLen, true); err != nil {
		return reviewForm{}, err
	}
	return f, nil
}

// decodeReport reads a report form's fields; the site's address is
// required.
func decodeReport(v url.Values) (reportForm, error) {
	var f reportForm
	var err error
	if f.Token, err = single(v, blockpage.FieldToken); err != nil {
		return reportForm{}, err
	}
	if f.URL, err = single(v, blockpage.FieldURL); err != nil {
		return reportForm{}, err
	}
	if f.Message, err = single(v, blockpage.FieldMessage); err != nil {
		return reportForm{}, err
	}
	if f.URL, err = cleanText("The site's address", f.URL, reviews.MaxURLLen, false); err != nil {
		return reportForm{}, err
	}
	if f.URL == "" {
		return reportForm{}, formErrorf("Please give the address of the site you want to report.")
	}
	if reviews.HostOf(f.URL) == "" {
		return reportForm{}, formErrorf("%q does not look like a site's address. Write it as it appears in the address bar, such as example.com/page.", shortText(f.URL, 60))
	}
	if f.Message, err = cleanText("Your message", f.Message, reviews.MaxMessageLen, true); err != nil {
		return reportForm{}, err
	}
	return f, nil
}

// single returns a field's only value ("" if absent); a field sent twice
// is refused, since the page's forms never do that.
func single(v url.Values, name string) (string, error) {
	switch vs := v[name]; len(vs) {
	case 0:
		return "", nil
	case 1:
		return vs[0], nil
	}
	return "", formErrorf("The form was sent with its %s field twice. Go back, reload the page and try again.", name)
}

// cleanText makes free text safe to store and show: it must be valid
// UTF-8; line endings become "\n" (kept only if multiline, else spaces),
// tabs become spaces, other control characters and the invisible
// characters that reorder text (bidirectional overrides) are removed;
// the result is trimmed and must have at most max characters.
func cleanText(field, s string, max int, multiline bool) (string, error) {
	if !utf8.ValidString(s) {
		return "", formErrorf("%s has characters that could not be read. Please type it again.", field)
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case r == '\n' || r == '\r':
			if multiline {
				b.WriteByte('\n')
			} else {
				b.WriteByte(' ')
			}
		case r == '\t':
			b.WriteByte(' ')
		case unicode.IsControl(r) || isBidiControl(r):
		default:
			b.WriteRune(r)
		}
	}
	out := strings.TrimSpace(b.String())
	if n := utf8.RuneCountInString(out); n > max {
		return "", formErrorf("%s is %d characters long; please shorten it to %d or fewer.", field, n, max)
	}
	return out, nil
}

// isBidiControl reports the Unicode bidirectional formatting characters,
// which can make stored text display differently from what it says.
func isBidiControl(r rune) bool {
	return r >= 0x202A && r <= 0x202E || r >= 0x2066 && r <= 0x2069 || r == 0x200E || r == 0x200F || r == 0x061C
}

// shortText cuts s to n characters for showing it back.
func shortText(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}
