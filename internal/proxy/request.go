package proxy

import (
	"bufio"
	"bytes"
	"net/netip"
)

// request is one parsed client request. One is kept per client
// connection and reused, so that reading a request allocates nothing;
// every slice points into block and is valid until the next read.
type request struct {
	block  []byte
	fields []field
	// method is the request method (interned for common ones).
	method string
	// target is the request-target as sent: an absolute URL, or
	// host:port for CONNECT.
	target []byte
	// minor is the HTTP/1 minor version, 0 or 1.
	minor int
	fr    framing
	// connect is set for CONNECT.
	connect bool
	// expect100 is set for "Expect: 100-continue" (HTTP/1.1 only).
	expect100 bool
	// authz is the Proxy-Authorization value, nil if none was sent.
	authz []byte
	// host is the target's host (an IPv6 literal without brackets);
	// port its port (80 when the URL gives none); authority is
	// host[:port] as sent, for the Host header upstream.
	host      []byte
	port      int
	authority []byte
	// path is the path and query of an absolute URL, as sent; it may be
	// empty or start with '?', in which case "/" goes in front.
	path []byte
	// ip is host parsed as an address, if it is an IP literal.
	ip netip.Addr
}

// hasBody reports whether the request has a body to read.
func (r *request) hasBody() bool { return r.fr.chunked || r.fr.length > 0 }

// keepAlive reports whether the client wants the connection kept open
// after this request.
func (r *request) keepAlive() bool {
	if r.fr.close {
		return false
	}
	return r.minor == 1 || r.fr.keepAlive
}

// read reads and checks one request head from br. It returns io.EOF
// when the client closed cleanly between requests, an *httpError for a
// request to refuse, or another read error.
func (r *request) read(br *bufio.Reader, max int) error {
	var err error
	r.block, err = readBlock(br, r.block, max, true)
	if err != nil {
		return err
	}
	return r.parse()
}

// parse checks the head in r.block.
func (r *request) parse() error {
	line, rest := nextLine(r.block)
	if err := r.parseLine(line); err != nil {
		return err
	}
	var err error
	if r.fields, err = parseFields(rest, r.fields); err != nil {
		return err
	}
	if err := frame(r.fields, r.minor, &r.fr); err != nil {
		return err
	}
	r.expect100, r.authz = false, nil
	hosts := 0
	for i := range r.fields {
		f := &r.fields[i]
		switch classify(f.name) {
		case fHost:
			// A proxy replaces Host with the target's authority (RFC
			// 9112 §3.2.2); two of them is a confused or hostile client.
			if hosts++; hosts > 1 {
				return errHost
			}
			f.drop = true
		case fExpect:
			f.drop = true
			if r.minor == 0 {
				continue // HTTP/1.0 has no expectations (RFC 9110 §10.1.1)
			}
			if !equalFold(f.value, "100-continue") {
				return errExpect
			}
			r.expect100 = true
		case fProxyAuthorization:
			if r.authz == nil {
				r.authz = f.value
			}
		}
	}
	if r.connect && (r.fr.chunked || r.fr.length > 0) {
		return errConnectBody
	}
	return nil
}

// parseLine checks "METHOD SP target SP HTTP/1.x" and the target.
func (r *request) parseLine(line []byte) error {
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return errRequestLine
	}
	method := line[:sp1]
	for _, c := range method {
		if !isToken(c) {
			return errMethod
		}
	}
	rest := line[sp1+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 <= 0 {
		return errRequestLine
	}
	target, version := rest[:sp2], rest[sp2+1:]
	switch string(version) {
	case "HTTP/1.1":
		r.minor = 1
	case "HTTP/1.0":
		r.minor = 0
	default:
		if len(version) == 8 && bytes.HasPrefix(version, []byte("HTTP/")) {
			return errVersion
		}
		return errRequestLine
	}
	for _, c := range target {
		if c <= ' ' || c == 0x7f || c == '#' {
			if c == '#' {
				return errFragment
			}
			return errTarget
		}
	}
	r.method = internMethod(method)
	r.target = target
	r.connect = r.method == "CONNECT"
	r.ip = netip.Addr{}
	if r.connect {
		return r.parseAuthority(target, true)
	}
	return r.parseAbsolute(target)
}

// internMethod returns the method as a string, without allocating for
// the standard methods.
func internMethod(b []byte) string {
	switch string(b) {
	case "GET":
		return "GET"
	case "HEAD":
		return "HEAD"
	case "POST":
		return "POST"
	case "PUT":
		return "PUT"
	case "DELETE":
		return "DELETE"
	case "CONNECT":
		return "CONNECT"
	case "OPTIONS":
		return "OPTIONS"
	case "PATCH":
		return "PATCH"
	case "TRACE":
		return "TRACE"
	}
	return string(b)
}

// parseAbsolute checks an absolute-form target: http://authority[path].
func (r *request) parseAbsolute(t []byte) error {
	if len(t) > 0 && t[0] == '/' {
		if bytes.HasPrefix(t, []byte("/proxy.pac")) || bytes.HasPrefix(t, []byte("/wpad.dat")) {
			return errPACPath
		}
		return errOriginForm
	}
	i := bytes.Index(t, []byte("://"))
	if i <= 0 {
		if len(t) == 1 && t[0] == '*' {
			return errOriginForm // OPTIONS * is for the proxy itself
		}
		return errTarget
	}
	switch {
	case equalFold(t[:i], "http"):
	case equalFold(t[:i], "https"):
		return errHTTPSAbsolute
	default:
		return errScheme
	}
	rest := t[i+3:]
	end := len(rest)
	if j := bytes.IndexAny(rest, "/?"); j >= 0 {
		end = j
	}
	if err := r.parseAuthority(rest[:end], false); err != nil {
		return err
	}
	r.path = rest[end:]
	return nil
}

// parseAuthority checks host[:port]; the port is required for CONNECT
// and defaults to 80 otherwise.
func (r *request) parseAuthority(a []byte, connect bool) error {
	if bytes.IndexByte(a, '@') >= 0 {
		return errUserinfo
	}
	r.authority = a
	var host, port []byte
	hasPort := false
	if len(a) > 0 && a[0] == '[' {
		end := bytes.IndexByte(a, ']')
		if end < 0 {
			return errTarget
		}
		host = a[1:end]
		switch tail := a[end+1:]; {
		case len(tail) == 0:
		case tail[0] == ':':
			port, hasPort = tail[1:], true
		default:
			return errTarget
		}
		ip, err := netip.ParseAddr(string(host))
		if err != nil || !ip.Is6() || ip.Zone() != "" {
			return errTarget
		}
		r.ip = ip
	} else {
		host = a
		if i := bytes.LastIndexByte(a, ':'); i >= 0 {
			host, port, hasPort = a[:i], a[i+1:], true
		}
		if len(host) == 0 {
			if connect {
				return errConnectAuthForm
			}
			return errEmptyHost
		}
		for _, c := range host {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
				return errTarget
			}
		}
		if ip, ok := parseIPv4(host); ok {
			r.ip = ip
		}
	}
	r.host = host
	switch {
	case connect && (!hasPort || len(port) == 0):
		return errConnectAuthForm
	case !hasPort || len(port) == 0:
		r.port = 80
	default:
		n := 0
		for _, c := range port {
			if c < '0' || c > '9' || n > 65535 {
				return errPort
			}
			n = n*10 + int(c-'0')
		}
		if n < 1 || n > 65535 {
			return errPort
		}
		r.port = n
	}
	return nil
}

// parseIPv4 parses a dotted-quad IPv4 address without allocating.
func parseIPv4(b []byte) (netip.Addr, bool) {
	var a [4]byte
	part, n, digits := 0, 0, 0
	for i := 0; i <= len(b); i++ {
		if i == len(b) || b[i] == '.' {
			if digits == 0 || part > 3 {
				return netip.Addr{}, false
			}
			a[part] = byte(n)
			part, n, digits = part+1, 0, 0
			continue
		}
		c := b[i]
		if c < '0' || c > '9' || digits > 0 && n == 0 {
			return netip.Addr{}, false // not a digit, or a leading zero
		}
		n, digits = n*10+int(c-'0'), digits+1
		if n > 255 {
			return netip.Addr{}, false
		}
	}
	if part != 4 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(a), true
}
