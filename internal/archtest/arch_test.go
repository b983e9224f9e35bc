package archtest

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/warden-schools/warden"

type pkg struct {
	ImportPath string
	Dir        string
	Doc        string
	Name       string
	GoFiles    []string
	Imports    []string
	Deps       []string
}

func packages(t *testing.T) []pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps=false", "-json", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var ps []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	if len(ps) < 10 {
		t.Fatalf("go list found only %d packages", len(ps))
	}
	return ps
}

func deps(t *testing.T, path string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", path).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", path, err)
	}
	return strings.Fields(string(out))
}

// TestPurePackages holds the line that the policy engine and list
// matchers do no I/O: they may not depend on the file system, network or
// database packages.
func TestPurePackages(t *testing.T) {
	pure := map[string]bool{module + "/internal/policy": true, module + "/internal/lists": true}
	// Nothing these packages use may reach the network or the database.
	transitive := []string{"net/http", "database/sql", module + "/internal/store", module + "/internal/app"}
	for p := range pure {
		for _, d := range deps(t, p) {
			for _, f := range transitive {
				if d == f {
					t.Errorf("%s depends on %s; it must stay pure (no I/O)", p, d)
				}
			}
		}
	}
	// And they may not open files or sockets themselves.
	direct := map[string]bool{"os": true, "os/exec": true, "net": true, "syscall": true}
	for _, p := range packages(t) {
		if !pure[p.ImportPath] {
			continue
		}
		for _, imp := range p.Imports {
			if direct[imp] {
				t.Errorf("%s imports %s; it must stay pure (no I/O)", p.ImportPath, imp)
			}
		}
	}
}

// TestImportDirection holds the layering: only app imports config; cmd
// imports app and no domain package's store; the filters and identity
// never touch the store.
func TestImportDirection(t *testing.T) {
	for _, p := range packages(t) {
		for _, imp := range p.Imports {
			switch {
			case imp == module+"/internal/config" && p.ImportPath != module+"/internal/app":
				t.Errorf("%s imports config; only internal/app may", p.ImportPath)
			case imp == module+"/internal/store" && (strings.HasPrefix(p.ImportPath, module+"/cmd/") ||
				strings.Contains(p.ImportPath, "/internal/dnsfilter") || strings.Contains(p.ImportPath, "/internal/proxy") ||
				strings.HasSuffix(p.ImportPath, "/internal/identity") || strings.HasSuffix(p.ImportPath, "/internal/events")):
				t.Errorf("%s imports store; it must work through the app and in-memory state", p.ImportPath)
			case strings.HasPrefix(p.ImportPath, module+"/internal/") && imp == module+"/internal/app":
				t.Errorf("%s imports app; imports point down from app", p.ImportPath)
			}
		}
		for _, banned := range []string{"utils", "common", "helpers", "models", "util"} {
			if p.Name == banned {
				t.Errorf("package %s is named %q; name packages for what they provide", p.ImportPath, banned)
			}
		}
	}
}

// TestDocs checks that every package has a package comment and every
// exported top-level name a doc comment.
func TestDocs(t *testing.T) {
	for _, p := range packages(t) {
		if strings.TrimSpace(p.Doc) == "" {
			t.Errorf("package %s has no package comment", p.ImportPath)
		}
		fset := token.NewFileSet()
		for _, name := range p.GoFiles {
			f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			for _, decl := range f.Decls {
				switch d := decl.(type) {
				case *ast.FuncDecl:
					if d.Name.IsExported() && d.Doc == nil && exportedRecv(d) {
						t.Errorf("%s: %s has no doc comment", fset.Position(d.Pos()), d.Name.Name)
					}
				case *ast.GenDecl:
					for _, spec := range d.Specs {
						var names []*ast.Ident
						var doc *ast.CommentGroup
						switch s := spec.(type) {
						case *ast.TypeSpec:
							names, doc = []*ast.Ident{s.Name}, s.Doc
						case *ast.ValueSpec:
							names, doc = s.Names, s.Doc
						}
						for _, n := range names {
							if n.IsExported() && doc == nil && d.Doc == nil {
								t.Errorf("%s: %s has no doc comment", fset.Position(n.Pos()), n.Name)
							}
						}
					}
				}
			}
		}
	}
}

// exportedRecv reports whether a method's receiver type is exported (or
// the function is not a method).
func exportedRecv(d *ast.FuncDecl) bool {
	if d.Recv == nil || len(d.Recv.List) == 0 {
		return true
	}
	typ := d.Recv.List[0].Type
	if st, ok := typ.(*ast.StarExpr); ok {
		typ = st.X
	}
	if ix, ok := typ.(*ast.IndexExpr); ok {
		typ = ix.X
	}
	id, ok := typ.(*ast.Ident)
	return ok && id.IsExported()
}
