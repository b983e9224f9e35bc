package proxy

import (
	"bufio"
	"bytes"
)

// response is one parsed upstream response head, reused like request.
type response struct {
	block  []byte
	fields []field
	minor  int
	status int
	// reason is the reason phrase as sent (may be empty).
	reason []byte
	fr     framing
}

// Errors in upstream responses; the client gets a 502.
var (
	errStatusLine = &httpError{502, "malformed status line from the web server"}
	errBadUpgrade = &httpError{502, "web server switched protocols without being asked"}
)

// read reads and checks one response head.
func (r *response) read(br *bufio.Reader, max int) error {
	var err error
	r.block, err = readBlock(br, r.block, max, false)
	if err != nil {
		return err
	}
	line, rest := nextLine(r.block)
	if err := r.parseStatus(line); err != nil {
		return err
	}
	if r.fields, err = parseFields(rest, r.fields); err != nil {
		return err
	}
	return frame(r.fields, r.minor, &r.fr)
}

// parseStatus checks "HTTP/1.x SSS [reason]".
func (r *response) parseStatus(line []byte) error {
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return errStatusLine
	}
	switch line[7] {
	case '0':
		r.minor = 0
	case '1':
		r.minor = 1
	default:
		return errStatusLine
	}
	code := 0
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return errStatusLine
		}
		code = code*10 + int(c-'0')
	}
	if code < 100 || code > 599 {
		return errStatusLine
	}
	r.status = code
	switch {
	case len(line) == 12:
		r.reason = nil
	case line[12] == ' ':
		r.reason = line[13:]
		if !validValue(r.reason) {
			return errStatusLine
		}
	default:
		return errStatusLine
	}
	return nil
}

// bodyless reports whether the response has no body whatever its
// fields say (RFC 9112 §6.3): to HEAD, 1xx, 204 and 304.
func (r *response) bodyless(method string) bool {
	return method == "HEAD" || r.status < 200 || r.status == 204 || r.status == 304
}

// keepAlive reports whether the upstream connection may be reused after
// this response, as far as the response says.
func (r *response) keepAlive() bool {
	if r.fr.close {
		return false
	}
	return r.minor == 1 || r.fr.keepAlive
}
