package lists

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// SourceCategory is one category of a multi-category source such as a UT1
// set, with the entries read from its files.
type SourceCategory struct {
	// Name is the source's own category name ("drogue").
	Name      string
	Collector *Collector
}

// ut1EntryFile reports whether a file of a UT1 category folder holds
// entries: domains, urls, their gzipped forms and split parts
// ("domains.0", "domains.1.gz").
func ut1EntryFile(name string) bool {
	name = strings.TrimSuffix(name, ".gz")
	for _, base := range []string{"domains", "urls"} {
		if name == base {
			return true
		}
		if rest, ok := strings.CutPrefix(name, base+"."); ok && allDigits(rest) {
			return true
		}
	}
	return false
}

type ut1Reader struct {
	cats   map[string]*Collector
	redact bool
}

func (u *ut1Reader) collector(cat string) *Collector {
	c := u.cats[cat]
	if c == nil {
		c = &Collector{Redact: u.redact}
		u.cats[cat] = c
	}
	return c
}

func (u *ut1Reader) result() ([]SourceCategory, error) {
	if len(u.cats) == 0 {
		return nil, errors.New("no CATEGORY/domains or CATEGORY/urls files found: is this a UT1/squidGuard set?")
	}
	out := make([]SourceCategory, 0, len(u.cats))
	for name, c := range u.cats {
		c.Finish()
		out = append(out, SourceCategory{Name: name, Collector: c})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// ReadUT1 reads a squidGuard/UT1 set from a folder: every CATEGORY/domains
// and CATEGORY/urls file under it (gzipped or not, at any depth, so that
// both "blacklists/adult/domains" and "adult/domains" work). Symbolic links
// (UT1's aliases such as porn -> adult) are skipped so nothing is read
// twice. label names the folder in problems.
func ReadUT1(fsys fs.FS, label string) ([]SourceCategory, error) {
	u := &ut1Reader{cats: map[string]*Collector{}}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("read %s: %w", path.Join(label, p), err)
		}
		if d.Type()&fs.ModeSymlink != 0 || d.IsDir() || !ut1EntryFile(d.Name()) {
			return nil
		}
		cat := path.Base(path.Dir(p))
		if cat == "." {
			return nil
		}
		f, err := fsys.Open(p)
		if err != nil {
			return fmt.Errorf("open %s: %w", path.Join(label, p), err)
		}
		defer f.Close()
		return u.collector(cat).ParseMaybeGzip(f, path.Join(label, p), FormatPlain)
	})
	if err != nil {
		return nil, err
	}
	return u.result()
}

// ReadUT1Tar reads a squidGuard/UT1 set from a tar archive, gzipped or
// not (the UT1 "blacklists.tar.gz"). label names the archive in problems.
func ReadUT1Tar(r io.Reader, label string) ([]SourceCategory, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var tr *tar.Reader
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", label, err)
		}
		defer zr.Close()
		tr = tar.NewReader(zr)
	} else {
		tr = tar.NewReader(br)
	}
	u := &ut1Reader{cats: map[string]*Collector{}}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", label, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue // folders, and symbolic links for aliases
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		if !ut1EntryFile(path.Base(name)) {
			continue
		}
		cat := path.Base(path.Dir(name))
		if cat == "." || cat == "/" {
			continue
		}
		if err := u.collector(cat).ParseMaybeGzip(tr, label+":"+name, FormatPlain); err != nil {
			return nil, err
		}
	}
	return u.result()
}

// ParseMaybeGzip parses one list file that may be gzipped, in the given
// format, into c.
func (c *Collector) ParseMaybeGzip(r io.Reader, label string, format Format) error {
	br := bufio.NewReaderSize(r, 64<<10)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("read %s: %w", label, err)
		}
		defer zr.Close()
		return c.Parse(zr, label, format)
	}
	return c.Parse(br, label, format)
}

// Peek returns up to n bytes from the start of r, decompressing gzip, for
// format detection, and a reader that still yields everything.
func Peek(r io.Reader, n int) ([]byte, io.Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, _ := br.Peek(2)
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		// Decompress a copy of the head only.
		head, _ := br.Peek(64 << 10)
		zr, err := gzip.NewReader(bytes.NewReader(head))
		if err != nil {
			return nil, br, nil
		}
		buf := make([]byte, n)
		m, _ := io.ReadFull(zr, buf)
		return buf[:m], br, nil
	}
	head, err := br.Peek(n)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return nil, nil, err
	}
	return head, br, nil
}
