package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/http/httputil"
	"testing"
)

// FuzzReadRequest feeds arbitrary bytes to the request parser. It must
// never panic; what it accepts must obey the strict rules; and the head
// it would send upstream must be one unambiguous, valid request for the
// same target (checked with net/http's parser).
func FuzzReadRequest(f *testing.F) {
	for _, s := range []string{
		"GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
		"GET http://example.com:8080/a?b=c HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
		"POST http://example.com/x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
		"POST http://example.com/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"POST http://example.com/x HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
		"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nProxy-Authorization: Basic Zm9vOmJhcg==\r\n\r\n",
		"CONNECT [2001:db8::1]:443 HTTP/1.1\r\n\r\n",
		"GET http://[2001:db8::1]/ HTTP/1.1\r\nConnection: X-Foo, close\r\nX-Foo: bar\r\n\r\n",
		"GET http://example.com/ HTTP/1.1\r\nX: a\r\n b\r\n\r\n",
		"GET http://example.com/ HTTP/1.1\r\nX: a\rb\r\n\r\n",
		"\r\n\r\nGET http://example.com HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
		"GET http://10.0.0.1:80?x HTTP/1.1\r\nContent-Length: 0, 0\r\n\r\n",
		"GET / HTTP/1.1\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var r request
		br := bufio.NewReaderSize(bytes.NewReader(data), 64)
		err := r.read(br, 4096)
		if err != nil {
			return
		}
		if bytes.Contains(r.block, []byte("\n ")) || bytes.Contains(r.block, []byte("\n\t")) {
			t.Fatalf("accepted obs-fold: %q", r.block)
		}
		var sawCL, sawTE bool
		for _, f := range r.fields {
			if len(f.name) == 0 || !validValue(f.value) {
				t.Fatalf("accepted field %q: %q", f.name, f.value)
			}
			for _, c := range f.name {
				if !isToken(c) {
					t.Fatalf("accepted name %q", f.name)
				}
			}
			switch classify(f.name) {
			case fContentLength:
				sawCL = true
			case fTransferEncoding:
				sawTE = true
			}
		}
		if sawCL && sawTE {
			t.Fatalf("accepted Content-Length with Transfer-Encoding: %q", r.block)
		}
		if r.fr.chunked && r.fr.length >= 0 {
			t.Fatal("framing both chunked and by length")
		}
		if r.connect {
			if r.port < 1 || r.port > 65535 || len(r.host) == 0 {
				t.Fatalf("CONNECT to %q port %d", r.host, r.port)
			}
			return
		}
		// What goes upstream must parse as exactly one request for the
		// same host, with one framing.
		var out bytes.Buffer
		w := bufio.NewWriter(&out)
		cc := &clientConn{req: r}
		cc.writeRequestHead(w)
		w.Flush()
		up, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(out.Bytes())))
		if err != nil {
			t.Fatalf("upstream head does not parse: %v\n%q", err, out.Bytes())
		}
		if up.Host != string(r.authority) {
			t.Fatalf("upstream Host %q, want %q", up.Host, r.authority)
		}
		if len(up.Header.Values("Content-Length")) > 1 || len(up.Header.Values("Transfer-Encoding")) > 1 ||
			up.Header.Get("Content-Length") != "" && up.Header.Get("Transfer-Encoding") != "" {
			t.Fatalf("ambiguous upstream framing: %q", out.Bytes())
		}
		for _, hop := range []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization", "Te", "Trailer", "Upgrade", "Expect"} {
			if up.Header.Get(hop) != "" {
				t.Fatalf("hop-by-hop %s forwarded: %q", hop, out.Bytes())
			}
		}
	})
}

// FuzzChunked feeds arbitrary bytes to the chunked decoder. It must not
// panic; what it decodes, net/http's decoder must decode the same; and
// re-encoding the data decodes back to it.
func FuzzChunked(f *testing.F) {
	for _, s := range []string{
		"0\r\n\r\n",
		"3\r\nabc\r\n0\r\n\r\n",
		"3;name=value\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n",
		"A\r\n0123456789\r\n1\r\nx\r\n0\r\n\r\n",
		"fffffffffffffffff\r\nx\r\n",
		"3\r\nabcd\r\n0\r\n\r\n",
		"3\nabc\n0\n\n",
		"3 ; x\r\nabc\r\n0\r\n\r\n",
		"-1\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var c chunkedReader
		c.reset(bufio.NewReaderSize(bytes.NewReader(data), 64))
		got, err := io.ReadAll(&c)
		if err != nil {
			return
		}
		ref, rerr := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(data)))
		if rerr != nil && !bytes.Contains(data, []byte(" ;")) && !bytes.Contains(data, []byte("\t;")) {
			// net/http refuses what this decoder accepted (whitespace
			// before an extension's ';' is allowed by RFC 9112 and
			// refused by net/http, which is fine).
			t.Fatalf("accepted what net/http refuses (%v): %q", rerr, data)
		}
		if rerr == nil && !bytes.Equal(got, ref) {
			t.Fatalf("decoded %q, net/http %q", got, ref)
		}
		var enc bytes.Buffer
		w := bufio.NewWriter(&enc)
		writeChunk(w, got)
		lastChunk(w)
		w.Flush()
		c.reset(bufio.NewReader(&enc))
		again, err := io.ReadAll(&c)
		if err != nil || !bytes.Equal(again, got) {
			t.Fatalf("round trip: %v %q != %q", err, again, got)
		}
	})
}
