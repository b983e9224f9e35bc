package liststest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"testing"
	"time"
)

// TarEntry is one entry of a test archive. Type is a tar type flag
// (tar.TypeReg when zero, tar.TypeDir, tar.TypeSymlink, tar.TypeLink);
// Body is a regular file's content and Link a link's target.
type TarEntry struct {
	Name string
	Type byte
	Body []byte
	Link string
}

// Tar builds a tar archive of entries, gzipped if compress is set, as UT1
// ships its lists.
func Tar(t testing.TB, entries []TarEntry, compress bool) []byte {
	t.Helper()
	var b bytes.Buffer
	var w io.Writer = &b
	var zw *gzip.Writer
	if compress {
		zw = gzip.NewWriter(&b)
		w = zw
	}
	tw := tar.NewWriter(w)
	mtime := time.Date(2026, 8, 17, 0, 11, 6, 0, time.UTC)
	for _, e := range entries {
		h := &tar.Header{Name: e.Name, Typeflag: e.Type, Mode: 0o644, ModTime: mtime}
		switch e.Type {
		case 0, tar.TypeReg:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.Body))
		case tar.TypeDir:
			h.Mode = 0o755
		case tar.TypeSymlink, tar.TypeLink:
			h.Linkname, h.Mode = e.Link, 0o777
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(e.Body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}
