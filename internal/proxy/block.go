package proxy

import (
	"html"
	"strings"
)

// maxPooledPage is the largest block page buffer kept for reuse.
const maxPooledPage = 64 << 10

// builtinBlockPage is the page served when Options.BlockPage is nil: what
// was blocked and why, never a mandatory list's entry (the decision's
// Matched is empty for those).
func builtinBlockPage(b Blocked) []byte {
	var s strings.Builder
	s.Grow(1024)
	s.WriteString(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Blocked by Warden</title></head>
<body style="font-family:system-ui,sans-serif;max-width:40em;margin:3em auto;padding:0 1em">
<h1>This page is blocked</h1>
<p><strong>`)
	s.WriteString(html.EscapeString(b.Host))
	s.WriteString(`</strong></p>
<p>`)
	s.WriteString(html.EscapeString(reasonOf(b.Decision.Reason)))
	s.WriteString("</p>\n")
	if b.Decision.Category != "" {
		s.WriteString("<p>Category: ")
		s.WriteString(html.EscapeString(b.Decision.Category))
		s.WriteString("</p>\n")
	}
	s.WriteString("<p>Time: ")
	s.WriteString(b.Time.Format("2006-01-02 15:04:05"))
	s.WriteString("</p>\n<p>If you think this is wrong, ask a member of staff.</p>\n</body></html>\n")
	return []byte(s.String())
}

// reasonOf gives a decision's reason, or a plain default.
func reasonOf(r string) string {
	if r == "" {
		return "The school's online safety policy does not allow it."
	}
	return r
}

// connectBlockedText is the short text a blocked CONNECT gets: the
// browser will not show it (it shows its own error), but command-line
// tools and logs do.
func connectBlockedText(host, reason string) []byte {
	var s strings.Builder
	s.WriteString("Blocked by Warden: ")
	s.WriteString(host)
	s.WriteString("\n")
	s.WriteString(reasonOf(reason))
	s.WriteString("\n")
	return []byte(s.String())
}
