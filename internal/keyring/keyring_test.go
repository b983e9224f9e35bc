package keyring

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func newRing(t *testing.T) (*Ring, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "data", FileName)
	r, err := LoadOrCreate(path, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return r, path
}

func TestLoadOrCreate(t *testing.T) {
	r, path := newRing(t)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Size() != KeySize {
		t.Errorf("key file: mode %v size %d", fi.Mode(), fi.Size())
	}
	di, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm() != 0o700 {
		t.Errorf("key folder mode %v", di.Mode())
	}
	sealed, err := r.Seal("test", []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	// Loading again gives the same key.
	r2, err := LoadOrCreate(path, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := r2.Open("test", sealed); err != nil || string(pt) != "hello" {
		t.Errorf("reloaded ring: %q, %v", pt, err)
	}
	if !bytes.Equal(r.Key("x", 32), r2.Key("x", 32)) {
		t.Error("reloaded ring derives another key")
	}
	if _, err := Load(path, rand.Reader); err != nil {
		t.Errorf("Load: %v", err)
	}
	if _, err := Load(path+".missing", rand.Reader); err == nil || Exists(path+".missing") {
		t.Error("Load of a missing key succeeded or created it")
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("folder holds %d files, want the key only", len(entries))
	}
}

func TestLoadRefuses(t *testing.T) {
	tests := []struct {
		name  string
		data  []byte
		mode  os.FileMode
		want  string
		isDir bool
	}{
		{name: "group readable", data: make([]byte, KeySize), mode: 0o640, want: "mode 0640"},
		{name: "world readable", data: make([]byte, KeySize), mode: 0o604, want: "mode 0604"},
		{name: "short", data: make([]byte, 16), mode: 0o600, want: "16 bytes, want 32"},
		{name: "long", data: make([]byte, 33), mode: 0o600, want: "33 bytes, want 32"},
		{name: "empty", data: nil, mode: 0o600, want: "0 bytes, want 32"},
		{name: "directory", isDir: true, want: "not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), FileName)
			if tt.isDir {
				if err := os.Mkdir(path, 0o700); err != nil {
					t.Fatal(err)
				}
			} else {
				if err := os.WriteFile(path, tt.data, 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, tt.mode); err != nil {
					t.Fatal(err)
				}
			}
			_, err := LoadOrCreate(path, rand.Reader)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("got %v, want an error naming %s with %q", err, path, tt.want)
			}
			if !tt.isDir {
				// The file is left as it was.
				if got, _ := os.ReadFile(path); len(got) != len(tt.data) {
					t.Errorf("file changed to %d bytes", len(got))
				}
			}
		})
	}
}

func TestSealOpen(t *testing.T) {
	r, _ := newRing(t)
	other, _ := newRing(t)
	msg := []byte("the school CA's private key")
	sealed, err := r.Seal("ca-key", msg)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, msg) {
		t.Fatal("sealed data holds the plaintext")
	}
	again, _ := r.Seal("ca-key", msg)
	if bytes.Equal(sealed, again) {
		t.Error("two seals of the same plaintext are equal (nonce reused)")
	}
	if pt, err := r.Open("ca-key", sealed); err != nil || !bytes.Equal(pt, msg) {
		t.Fatalf("round trip: %q, %v", pt, err)
	}
	if pt, err := r.Seal("empty", nil); err != nil {
		t.Fatal(err)
	} else if got, err := r.Open("empty", pt); err != nil || len(got) != 0 {
		t.Errorf("empty round trip: %q, %v", got, err)
	}

	tampered := func(i int) []byte {
		b := bytes.Clone(sealed)
		b[i] ^= 0x01
		return b
	}
	tests := []struct {
		name    string
		ring    *Ring
		purpose string
		data    []byte
	}{
		{"wrong purpose", r, "records", sealed},
		{"other master key", other, "ca-key", sealed},
		{"version byte", r, "ca-key", tampered(0)},
		{"nonce byte", r, "ca-key", tampered(1)},
		{"ciphertext byte", r, "ca-key", tampered(1 + nonceSize)},
		{"tag byte", r, "ca-key", tampered(len(sealed) - 1)},
		{"truncated", r, "ca-key", sealed[:len(sealed)-1]},
		{"too short", r, "ca-key", sealed[:10]},
		{"nil", r, "ca-key", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pt, err := tt.ring.Open(tt.purpose, tt.data)
			if !errors.Is(err, ErrOpen) || pt != nil {
				t.Errorf("got %q, %v; want ErrOpen", pt, err)
			}
		})
	}
	if _, err := r.Seal("", msg); err == nil {
		t.Error("sealed with no purpose")
	}
}

func TestKey(t *testing.T) {
	r, _ := newRing(t)
	a, b := r.Key("blockpage", 32), r.Key("blockpage", 32)
	if !bytes.Equal(a, b) || len(a) != 32 {
		t.Fatalf("keys differ or wrong size: %x %x", a, b)
	}
	if bytes.Equal(a, r.Key("other", 32)) {
		t.Error("two purposes give the same key")
	}
	if bytes.Equal(a, r.subkey("seal", "blockpage", 32)) {
		t.Error("Key gives the sealing key")
	}
	if got := r.Key("blockpage", 64); len(got) != 64 {
		t.Errorf("64-byte key is %d bytes", len(got))
	}
	defer func() {
		if recover() == nil {
			t.Error("Key(0) did not panic")
		}
	}()
	r.Key("x", 0)
}

func TestRedacted(t *testing.T) {
	r, _ := newRing(t)
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("ring", "ring", r)
	out := buf.String() + fmt.Sprintf("%v %+v %#v %s", r, r, r, r)
	if strings.Count(out, "redacted") != 5 {
		t.Errorf("ring printed: %s", out)
	}
}

func TestNew(t *testing.T) {
	if _, err := New(make([]byte, 31), rand.Reader); err == nil {
		t.Error("31-byte key accepted")
	}
	if _, err := New(make([]byte, 32), nil); err == nil {
		t.Error("nil random source accepted")
	}
}
