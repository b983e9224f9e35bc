package proxy

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
)

// PACOptions configure the proxy auto-configuration file.
type PACOptions struct {
	// ProxyHostPort is the proxy address devices use ("warden.school.example:3128").
	ProxyHostPort string
	// Bypass are the school's local networks, reached directly. Only
	// IPv4 networks can be written (PAC's isInNet is IPv4 only); IPv6
	// ones are left out, so such hosts go through the proxy.
	Bypass []netip.Prefix
	// BypassHosts are Warden's own host names, reached directly (so the
	// block page, sign-in and console work when the proxy is down). A
	// "*.name" entry also covers name's subdomains.
	BypassHosts []string
}

// PACContentType is the media type of proxy.pac and wpad.dat.
const PACContentType = "application/x-ns-proxy-autoconfig"

// PAC returns the handler for /proxy.pac and /wpad.dat (the same file;
// WPAD finds wpad.dat through DHCP option 252 or the "wpad" DNS name).
// The integrator mounts it on the web listener. Bad options give a
// handler that answers 500 and says why, rather than a script that
// would send browsers around the filter.
func PAC(opts PACOptions) http.Handler {
	script, err := PACScript(opts)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if err != nil {
			http.Error(w, "proxy auto-configuration is not set up: "+err.Error(), http.StatusInternalServerError)
			return
		}
		h := w.Header()
		h.Set("Content-Type", PACContentType)
		h.Set("Content-Length", strconv.Itoa(len(script)))
		h.Set("Cache-Control", "max-age=300")
		if r.Method == http.MethodGet {
			w.Write([]byte(script))
		}
	})
}

// PACScript writes the proxy auto-configuration script for opts.
func PACScript(opts PACOptions) (string, error) {
	hp := opts.ProxyHostPort
	host, port, err := net.SplitHostPort(hp)
	if err != nil || host == "" {
		return "", fmt.Errorf("proxy address %q is not HOST:PORT", hp)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("proxy address %q has a bad port", hp)
	}
	if strings.Trim(strings.ToLower(hp), "abcdefghijklmnopqrstuvwxyz0123456789.-:[]") != "" {
		return "", fmt.Errorf("proxy address %q has characters a host name cannot have", hp)
	}
	var b strings.Builder
	b.WriteString(`// Proxy auto-configuration for Warden, the school's web filter
// (served as /proxy.pac and /wpad.dat).
//
// Plain names, loopback, the school's own networks and Warden itself
// are reached directly; everything else goes through Warden's proxy.
// There is deliberately no "DIRECT" fallback after the proxy: a filter
// must not fail open, so if the proxy cannot be reached, browsing stops
// rather than going on unfiltered.
function FindProxyForURL(url, host) {
	// Plain host names (no dots) are on the local network.
	if (isPlainHostName(host))
		return "DIRECT";
	if (host == "localhost" || host == "::1" || host == "[::1]")
		return "DIRECT";
`)
	if len(opts.BypassHosts) > 0 {
		b.WriteString("\t// Warden's own names.\n")
		for _, h := range opts.BypassHosts {
			h = strings.ToLower(strings.TrimSpace(h))
			sub := strings.HasPrefix(h, "*.")
			h = strings.TrimPrefix(h, "*.")
			if h == "" || strings.Trim(h, "abcdefghijklmnopqrstuvwxyz0123456789.-") != "" {
				return "", fmt.Errorf("bypass host %q is not a host name", h)
			}
			b.WriteString("\tif (host == ")
			b.WriteString(jsString(h))
			if sub {
				b.WriteString(" || dnsDomainIs(host, ")
				b.WriteString(jsString("." + h))
				b.WriteString(")")
			}
			b.WriteString(")\n\t\treturn \"DIRECT\";\n")
		}
	}
	b.WriteString(`	// Resolve once: isInNet would resolve the name again for every
	// network. A name that does not resolve goes to the proxy.
	var ip = dnsResolve(host);
	if (ip) {
		// Loopback.
		if (isInNet(ip, "127.0.0.0", "255.0.0.0"))
			return "DIRECT";
`)
	nets := 0
	for _, p := range opts.Bypass {
		if !p.Addr().Is4() && !p.Addr().Is4In6() {
			continue // isInNet cannot test IPv6
		}
		if nets == 0 {
			b.WriteString("\t\t// The school's networks.\n")
		}
		nets++
		p = p.Masked()
		bits := p.Bits()
		if p.Addr().Is4In6() {
			if bits < 96 {
				continue
			}
			bits -= 96
		}
		mask := net.CIDRMask(bits, 32)
		fmt.Fprintf(&b, "\t\tif (isInNet(ip, %q, \"%d.%d.%d.%d\"))\n\t\t\treturn \"DIRECT\";\n",
			p.Addr().Unmap().String(), mask[0], mask[1], mask[2], mask[3])
	}
	b.WriteString("\t}\n\treturn ")
	b.WriteString(jsString("PROXY " + hp))
	b.WriteString(";\n}\n")
	return b.String(), nil
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	q, _ := json.Marshal(s)
	return string(q)
}
