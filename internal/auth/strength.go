package auth

import (
	_ "embed"
	"fmt"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Password lengths: schools ask for strong passwords "for all but the
// youngest users"; the console asks at least 12 characters of staff.
const (
	// MinPasswordStaff is the shortest password for an adult or any
	// account with a console role.
	MinPasswordStaff = 12
	// MinPasswordPupil is the shortest password for a pupil's proxy
	// credentials.
	MinPasswordPupil = 8
	// MaxPasswordLen is the longest password accepted, in characters.
	MaxPasswordLen = 128
)

// WeakPasswordError says why a password was refused, in words to show the
// person choosing it.
type WeakPasswordError struct {
	Reason string
}

// Error gives the reason, for the person choosing the password.
func (e *WeakPasswordError) Error() string { return "password refused: " + e.Reason }

//go:embed common_passwords.txt
var commonPasswordsText string

// commonPasswords is the embedded list as a set, built on first use.
type commonSet struct {
	once sync.Once
	set  map[string]struct{}
}

func (c *commonSet) has(s string) bool {
	c.once.Do(func() {
		c.set = make(map[string]struct{}, 18000)
		for line := range strings.Lines(commonPasswordsText) {
			line = strings.TrimSpace(line)
			if line != "" && line[0] != '#' {
				c.set[line] = struct{}{}
			}
		}
	})
	_, ok := c.set[s]
	return ok
}

// Checker applies Warden's password rules. The zero value is ready.
type Checker struct {
	common commonSet
}

// sequences are runs that a password must not be a part of.
var sequences = [...]string{
	"01234567890123456789", "98765432109876543210",
	"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz", "zyxwvutsrqponmlkjihgfedcbazyxwvutsrqponmlkjihgfedcba",
	"qwertyuiopasdfghjklzxcvbnmqwertyuiop", "qwertzuiopasdfghjklyxcvbnm", "azertyuiopqsdfghjklmwxcvbn",
	"1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p", "qazwsxedcrfvtgbyhnujmikolp",
}

// Check reports, as a *WeakPasswordError, why password is not good enough
// for someone whose minimum length is minLen, or nil. personal holds words
// the password must not contain: the person's names, login and the
// school's name (words under four letters are ignored).
func (c *Checker) Check(password string, minLen int, personal ...string) error {
	weak := func(format string, args ...any) error {
		return &WeakPasswordError{Reason: fmt.Sprintf(format, args...)}
	}
	if !utf8.ValidString(password) {
		return weak("it is not valid text")
	}
	n := utf8.RuneCountInString(password)
	if n < minLen {
		return weak("it must be at least %d characters long (a few unrelated words make a strong one)", minLen)
	}
	if n > MaxPasswordLen {
		return weak("it must be at most %d characters long", MaxPasswordLen)
	}
	for _, r := range password {
		if unicode.IsControl(r) {
			return weak("it must not contain control characters")
		}
	}
	lower := strings.ToLower(password)
	distinct := map[rune]bool{}
	for _, r := range lower {
		distinct[r] = true
	}
	if len(distinct) < 5 {
		return weak("it repeats too few different characters")
	}
	if c.common.has(lower) {
		return weak("it is one of the most commonly used passwords")
	}
	// A common password with digits or symbols added at either end is as
	// easy to guess.
	core := strings.TrimFunc(lower, func(r rune) bool { return !unicode.IsLetter(r) })
	if core != lower && c.common.has(core) {
		return weak("it is a commonly used password with a few characters added")
	}
	for _, s := range sequences {
		if strings.Contains(s, lower) {
			return weak("it is a run of keys or characters in order")
		}
	}
	for _, p := range personal {
		for _, w := range strings.FieldsFunc(strings.ToLower(p), func(r rune) bool {
			return !unicode.IsLetter(r) && !unicode.IsDigit(r)
		}) {
			if utf8.RuneCountInString(w) >= 4 && strings.Contains(lower, w) {
				return weak("it must not contain your name, your login or the school's name")
			}
		}
	}
	return nil
}
