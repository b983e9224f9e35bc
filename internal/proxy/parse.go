package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// httpError is a request the proxy refuses before deciding on it: the
// status to answer with and a short reason for the text body. A parse
// error always closes the client connection, because after a framing
// error nothing says where the next request starts.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

// Parse errors. They are values, not formatted strings, so that
// rejecting junk allocates nothing.
var (
	errHeaderTooLarge  = &httpError{431, "request header too large"}
	errTooManyFields   = &httpError{431, "too many header fields"}
	errBareLF          = &httpError{400, "line not ended by CRLF"}
	errBareCR          = &httpError{400, "bare CR in header"}
	errRequestLine     = &httpError{400, "malformed request line"}
	errMethod          = &httpError{400, "invalid method"}
	errTarget          = &httpError{400, "invalid request target"}
	errVersion         = &httpError{505, "HTTP version not supported (HTTP/1.0 and HTTP/1.1 only)"}
	errObsFold         = &httpError{400, "obsolete line folding in header"}
	errFieldName       = &httpError{400, "invalid header field name"}
	errFieldValue      = &httpError{400, "invalid character in header field value"}
	errContentLength   = &httpError{400, "invalid Content-Length"}
	errCLConflict      = &httpError{400, "conflicting Content-Length values"}
	errCLAndTE         = &httpError{400, "both Content-Length and Transfer-Encoding"}
	errTENotChunked    = &httpError{400, "Transfer-Encoding does not end in chunked"}
	errTEUnsupported   = &httpError{501, "transfer coding not supported (chunked only)"}
	errTEOnHTTP10      = &httpError{400, "Transfer-Encoding in an HTTP/1.0 request"}
	errHost            = &httpError{400, "more than one Host header"}
	errExpect          = &httpError{417, "unsupported expectation"}
	errConnectBody     = &httpError{400, "CONNECT with a body"}
	errOriginForm      = &httpError{400, "this is a proxy: send absolute URLs (http://host/path) or CONNECT"}
	errPACPath         = &httpError{400, "this is the proxy port: the proxy auto-configuration file is served by the Warden web server"}
	errHTTPSAbsolute   = &httpError{400, "https:// URLs go through CONNECT"}
	errScheme          = &httpError{400, "only http:// URLs are proxied"}
	errUserinfo        = &httpError{400, "user name or password in the URL"}
	errPort            = &httpError{400, "invalid port"}
	errEmptyHost       = &httpError{400, "no host in the request target"}
	errFragment        = &httpError{400, "fragment in the request target"}
	errConnectAuthForm = &httpError{400, "CONNECT needs host:port"}
)

// maxFields bounds the header fields of one message.
const maxFields = 256

// maxLeadingCRLF is how many empty lines are skipped before a request
// line (RFC 9112 §2.2 asks servers to skip at least one, for clients that
// end a body with an extra CRLF).
const maxLeadingCRLF = 4

// field is one header field; name and value point into the message's
// block and stay valid until the next message is read into it.
type field struct {
	name, value []byte
	// drop is set on hop-by-hop fields and those the proxy writes itself.
	drop bool
}

// Field-name classes the proxy acts on.
const (
	fOther = iota
	fHost
	fContentLength
	fTransferEncoding
	fConnection
	fKeepAlive
	fProxyConnection
	fProxyAuthorization
	fProxyAuthenticate
	fTE
	fTrailer
	fUpgrade
	fExpect
)

// classify names the field classes the proxy handles; everything else
// passes through. It compares without allocating.
func classify(name []byte) int {
	switch len(name) {
	case 2:
		if equalFold(name, "te") {
			return fTE
		}
	case 4:
		if equalFold(name, "host") {
			return fHost
		}
	case 6:
		if equalFold(name, "expect") {
			return fExpect
		}
	case 7:
		if equalFold(name, "trailer") {
			return fTrailer
		}
		if equalFold(name, "upgrade") {
			return fUpgrade
		}
	case 10:
		if equalFold(name, "connection") {
			return fConnection
		}
		if equalFold(name, "keep-alive") {
			return fKeepAlive
		}
	case 14:
		if equalFold(name, "content-length") {
			return fContentLength
		}
	case 16:
		if equalFold(name, "proxy-connection") {
			return fProxyConnection
		}
	case 17:
		if equalFold(name, "transfer-encoding") {
			return fTransferEncoding
		}
	case 18:
		if equalFold(name, "proxy-authenticate") {
			return fProxyAuthenticate
		}
	case 19:
		if equalFold(name, "proxy-authorization") {
			return fProxyAuthorization
		}
	}
	return fOther
}

// equalFold reports whether b equals the lower-case ASCII string s,
// ignoring ASCII case in b.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// equalFoldBytes compares two byte strings ignoring ASCII case.
func equalFoldBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// isToken reports whether c may appear in a token (RFC 9110 §5.6.2).
func isToken(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

// validValue reports whether v is a valid field value: visible ASCII,
// obs-text, spaces and tabs; no NUL, CR, LF or other controls.
func validValue(v []byte) bool {
	for _, c := range v {
		if c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// trimOWS strips spaces and tabs from both ends.
func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// readBlock reads a message head — start line, fields and the empty line
// that ends them — into buf[:0] and returns it. Every line must end in
// CRLF. Empty lines before the start line are skipped when skipEmpty is
// set (requests). It fails with errHeaderTooLarge beyond max bytes.
func readBlock(br *bufio.Reader, buf []byte, max int, skipEmpty bool) ([]byte, error) {
	buf = buf[:0]
	empties := 0
	for {
		line, err := br.ReadSlice('\n')
		if len(buf)+len(line) > max {
			return buf, errHeaderTooLarge
		}
		if err == bufio.ErrBufferFull {
			// A line longer than the reader's buffer: keep it and read on.
			buf = append(buf, line...)
			continue
		}
		if err != nil {
			if len(buf) > 0 || len(line) > 0 {
				buf = append(buf, line...)
				if errors.Is(err, io.EOF) {
					return buf, errTruncated
				}
			}
			return buf, err
		}
		start := len(buf)
		buf = append(buf, line...)
		// The line just read runs from the last '\n' before start (or
		// the block's start) to here; a long line came in pieces.
		ls := bytes.LastIndexByte(buf[:start], '\n') + 1
		full := buf[ls:]
		if len(full) < 2 || full[len(full)-2] != '\r' {
			return buf, errBareLF
		}
		if len(full) == 2 {
			if ls == 0 && skipEmpty && empties < maxLeadingCRLF {
				empties++
				buf = buf[:0]
				continue
			}
			if ls == 0 {
				return buf, errRequestLine
			}
			return buf, nil
		}
	}
}

// errTruncated is a message head cut off by the peer closing.
var errTruncated = &httpError{400, "message head truncated"}

// nextLine splits the first CRLF-terminated line off b.
func nextLine(b []byte) (line, rest []byte) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return b, nil
	}
	return b[:i-1], b[i+1:]
}

// parseFields parses header lines (after the start line) of a block into
// fields, checking RFC 9112 syntax: no obs-fold, no whitespace before the
// colon, token names, clean values.
func parseFields(b []byte, fields []field) ([]field, error) {
	fields = fields[:0]
	for len(b) > 0 {
		var line []byte
		line, b = nextLine(b)
		if len(line) == 0 {
			break // the empty line that ends the block
		}
		if line[0] == ' ' || line[0] == '\t' {
			return fields, errObsFold
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return fields, errFieldName
		}
		name := line[:colon]
		for _, c := range name {
			if !isToken(c) {
				return fields, errFieldName
			}
		}
		value := trimOWS(line[colon+1:])
		if !validValue(value) {
			if bytes.IndexByte(value, '\r') >= 0 {
				return fields, errBareCR
			}
			return fields, errFieldValue
		}
		if len(fields) == maxFields {
			return fields, errTooManyFields
		}
		fields = append(fields, field{name: name, value: value})
	}
	return fields, nil
}

// parseLength reads a Content-Length value, which may be a list of
// identical values ("5, 5"). It returns -1 on any error.
func parseLength(v []byte) int64 {
	n := int64(-1)
	for len(v) > 0 {
		var elem []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			elem, v = trimOWS(v[:i]), v[i+1:]
		} else {
			elem, v = trimOWS(v), nil
		}
		if len(elem) == 0 || len(elem) > 18 {
			return -1
		}
		var x int64
		for _, c := range elem {
			if c < '0' || c > '9' {
				return -1
			}
			x = x*10 + int64(c-'0')
		}
		if n >= 0 && x != n {
			return -1
		}
		n = x
	}
	return n
}

// forEachToken calls fn with each non-empty element of a comma-separated
// list, without surrounding whitespace.
func forEachToken(v []byte, fn func(tok []byte)) {
	for len(v) > 0 {
		var elem []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			elem, v = v[:i], v[i+1:]
		} else {
			elem, v = v, nil
		}
		if elem = trimOWS(elem); len(elem) > 0 {
			fn(elem)
		}
	}
}

// framing is what a message's fields say about its body and connection.
type framing struct {
	// length is the Content-Length, or -1 if none was sent.
	length int64
	// chunked is set when Transfer-Encoding is chunked.
	chunked bool
	// close is set for "Connection: close"; keepAlive for
	// "Connection: keep-alive" (which matters to HTTP/1.0).
	close, keepAlive bool
	// upgrade is set when the message asks for a protocol upgrade.
	upgrade bool
}

// frame checks the framing fields of a message and marks hop-by-hop
// fields to drop. For requests (strict) it refuses every ambiguity; for
// responses the caller maps errors to 502.
func frame(fields []field, minor int, fr *framing) error {
	*fr = framing{length: -1}
	sawCL, sawTE := false, false
	for i := range fields {
		f := &fields[i]
		switch classify(f.name) {
		case fContentLength:
			n := parseLength(f.value)
			if n < 0 {
				return errContentLength
			}
			if sawCL && n != fr.length {
				return errCLConflict
			}
			sawCL, fr.length = true, n
			f.drop = true
		case fTransferEncoding:
			if minor == 0 {
				return errTEOnHTTP10
			}
			var err error
			forEachToken(f.value, func(tok []byte) {
				switch {
				case err != nil:
				case fr.chunked:
					err = errTENotChunked // a coding after chunked
				case equalFold(tok, "chunked"):
					fr.chunked = true
				default:
					err = errTEUnsupported
				}
			})
			if err != nil {
				return err
			}
			sawTE = true
			f.drop = true
		case fConnection:
			forEachToken(f.value, func(tok []byte) {
				switch {
				case equalFold(tok, "close"):
					fr.close = true
				case equalFold(tok, "keep-alive"):
					fr.keepAlive = true
				case equalFold(tok, "upgrade"):
					fr.upgrade = true
				}
				// Every field the Connection header names is hop-by-hop.
				for j := range fields {
					if equalFoldBytes(fields[j].name, tok) {
						fields[j].drop = true
					}
				}
			})
			f.drop = true
		case fKeepAlive, fProxyConnection, fProxyAuthenticate, fProxyAuthorization, fTE, fTrailer:
			f.drop = true
		case fUpgrade:
			fr.upgrade = true
			f.drop = true
		}
	}
	if sawTE {
		if !fr.chunked {
			return errTENotChunked
		}
		if sawCL {
			return errCLAndTE
		}
	}
	return nil
}
