package searchengines

import "testing"

func TestGoogleHosts(t *testing.T) {
	h := GoogleHosts()
	for _, name := range []string{"google.com", "www.google.com", "google.co.uk", "www.google.co.uk", "www.google.de"} {
		if !h[name] {
			t.Errorf("%s is not a Google search host", name)
		}
	}
	for _, name := range []string{"google.example", "mail.google.com", ".google.com", ""} {
		if h[name] {
			t.Errorf("%q counted as a Google search host", name)
		}
	}
	if n := len(GoogleDomains()); n < 150 {
		t.Errorf("%d Google domains, want Google's whole list", n)
	}
}
