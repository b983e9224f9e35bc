package auth

import (
	"bytes"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
)

// testParams are cheap costs for tests; the defaults are tested once.
var testParams = Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func TestHashAndVerify(t *testing.T) {
	for _, p := range []Params{testParams, DefaultParams()} {
		h, err := HashPassword(rand.Reader, p, "correct horse battery staple")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(h, "$argon2id$v=19$") {
			t.Fatalf("hash %q is not a PHC argon2id string", h)
		}
		ok, got, err := VerifyPassword(h, "correct horse battery staple")
		if err != nil || !ok || got != p {
			t.Fatalf("verify right password: ok=%v params=%+v err=%v", ok, got, err)
		}
		ok, _, err = VerifyPassword(h, "correct horse battery stapler")
		if err != nil || ok {
			t.Fatalf("verify wrong password: ok=%v err=%v", ok, err)
		}
	}
	a, _ := HashPassword(rand.Reader, testParams, "same")
	b, _ := HashPassword(rand.Reader, testParams, "same")
	if a == b {
		t.Error("two hashes of one password are equal: the salt is not fresh")
	}
	if _, err := HashPassword(rand.Reader, testParams, strings.Repeat("x", maxPasswordBytes+1)); err == nil {
		t.Error("an over-long password was hashed")
	}
}

// A vector from the reference implementation's command-line tool
// (Debian's argon2: echo -n "pa55word for tests" | argon2 saltsaltsaltsalt
// -id -t 1 -m 6 -p 1 -l 32 -e), so hashes stay compatible with others.
func TestVerifyReferenceVector(t *testing.T) {
	const h = "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$HhzSnsLZ381Iglf8+6bYIiLI3t5SfBrWySsUyP0oow8"
	ok, p, err := VerifyPassword(h, "pa55word for tests")
	if err != nil || !ok || p != testParams {
		t.Fatalf("reference hash: ok=%v params=%+v err=%v", ok, p, err)
	}
	if got := p.encode([]byte("saltsaltsaltsalt"), mustKey(t, "pa55word for tests", []byte("saltsaltsaltsalt"))); got != h {
		t.Fatalf("encoding differs from the reference:\n got %s\nwant %s", got, h)
	}
}

func mustKey(t *testing.T, pw string, salt []byte) []byte {
	t.Helper()
	h, err := HashPassword(bytes.NewReader(salt), testParams, pw)
	if err != nil {
		t.Fatal(err)
	}
	_, _, key, err := parseHash(h)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func TestParseHashRejects(t *testing.T) {
	good, _ := HashPassword(rand.Reader, testParams, "x")
	parts := strings.Split(good, "$")
	salt, key := parts[4], parts[5]
	for _, tc := range []struct{ name, hash string }{
		{"empty", ""},
		{"bcrypt", "$2a$10$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz0123"},
		{"argon2i", "$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + key},
		{"old version", "$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key},
		{"missing parameter", "$argon2id$v=19$m=64,t=1$" + salt + "$" + key},
		{"parameters out of order", "$argon2id$v=19$t=1,m=64,p=1$" + salt + "$" + key},
		{"huge memory", "$argon2id$v=19$m=4194304,t=1,p=1$" + salt + "$" + key},
		{"zero time", "$argon2id$v=19$m=64,t=0,p=1$" + salt + "$" + key},
		{"many lanes", "$argon2id$v=19$m=64,t=1,p=200$" + salt + "$" + key},
		{"leading zero", "$argon2id$v=19$m=064,t=1,p=1$" + salt + "$" + key},
		{"padded salt", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "==$" + key},
		{"short salt", "$argon2id$v=19$m=64,t=1,p=1$AAAA$" + key},
		{"short key", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$AAAA"},
		{"extra field", good + "$x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, _, err := VerifyPassword(tc.hash, "x")
			if ok || !errors.Is(err, ErrBadHash) {
				t.Errorf("VerifyPassword(%q) = %v, %v; want ErrBadHash", tc.hash, ok, err)
			}
		})
	}
}

// FuzzParseHash: a stored hash comes from the database, which someone may
// have edited; no input may panic or pass out-of-range costs.
func FuzzParseHash(f *testing.F) {
	good, _ := HashPassword(rand.Reader, testParams, "x")
	f.Add(good)
	f.Add("$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5")
	f.Add("$$$$$")
	f.Fuzz(func(t *testing.T, s string) {
		p, salt, key, err := parseHash(s)
		if err != nil {
			return
		}
		if p.check() != nil || len(salt) != int(p.SaltLen) || len(key) != int(p.KeyLen) {
			t.Fatalf("parseHash(%q) accepted %+v", s, p)
		}
	})
}

func TestCheckPassword(t *testing.T) {
	var c Checker
	for _, tc := range []struct {
		pw       string
		min      int
		personal []string
		ok       bool
	}{
		{"correct horse battery staple", 12, nil, true},
		{"Tr0ub4dor&3xq", 12, nil, true},
		{"short", 8, nil, false},
		{"elevenchars", 12, nil, false},
		{"elevenchars", 8, nil, true},
		{"password", 8, nil, false},
		{"Password123!", 8, nil, false},    // common word, digits added
		{"2024sunshine!!", 12, nil, false}, // common word, both ends
		{"baseball", 8, nil, false},
		{"aaaaaaaaaaaaaaaa", 12, nil, false},
		{"abababababababab", 12, nil, false},
		{"1234567890123", 12, nil, false},
		{"qwertyuiopasd", 12, nil, false},
		{"jsmith likes maths", 12, []string{"J", "Smith", "jsmith"}, false},
		{"greenfield is great", 12, []string{"Greenfield Primary School"}, false},
		{"tom goes to the park", 12, []string{"Tom"}, true}, // three letters: ignored
		{"with\x00nul byte inside", 12, nil, false},
		{"\xff\xfe not utf-8 at all", 12, nil, false},
		{strings.Repeat("long enough phrase ", 10), 12, nil, false}, // over 128
		{"ünïcödé pässwörd ok", 12, nil, true},
	} {
		err := c.Check(tc.pw, tc.min, tc.personal...)
		var weak *WeakPasswordError
		if tc.ok != (err == nil) || (err != nil && !errors.As(err, &weak)) {
			t.Errorf("Check(%q, %d) = %v, want ok=%v", tc.pw, tc.min, err, tc.ok)
		}
	}
}

func TestCommonListLoaded(t *testing.T) {
	var c commonSet
	if !c.has("password") || !c.has("iloveyou") || c.has("# common passwords") || len(c.set) < 15000 {
		t.Fatalf("embedded common-password list not read right (%d entries)", len(c.set))
	}
}

func BenchmarkVerifyDefault(b *testing.B) {
	h, _ := HashPassword(rand.Reader, DefaultParams(), "correct horse battery staple")
	for b.Loop() {
		VerifyPassword(h, "correct horse battery staple")
	}
}
