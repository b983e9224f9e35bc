package blockpage

import (
	"testing"
	"time"
)

// FuzzVerifyToken feeds arbitrary tokens to VerifyToken: it must never
// panic, and must accept nothing but the genuine token.
func FuzzVerifyToken(f *testing.F) {
	p, err := New(Options{Key: testKey, ActionURL: "https://w.example", Rand: zeroRand{}, Now: func() time.Time { return testNow }})
	if err != nil {
		f.Fatal(err)
	}
	genuine, err := signToken(testKey, Claims{Ref: "0RT1S00000", Issued: testNow, Host: "bet365.com"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(genuine)
	f.Add("")
	f.Add("wbp1.")
	f.Add("wbp1.e30.AAAA")
	f.Add("wbp1." + genuine[len(tokenPrefix):len(genuine)-3] + "AAA")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := p.Verify(tok)
		if err == nil && tok != genuine {
			// A different string can only verify if it decodes to the
			// same bytes (base64 without padding has no other form).
			if c.Host != "bet365.com" || c.Ref != "0RT1S00000" {
				t.Fatalf("forged token accepted: %q -> %+v", tok, c)
			}
		}
	})
}

// FuzzParseRef: ParseRef never panics, and what it returns is canonical.
func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"0RT1S00000", "0rt1s-00000", "IIIII LLLLL", "", "é", "0000000000000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRef(s)
		if err == nil && !ValidRef(r) {
			t.Fatalf("ParseRef(%q) = %q, not canonical", s, r)
		}
	})
}
