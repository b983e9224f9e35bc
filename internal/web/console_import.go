package web

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/warden-schools/warden/internal/audit"
	"github.com/warden-schools/warden/internal/auth"
	"github.com/warden-schools/warden/internal/directory"
)

// Importer imports people from a CSV file (a *directory.Directory).
type Importer interface {
	ImportCSV(ctx context.Context, r io.Reader, file string, opts directory.ImportOptions) (directory.ImportResult, error)
}

// Limits of a people upload.
const (
	maxImportBytes = 20 << 20
	uploadTTL      = 15 * time.Minute
	maxUploads     = 8
)

// upload is a file previewed and waiting for confirmation, kept in memory
// for whoever uploaded it.
type upload struct {
	person  int64
	file    string
	data    []byte
	opts    directory.ImportOptions
	expires time.Time
}

// uploads holds previewed files by random id.
type uploads struct {
	mu sync.Mutex
	m  map[string]*upload
}

func (u *uploads) put(now time.Time, up *upload) (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	id := hex.EncodeToString(b[:])
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.m == nil {
		u.m = map[string]*upload{}
	}
	for k, v := range u.m {
		if now.After(v.expires) || v.person == up.person {
			delete(u.m, k)
		}
	}
	if len(u.m) >= maxUploads {
		return "", errors.New("too many imports are waiting; try again in a few minutes")
	}
	u.m[id] = up
	return id, nil
}

// take removes and returns the upload id of person, if still fresh.
func (u *uploads) take(now time.Time, id string, person int64) *upload {
	u.mu.Lock()
	defer u.mu.Unlock()
	up := u.m[id]
	if up == nil || up.person != person || now.After(up.expires) {
		return nil
	}
	delete(u.m, id)
	return up
}

type importPreview struct {
	directory.ImportResult
	Upload   string
	Problems []string
}

type importData struct {
	Kinds   []directory.Kind
	Preview *importPreview
	Done    *directory.ImportResult
}

func (c *Console) importView(st *state) view {
	return view{Title: "Import people", Signed: st.signed(), Nav: nav(st.account.Role, "/people"), CSRF: c.csrfFor(st.secret),
		Data: &importData{Kinds: directory.Kinds}}
}

// getImport shows the upload form (PermManagePeople).
func (c *Console) getImport(rw http.ResponseWriter, r *http.Request, st *state) {
	if !c.permitted(rw, r, st, auth.PermManagePeople, "/people/import") {
		return
	}
	c.render(rw, r, http.StatusOK, "import", c.importView(st))
}

// postImport previews an uploaded file: a dry run that shows what would
// change, or every row that is wrong, with nothing changed.
func (c *Console) postImport(rw http.ResponseWriter, r *http.Request, st *state) {
	if !c.permitted(rw, r, st, auth.PermManagePeople, "/people/import") {
		return
	}
	v := c.importView(st)
	d := v.Data.(*importData)
	f, hdr, err := r.FormFile("file")
	if err != nil {
		v.Problem = "Choose the CSV file to import."
		c.render(rw, r, http.StatusBadRequest, "import", v)
		return
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxImportBytes+1))
	if err != nil || len(data) > maxImportBytes {
		v.Problem = "The file could not be read, or is over 20 MB."
		c.render(rw, r, http.StatusBadRequest, "import", v)
		return
	}
	opts := directory.ImportOptions{Actor: actorOf(st.account), DeactivateMissing: r.FormValue("deactivate_missing") == "1", DryRun: true}
	if k := r.FormValue("kind"); k != "" {
		if opts.Kind, err = directory.ParseKind(k); err != nil {
			v.Problem = err.Error()
			c.render(rw, r, http.StatusBadRequest, "import", v)
			return
		}
	}
	name := strings.ToValidUTF8(hdr.Filename, "?")
	if len(name) > 100 {
		name = name[:100]
	}
	res, err := c.importer.ImportCSV(r.Context(), bytes.NewReader(data), name, opts)
	p := &importPreview{ImportResult: res}
	p.File = name
	var ie *directory.ImportError
	switch {
	case errors.As(err, &ie):
		for _, pr := range ie.Problems {
			p.Problems = append(p.Problems, pr.Error())
		}
	case err != nil:
		p.Problems = []string{err.Error()}
	default:
		opts.DryRun = false
		if p.Upload, err = c.uploads.put(c.now(), &upload{person: st.account.Person.ID, file: name, data: data, opts: opts,
			expires: c.now().Add(uploadTTL)}); err != nil {
			v.Problem = err.Error()
			c.render(rw, r, http.StatusServiceUnavailable, "import", v)
			return
		}
	}
	d.Preview = p
	status := http.StatusOK
	if len(p.Problems) > 0 {
		status = http.StatusUnprocessableEntity
	}
	c.render(rw, r, status, "import", v)
}

// postImportConfirm imports a previewed file. Its rows are checked
// again: the directory may have changed since the preview.
func (c *Console) postImportConfirm(rw http.ResponseWriter, r *http.Request, st *state) {
	if !c.permitted(rw, r, st, auth.PermManagePeople, "/people/import") {
		return
	}
	v := c.importView(st)
	up := c.uploads.take(c.now(), r.PostForm.Get("upload"), st.account.Person.ID)
	if up == nil {
		v.Problem = "That preview has expired or was used already: upload the file again."
		c.render(rw, r, http.StatusBadRequest, "import", v)
		return
	}
	res, err := c.importer.ImportCSV(r.Context(), bytes.NewReader(up.data), up.file, up.opts)
	entry := audit.Entry{PersonID: st.account.Person.ID, Actor: actorOf(st.account), Action: audit.ActionPeopleImported, Target: up.file}
	if err != nil {
		entry.Outcome, entry.Detail = audit.Failed, err.Error()
	} else {
		entry.Detail = strings.Join([]string{strconv.Itoa(res.Rows) + " rows", strconv.Itoa(res.Created) + " new", strconv.Itoa(res.Updated) + " updated",
			strconv.Itoa(res.Deactivated) + " left"}, ", ")
	}
	if !c.record(rw, r, entry) {
		return
	}
	if err != nil {
		v.Problem = "Nothing was imported: " + err.Error()
		c.render(rw, r, http.StatusUnprocessableEntity, "import", v)
		return
	}
	v.Data.(*importData).Done = &res
	c.render(rw, r, http.StatusOK, "import", v)
}
