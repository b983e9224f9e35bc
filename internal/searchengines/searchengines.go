// Package searchengines holds facts about the search engines Warden
// enforces safe search on and watches for search terms, shared by the
// DNS filter and TLS inspection.
package searchengines

import (
	"bufio"
	"bytes"
	_ "embed"
	"strings"
)

//go:embed google_domains.txt
var googleDomainsText []byte

// GoogleDomains returns Google's search domains (google.com, google.co.uk,
// ... without "www."), one for each of Google's country domains.
func GoogleDomains() []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(googleDomainsText))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, strings.TrimPrefix(line, "."))
	}
	return out
}

// GoogleHosts returns a new set of every Google search host: google.TLD
// and www.google.TLD for each domain of GoogleDomains.
func GoogleHosts() map[string]bool {
	m := map[string]bool{}
	for _, d := range GoogleDomains() {
		m[d], m["www."+d] = true, true
	}
	return m
}
