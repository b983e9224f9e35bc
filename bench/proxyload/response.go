package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// response is what the load generator keeps of an HTTP/1.x response.
type response struct {
	status int   // status code
	size   int64 // bytes read: head and body
	close  bool  // the server closes the connection after it
	length int64 // Content-Length; -1 when absent
	chunk  bool  // Transfer-Encoding: chunked
}

// maxHead bounds a response head (status line and header fields).
const maxHead = 64 << 10

// readHead reads a response's status line and header fields. It is strict
// where a lax reading could count bytes wrongly: one Content-Length,
// digits only; no Content-Length beside chunked.
func readHead(br *bufio.Reader) (*response, error) {
	r := &response{length: -1}
	line, err := readLine(br, &r.size)
	if err != nil {
		return nil, fmt.Errorf("status line: %w", err)
	}
	proto, rest, ok := bytes.Cut(line, []byte(" "))
	if !ok || !bytes.HasPrefix(proto, []byte("HTTP/1.")) || len(proto) != 8 || len(rest) < 3 || (len(rest) > 3 && rest[3] != ' ') {
		return nil, fmt.Errorf("status line %q: not HTTP/1.x NNN", clip(line))
	}
	code, err := strconv.Atoi(string(rest[:3]))
	if err != nil || code < 100 || code > 999 {
		return nil, fmt.Errorf("status line %q: bad status code", clip(line))
	}
	r.status = code
	if proto[7] == '0' {
		r.close = true // HTTP/1.0 unless keep-alive is said below
	}
	for {
		line, err := readLine(br, &r.size)
		if err != nil {
			return nil, fmt.Errorf("header: %w", err)
		}
		if len(line) == 0 {
			break
		}
		if r.size > maxHead {
			return nil, fmt.Errorf("response head over %d bytes", maxHead)
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || len(name) == 0 || bytes.ContainsAny(name, " \t") {
			return nil, fmt.Errorf("header line %q: not NAME: VALUE", clip(line))
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			n, err := strconv.ParseInt(string(value), 10, 64)
			if err != nil || n < 0 || value[0] == '+' {
				return nil, fmt.Errorf("Content-Length %q: not a length", clip(value))
			}
			if r.length >= 0 && r.length != n {
				return nil, errors.New("two different Content-Length values")
			}
			r.length = n
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			if !bytes.EqualFold(value, []byte("chunked")) {
				return nil, fmt.Errorf("Transfer-Encoding %q: only chunked is read", clip(value))
			}
			r.chunk = true
		case bytes.EqualFold(name, []byte("Connection")):
			for _, t := range bytes.Split(value, []byte(",")) {
				t = bytes.TrimSpace(t)
				if bytes.EqualFold(t, []byte("close")) {
					r.close = true
				} else if bytes.EqualFold(t, []byte("keep-alive")) && proto[7] == '0' {
					r.close = false
				}
			}
		}
	}
	if r.chunk && r.length >= 0 {
		return nil, errors.New("both Content-Length and Transfer-Encoding: chunked")
	}
	return r, nil
}

// readResponse reads a whole response, discarding its body. Informational
// (1xx) responses before it are read and skipped.
func readResponse(br *bufio.Reader) (*response, error) {
	var skipped int64
	for {
		r, err := readHead(br)
		if err != nil {
			return nil, err
		}
		r.size += skipped
		if r.status >= 100 && r.status < 200 {
			if r.status == 101 {
				return nil, errors.New("101 Switching Protocols: not HTTP any more")
			}
			skipped = r.size
			continue
		}
		switch {
		case r.status == 204 || r.status == 304:
			// no body
		case r.chunk:
			if err := discardChunked(br, &r.size); err != nil {
				return nil, fmt.Errorf("chunked body: %w", err)
			}
		case r.length >= 0:
			n, err := br.Discard(int(min(r.length, 1<<40)))
			r.size += int64(n)
			if err != nil {
				return nil, fmt.Errorf("body: %w", unexpectedEOF(err))
			}
		default:
			// No length: the body runs to the end of the connection.
			n, err := io.Copy(io.Discard, br)
			r.size += n
			if err != nil {
				return nil, fmt.Errorf("body: %w", err)
			}
			r.close = true
		}
		return r, nil
	}
}

// discardChunked reads and drops a chunked body and its trailer.
func discardChunked(br *bufio.Reader, size *int64) error {
	for {
		line, err := readLine(br, size)
		if err != nil {
			return err
		}
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i] // chunk extensions
		}
		line = bytes.TrimSpace(line)
		n, err := strconv.ParseInt(string(line), 16, 64)
		if err != nil || n < 0 || len(line) == 0 || line[0] == '+' || line[0] == '-' {
			return fmt.Errorf("chunk size %q: not hexadecimal", clip(line))
		}
		if n == 0 {
			for { // trailer fields, up to an empty line
				line, err := readLine(br, size)
				if err != nil {
					return err
				}
				if len(line) == 0 {
					return nil
				}
			}
		}
		if n > 1<<40 {
			return fmt.Errorf("chunk of %d bytes", n)
		}
		d, err := br.Discard(int(n))
		*size += int64(d)
		if err != nil {
			return unexpectedEOF(err)
		}
		line, err = readLine(br, size)
		if err != nil {
			return err
		}
		if len(line) != 0 {
			return errors.New("no CRLF after chunk data")
		}
	}
}

// readLine reads a line ending in LF (CRLF or a bare LF) and returns it
// without the line end, adding the bytes read to size. A line longer than
// the reader's buffer is an error.
func readLine(br *bufio.Reader, size *int64) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	*size += int64(len(line))
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, errors.New("line too long")
		}
		return nil, unexpectedEOF(err)
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// clip shortens b for an error message.
func clip(b []byte) string {
	if len(b) > 60 {
		return string(b[:60]) + "..."
	}
	return string(b)
}
