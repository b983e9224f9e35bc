package inspect

import (
	"bytes"
	"html/template"
	"net/netip"
	"time"

	"github.com/warden-schools/warden/internal/identity"
	"github.com/warden-schools/warden/internal/policy"
)

// Blocked is what a block page shows about one blocked request (the same
// fields as the proxy's and the block page's own).
type Blocked struct {
	Time     time.Time
	Host     string
	URL      string
	Decision policy.Decision
	Subject  identity.Subject
	ClientIP netip.Addr
	// URLFiltered says the whole request was seen, so URL-level
	// exceptions apply to it: always, once inspected.
	URLFiltered bool
}

// fallbackPage is the block page used when Options.BlockPage is nil.
var fallbackPage = template.Must(template.New("blocked").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Blocked: {{.Host}}</title></head>
<body><main><h1>This page is blocked</h1>
<p><strong>{{.URL}}</strong></p>
<p>{{.Decision.Reason}}</p>
<p>Time: {{.Time.Format "2006-01-02 15:04:05 MST"}}{{if .Decision.Group}} · Group: {{.Decision.Group}}{{end}}</p>
<p>If you think this is wrong, tell a member of staff.</p>
</main></body></html>
`))

// renderFallback renders the built-in block page.
func renderFallback(b Blocked) []byte {
	var buf bytes.Buffer
	if err := fallbackPage.Execute(&buf, b); err != nil {
		return []byte("This page is blocked.\n")
	}
	return buf.Bytes()
}
