package proxy

import (
	"bufio"
	"io"
	"net/netip"
	"strings"
	"testing"
)

func TestParseRequest(t *testing.T) {
	tests := []struct {
		name      string
		raw       string
		err       *httpError
		host      string
		port      int
		authority string
		path      string
		ip        string
		length    int64
		chunked   bool
		keepAlive bool
		expect    bool
	}{
		{name: "simple", raw: "GET http://Example.com/a?b HTTP/1.1\r\n\r\n", host: "Example.com", port: 80, authority: "Example.com", path: "/a?b", length: -1, keepAlive: true},
		{name: "port and no path", raw: "GET http://example.com:8080 HTTP/1.1\r\n\r\n", host: "example.com", port: 8080, authority: "example.com:8080", path: "", length: -1, keepAlive: true},
		{name: "query without path", raw: "GET http://example.com?q HTTP/1.1\r\n\r\n", host: "example.com", port: 80, authority: "example.com", path: "?q", length: -1, keepAlive: true},
		{name: "empty port", raw: "GET http://example.com:/ HTTP/1.1\r\n\r\n", host: "example.com", port: 80, authority: "example.com:", path: "/", length: -1, keepAlive: true},
		{name: "IPv4", raw: "GET http://192.0.2.1:81/ HTTP/1.1\r\n\r\n", host: "192.0.2.1", port: 81, authority: "192.0.2.1:81", path: "/", ip: "192.0.2.1", length: -1, keepAlive: true},
		{name: "IPv6", raw: "GET http://[2001:db8::1]:81/ HTTP/1.1\r\n\r\n", host: "2001:db8::1", port: 81, authority: "[2001:db8::1]:81", path: "/", ip: "2001:db8::1", length: -1, keepAlive: true},
		{name: "not quite IPv4", raw: "GET http://1.2.3/ HTTP/1.1\r\n\r\n", host: "1.2.3", port: 80, authority: "1.2.3", path: "/", length: -1, keepAlive: true},
		{name: "scheme in capitals", raw: "GET HTTP://example.com/ HTTP/1.1\r\n\r\n", host: "example.com", port: 80, authority: "example.com", path: "/", length: -1, keepAlive: true},
		{name: "HTTP/1.0", raw: "GET http://example.com/ HTTP/1.0\r\n\r\n", host: "example.com", port: 80, authority: "example.com", path: "/", length: -1},
		{name: "HTTP/1.0 keep-alive", raw: "GET http://example.com/ HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", host: "example.com", port: 80, authority: "example.com", path: "/", length: -1, keepAlive: true},
		{name: "close", raw: "GET http://example.com/ HTTP/1.1\r\nConnection: close\r\n\r\n", host: "example.com", port: 80, authority: "example.com", path: "/", length: -1},
		{name: "length list", raw: "POST http://example.com/ HTTP/1.1\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\n", host: "example.com", port: 80, authority: "example.com", path: "/", length: 5, keepAlive: true},
		{name: "chunked", raw: "POST http://example.com/ HTTP/1.1\r\nTransfer-Encoding: Chunked\r\nExpect: 100-Continue\r\n\r\n", host: "example.com", port: 80, authority: "example.com", path: "/", length: -1, chunked: true, keepAlive: true, expect: true},
		{name: "leading CRLF", raw: "\r\nGET http://example.com/ HTTP/1.1\r\n\r\n", host: "example.com", port: 80, authority: "example.com", path: "/", length: -1, keepAlive: true},
		{name: "CONNECT", raw: "CONNECT example.com:443 HTTP/1.1\r\n\r\n", host: "example.com", port: 443, authority: "example.com:443", length: -1, keepAlive: true},
		{name: "CONNECT IPv6", raw: "CONNECT [::1]:443 HTTP/1.1\r\n\r\n", host: "::1", port: 443, authority: "[::1]:443", ip: "::1", length: -1, keepAlive: true},

		{name: "CONNECT without port", raw: "CONNECT example.com HTTP/1.1\r\n\r\n", err: errConnectAuthForm},
		{name: "CONNECT port zero", raw: "CONNECT example.com:0 HTTP/1.1\r\n\r\n", err: errPort},
		{name: "port too big", raw: "GET http://example.com:65536/ HTTP/1.1\r\n\r\n", err: errPort},
		{name: "port overflow", raw: "GET http://example.com:99999999999999999999/ HTTP/1.1\r\n\r\n", err: errPort},
		{name: "IPv6 zone", raw: "GET http://[fe80::1%25eth0]/ HTTP/1.1\r\n\r\n", err: errTarget},
		{name: "IPv6 unclosed", raw: "GET http://[::1/ HTTP/1.1\r\n\r\n", err: errTarget},
		{name: "bad host byte", raw: "GET http://exa%6dple.com/ HTTP/1.1\r\n\r\n", err: errTarget},
		{name: "empty host", raw: "GET http:///x HTTP/1.1\r\n\r\n", err: errEmptyHost},
		{name: "ftp", raw: "GET ftp://example.com/ HTTP/1.1\r\n\r\n", err: errScheme},
		{name: "asterisk", raw: "OPTIONS * HTTP/1.1\r\n\r\n", err: errOriginForm},
		{name: "wpad on the proxy port", raw: "GET /wpad.dat HTTP/1.1\r\n\r\n", err: errPACPath},
		{name: "bad method", raw: "G(T http://example.com/ HTTP/1.1\r\n\r\n", err: errMethod},
		{name: "lower-case version", raw: "GET http://example.com/ http/1.1\r\n\r\n", err: errRequestLine},
		{name: "HTTP/1.2", raw: "GET http://example.com/ HTTP/1.2\r\n\r\n", err: errVersion},
		{name: "DEL in target", raw: "GET http://example.com/\x7f HTTP/1.1\r\n\r\n", err: errTarget},
		{name: "too many empty lines", raw: "\r\n\r\n\r\n\r\n\r\nGET http://example.com/ HTTP/1.1\r\n\r\n", err: errRequestLine},
		{name: "tab before colon", raw: "GET http://example.com/ HTTP/1.1\r\nX\t: 1\r\n\r\n", err: errFieldName},
		{name: "empty name", raw: "GET http://example.com/ HTTP/1.1\r\n: 1\r\n\r\n", err: errFieldName},
		{name: "no colon", raw: "GET http://example.com/ HTTP/1.1\r\nX\r\n\r\n", err: errFieldName},
		{name: "control in value", raw: "GET http://example.com/ HTTP/1.1\r\nX: a\x01b\r\n\r\n", err: errFieldValue},
		{name: "CL negative", raw: "POST http://example.com/ HTTP/1.1\r\nContent-Length: -1\r\n\r\n", err: errContentLength},
		{name: "CL empty", raw: "POST http://example.com/ HTTP/1.1\r\nContent-Length:\r\n\r\n", err: errContentLength},
		{name: "CL huge", raw: "POST http://example.com/ HTTP/1.1\r\nContent-Length: 1000000000000000000000\r\n\r\n", err: errContentLength},
		{name: "TE empty", raw: "POST http://example.com/ HTTP/1.1\r\nTransfer-Encoding:\r\n\r\n", err: errTENotChunked},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r request
			err := r.read(bufio.NewReader(strings.NewReader(tc.raw)), 1024)
			if tc.err != nil {
				if err != tc.err {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var ip netip.Addr
			if tc.ip != "" {
				ip = netip.MustParseAddr(tc.ip)
			}
			if string(r.host) != tc.host || r.port != tc.port || string(r.authority) != tc.authority || string(r.path) != tc.path ||
				r.ip != ip || r.fr.length != tc.length || r.fr.chunked != tc.chunked || r.keepAlive() != tc.keepAlive || r.expect100 != tc.expect {
				t.Errorf("got host %q port %d authority %q path %q ip %v length %d chunked %v keep %v expect %v",
					r.host, r.port, r.authority, r.path, r.ip, r.fr.length, r.fr.chunked, r.keepAlive(), r.expect100)
			}
		})
	}
}

func TestReadBlockEnds(t *testing.T) {
	var r request
	if err := r.read(bufio.NewReader(strings.NewReader("")), 1024); err != io.EOF {
		t.Errorf("clean close: %v, want EOF", err)
	}
	if err := r.read(bufio.NewReader(strings.NewReader("GET http://a.test/ HTTP/1.1\r\nX: 1")), 1024); err != errTruncated {
		t.Errorf("cut off: %v", err)
	}
	long := "GET http://a.test/ HTTP/1.1\r\nX: " + strings.Repeat("y", 5000) + "\r\n\r\n"
	if err := r.read(bufio.NewReaderSize(strings.NewReader(long), 16), 8192); err != nil {
		t.Errorf("line longer than the reader's buffer: %v", err)
	}
	if err := r.read(bufio.NewReaderSize(strings.NewReader(long), 16), 4096); err != errHeaderTooLarge {
		t.Errorf("too large: %v", err)
	}
}

func TestParseIPv4(t *testing.T) {
	for s, ok := range map[string]bool{
		"1.2.3.4": true, "255.255.255.255": true, "0.0.0.0": true,
		"1.2.3": false, "1.2.3.4.5": false, "256.1.1.1": false, "01.2.3.4": false, "1..3.4": false, "a.b.c.d": false, "": false, "1.2.3.4.": false,
	} {
		a, got := parseIPv4([]byte(s))
		if got != ok || ok && a != netip.MustParseAddr(s) {
			t.Errorf("%q: %v %v", s, a, got)
		}
	}
}

func TestResponseStatus(t *testing.T) {
	for raw, want := range map[string]int{
		"HTTP/1.1 200 OK\r\n\r\n":               200,
		"HTTP/1.0 404\r\n\r\n":                  404,
		"HTTP/1.1 204 \r\n\r\n":                 204,
		"HTTP/1.1 999 Odd\r\n\r\n":              -1,
		"HTTP/2 200\r\n\r\n":                    -1,
		"HTTP/1.1 20 OK\r\n\r\n":                -1,
		"HTTP/1.1 200OK\r\n\r\n":                -1,
		"HTTP/1.1 200 O\x00K\r\n\r\n":           -1,
		"HTTP/1.1 200 OK\r\nX : y\r\n\r\n":      -1,
		"HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n": -1,
	} {
		var r response
		err := r.read(bufio.NewReader(strings.NewReader(raw)), 1024)
		if want < 0 {
			if err == nil {
				t.Errorf("%q accepted", raw)
			}
			continue
		}
		if err != nil || r.status != want {
			t.Errorf("%q: %d %v", raw, r.status, err)
		}
	}
}

func TestParseBasic(t *testing.T) {
	for v, want := range map[string]string{
		"Basic dXNlcjpwYXNz":                   "user/pass",
		"basic dXNlcjpwYTpzcw==":               "user/pa:ss",
		"Basic  dXNlcjpwYXNz":                  "user/pass",
		"Bearer dXNlcjpwYXNz":                  "",
		"Basic bm9jb2xvbg==":                   "",
		"Basic !!!":                            "",
		"Basic":                                "",
		"Basic " + strings.Repeat("QUFB", 300): "",
	} {
		u, p, ok := parseBasic([]byte(v))
		got := ""
		if ok {
			got = u + "/" + p
		}
		if got != want {
			t.Errorf("%q: %q, want %q", v, got, want)
		}
	}
}
