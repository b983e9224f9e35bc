package directory

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Field length limits. MIS values are far shorter; the limits keep a
// corrupt file from filling the database.
const (
	maxNameLen  = 100
	maxKeyLen   = 64
	maxEmailLen = 254
	maxTextLen  = 100
)

// cleanText trims a value and rejects control characters, invalid UTF-8
// and overlong values. what names the value in the error.
func cleanText(what, s string, max int) (string, error) {
	s = strings.TrimSpace(s)
	if !utf8.ValidString(s) {
		return "", invalidf("%s is not valid text", what)
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == '\uFEFF' {
			return "", invalidf("%s contains a control character", what)
		}
	}
	if utf8.RuneCountInString(s) > max {
		return "", invalidf("%s is longer than %d characters", what, max)
	}
	return s, nil
}

// normUPN checks the shape of a Unique Pupil Number (13 letters or digits)
// and returns it upper-cased; "" stays "". The check letter is not
// verified: temporary UPNs and test data do not carry a valid one.
func normUPN(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	if len(s) != 13 {
		return "", invalidf("UPN %q should be 13 letters and digits, not %d characters", trunc(s), utf8.RuneCountInString(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return "", invalidf("UPN %q should be 13 letters and digits", trunc(s))
		}
	}
	return strings.ToUpper(s), nil
}

// normKey checks an MIS id or admission number: no spaces inside, no
// control characters, at most maxKeyLen characters.
func normKey(what, s string) (string, error) {
	s, err := cleanText(what, s, maxKeyLen)
	if err != nil {
		return "", err
	}
	if strings.ContainsFunc(s, unicode.IsSpace) {
		return "", invalidf("%s %q contains a space", what, s)
	}
	return s, nil
}

// canonKey is the form in which MIS ids and admission numbers are
// compared: upper case, and without leading zeros when all digits, since a
// spreadsheet program may have turned "000123" into "123" between two
// exports of the same pupil.
func canonKey(s string) string {
	if s == "" {
		return ""
	}
	if strings.Trim(s, "0123456789") == "" {
		t := strings.TrimLeft(s, "0")
		if t == "" {
			return "0"
		}
		return t
	}
	return strings.ToUpper(s)
}

// normUsername lower-cases a login name and checks it has no spaces or
// control characters.
func normUsername(s string) (string, error) {
	s, err := cleanText("username", s, maxTextLen)
	if err != nil {
		return "", err
	}
	if strings.ContainsFunc(s, unicode.IsSpace) {
		return "", invalidf("username %q contains a space", s)
	}
	return strings.ToLower(s), nil
}

// normEmail lower-cases an email address and checks its shape:
// local@domain, with a dot in the domain and no spaces.
func normEmail(s string) (string, error) {
	s, err := cleanText("email", s, maxEmailLen)
	if err != nil || s == "" {
		return "", err
	}
	local, domain, ok := strings.Cut(s, "@")
	bad := !ok || local == "" || domain == "" || strings.Contains(domain, "@") ||
		!strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") ||
		strings.Contains(domain, "..") ||
		strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || strings.ContainsRune(`<>()[]\,;:"`, r) })
	if bad {
		return "", invalidf("email %q is not an email address", trunc(s))
	}
	return strings.ToLower(s), nil
}

// trunc shortens a value quoted in an error message.
func trunc(s string) string {
	const max = 40
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max]) + "..."
}
