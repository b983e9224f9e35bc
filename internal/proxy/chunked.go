package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
)

// Limits of the chunked decoder.
const (
	// maxChunkSize bounds one chunk (1 TiB), far above any real chunk
	// and far below int64 overflow.
	maxChunkSize = 1 << 40
	// maxChunkExt bounds the chunk-extension bytes of one body, so that
	// a stream of tiny chunks with long extensions cannot make the proxy
	// work for nothing.
	maxChunkExt = 16 << 10
	// maxTrailer bounds the trailer section, which is read and dropped.
	maxTrailer = 16 << 10
)

// Chunked-encoding errors.
var (
	errChunkSize    = &httpError{400, "invalid chunk size"}
	errChunkLine    = &httpError{400, "chunk line not ended by CRLF"}
	errChunkData    = &httpError{400, "chunk data not followed by CRLF"}
	errChunkExt     = &httpError{400, "invalid or excessive chunk extensions"}
	errChunkTrailer = &httpError{400, "invalid trailer section"}
)

// chunkedReader decodes a chunked body strictly (RFC 9112 §7.1): hex
// sizes without overflow, extensions only after ';' and bounded, CRLF
// after every line and chunk, trailers checked and dropped. It is reused
// through reset.
type chunkedReader struct {
	br *bufio.Reader
	// left is what remains of the current chunk.
	left int64
	// needCRLF is set after a chunk's data, before the next size line.
	needCRLF bool
	ext      int
	done     bool
	err      error
}

func (c *chunkedReader) reset(br *bufio.Reader) {
	*c = chunkedReader{br: br}
}

// Read returns decoded body bytes; io.EOF after the last chunk and the
// trailer section.
func (c *chunkedReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if c.done {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	for c.left == 0 {
		if c.needCRLF {
			if err := c.crlf(); err != nil {
				return 0, c.fail(err)
			}
			c.needCRLF = false
		}
		size, err := c.sizeLine()
		if err != nil {
			return 0, c.fail(err)
		}
		if size == 0 {
			if err := c.trailer(); err != nil {
				return 0, c.fail(err)
			}
			c.done = true
			return 0, io.EOF
		}
		c.left, c.needCRLF = size, true
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.br.Read(p)
	c.left -= int64(n)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return n, c.fail(err)
	}
	return n, nil
}

func (c *chunkedReader) fail(err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	c.err = err
	return err
}

func (c *chunkedReader) crlf() error {
	b, err := c.br.Peek(2)
	if err != nil {
		return err
	}
	if b[0] != '\r' || b[1] != '\n' {
		return errChunkData
	}
	_, _ = c.br.Discard(2)
	return nil
}

// sizeLine reads "HEX [ext] CRLF".
func (c *chunkedReader) sizeLine() (int64, error) {
	line, err := c.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return 0, errChunkExt
	}
	if err != nil {
		return 0, err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return 0, errChunkLine
	}
	line = line[:len(line)-2]
	var n int64
	i := 0
	for ; i < len(line); i++ {
		v := unhex(line[i])
		if v < 0 {
			break
		}
		if n = n<<4 | int64(v); n > maxChunkSize {
			return 0, errChunkSize
		}
	}
	if i == 0 || i > 16 {
		return 0, errChunkSize
	}
	if ext := line[i:]; len(ext) > 0 {
		if c.ext += len(ext); c.ext > maxChunkExt {
			return 0, errChunkExt
		}
		ext = trimOWS(ext)
		if len(ext) == 0 || ext[0] != ';' || !validValue(ext) {
			return 0, errChunkExt
		}
	}
	return n, nil
}

// trailer reads the trailer section after the last chunk, checks its
// syntax, and drops it.
func (c *chunkedReader) trailer() error {
	total := 0
	for {
		line, err := c.br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			return errChunkTrailer
		}
		if err != nil {
			return err
		}
		if total += len(line); total > maxTrailer {
			return errChunkTrailer
		}
		if len(line) < 2 || line[len(line)-2] != '\r' {
			return errChunkLine
		}
		line = line[:len(line)-2]
		if len(line) == 0 {
			return nil
		}
		if !validFieldLine(line) {
			return errChunkTrailer
		}
	}
}

// validFieldLine checks "name: value" as parseFields does.
func validFieldLine(line []byte) bool {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return false
	}
	for _, c := range line[:colon] {
		if !isToken(c) {
			return false
		}
	}
	return validValue(line[colon+1:])
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// writeChunk writes p as one chunk.
func writeChunk(w *bufio.Writer, p []byte) error {
	if len(p) == 0 {
		return nil
	}
	b := strconv.AppendUint(w.AvailableBuffer(), uint64(len(p)), 16)
	b = append(b, '\r', '\n')
	if _, err := w.Write(b); err != nil {
		return err
	}
	if _, err := w.Write(p); err != nil {
		return err
	}
	_, err := w.WriteString("\r\n")
	return err
}

// lastChunk ends a chunked body (no trailers).
func lastChunk(w *bufio.Writer) error {
	_, err := w.WriteString("0\r\n\r\n")
	return err
}
