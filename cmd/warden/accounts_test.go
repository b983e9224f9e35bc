package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// wardenIn runs the real binary with stdin.
func wardenIn(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, wardenBin, args...)
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run warden %v: %v", args, err)
	}
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

func TestAccountsCommands(t *testing.T) {
	data := demoData(t)
	if r := mustWarden(t, "accounts", "list", "--data", data); !strings.Contains(r.stdout, "No accounts yet") {
		t.Errorf("empty list:\n%s", r.stdout)
	}
	r := wardenIn(t, "paper lantern over the river\n", "accounts", "set", "--data", data, "--role", "headteacher", "gsmith")
	if r.code != 0 || !strings.Contains(r.stdout, "Set the password of Grace Smith (role headteacher)") || !strings.Contains(r.stdout, "two-factor") {
		t.Fatalf("set: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = mustWarden(t, "accounts", "set", "--data", data, "--generate", "mia.jones")
	m := regexp.MustCompile(`password: ([a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4})\n`).FindStringSubmatch(r.stdout)
	if m == nil || !strings.Contains(r.stdout, "shown only this once") {
		t.Fatalf("generate:\n%s", r.stdout)
	}
	if r := warden(t, "accounts", "role", "--data", data, "awilliams@demo-school.example", "dsl"); r.code != 1 || !strings.Contains(r.stderr, "has no account") {
		t.Errorf("role without an account: %d %s", r.code, r.stderr)
	}
	wardenIn(t, "marmalade telescope window\n", "accounts", "set", "--data", data, "awilliams")
	if r := mustWarden(t, "accounts", "role", "--data", data, "awilliams@demo-school.example", "dsl"); !strings.Contains(r.stdout, "Alfie Williams now has the role dsl") {
		t.Errorf("role: %s", r.stdout)
	}

	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  string
	}{
		{"weak", "sunshine2026!!\n", []string{"set", "sobrien", "--role", "staff"}, 1, "commonly used"},
		{"short for staff", "purple ott4\n", []string{"set", "sobrien", "--role", "staff"}, 1, "at least 12"},
		{"pupil role", "a long enough pass phrase\n", []string{"set", "jack.brown", "--role", "it"}, 1, "for staff only"},
		{"unknown person", "a long enough pass phrase\n", []string{"set", "nobody"}, 1, "not found"},
		{"bad role", "x\n", []string{"set", "sobrien", "--role", "wizard"}, 2, "unknown role"},
		{"no password", "", []string{"set", "sobrien"}, 2, "standard input"},
		{"no login", "", []string{"set"}, 2, "give one login"},
		{"no sub", "", nil, 2, "give list, set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := wardenIn(t, tc.stdin, append(append([]string{"accounts"}, tc.args...), "--data", data)...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", r.code, r.stderr, tc.code, tc.want)
			}
		})
	}

	mustWarden(t, "accounts", "disable", "--data", data, "mia.jones")
	list := mustWarden(t, "accounts", "list", "--data", data).stdout
	for _, re := range []string{
		`gsmith\s+Grace Smith\s+staff\s+headteacher\s+\d{4}-\d\d-\d\d\s+active, two-factor not set up\s+never`,
		`mia.jones\s+Mia Jones\s+pupil\s+none\s+\d{4}-\d\d-\d\d\s+disabled\s+never`,
	} {
		if !regexp.MustCompile(re).MatchString(list) {
			t.Errorf("list does not match %s:\n%s", re, list)
		}
	}
	mustWarden(t, "accounts", "enable", "--data", data, "mia.jones")
	mustWarden(t, "accounts", "unlock", "--data", data, "mia.jones")
	mustWarden(t, "accounts", "remove", "--data", data, "mia.jones")
	if r := warden(t, "accounts", "remove", "--data", data, "mia.jones"); r.code != 1 || !strings.Contains(r.stderr, "has no account") {
		t.Errorf("second remove: %d %s", r.code, r.stderr)
	}
}

func TestAccountsSetupLink(t *testing.T) {
	data := demoData(t)
	r := mustWarden(t, "accounts", "setup-link", "--data", data, "--url-base", "https://warden.school.example")
	if !regexp.MustCompile(`https://warden\.school\.example/setup/[A-Za-z0-9_-]{43}\n`).MatchString(r.stdout) {
		t.Fatalf("setup-link:\n%s", r.stdout)
	}
	wardenIn(t, "copper kettle on the hill\n", "accounts", "set", "--data", data, "--role", "it", "pshah")
	if r := mustWarden(t, "accounts", "setup-link", "--data", data); !strings.Contains(r.stdout, "administrator already") {
		t.Fatalf("with an admin:\n%s", r.stdout)
	}
	if r := mustWarden(t, "accounts", "reset-2fa", "--data", data, "pshah"); !strings.Contains(r.stdout, "Reset the two-factor") {
		t.Fatalf("reset-2fa:\n%s", r.stdout)
	}
}

// warden audit verify reads what warden serve's console wrote; with no
// master key it says so rather than make a new one.
func TestAuditCommands(t *testing.T) {
	data := demoData(t)
	if r := warden(t, "audit", "verify", "--data", data); r.code != 1 || !strings.Contains(r.stderr, "no master key") {
		t.Fatalf("without a master key: %d %s", r.code, r.stderr)
	}
	mustWarden(t, "ca", "init", "--data", data, "--name", "Test School") // creates the master key
	if r := mustWarden(t, "audit", "verify", "--data", data); !strings.Contains(r.stdout, "intact: 0 rows") {
		t.Fatalf("empty log:\n%s", r.stdout)
	}
	if r := mustWarden(t, "audit", "list", "--data", data); !strings.Contains(r.stdout, "0 of 0 entries") {
		t.Fatalf("list:\n%s", r.stdout)
	}
	if r := warden(t, "audit", "frobnicate", "--data", data); r.code != 2 {
		t.Fatalf("unknown subcommand: %d", r.code)
	}
}

// warden lists update: a bad download changes nothing and says so.
func TestListsUpdateCommand(t *testing.T) {
	data := demoData(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<html>Sign in</html>"))
	}))
	defer srv.Close()
	r := warden(t, "lists", "update", "--data", data, srv.URL+"/blacklists.tar.gz")
	if r.code != 1 || !strings.Contains(r.stderr, "web page") || !strings.Contains(r.stderr, "Nothing was changed") {
		t.Fatalf("bad download: %d\n%s", r.code, r.stderr)
	}
	if r := warden(t, "lists", "update", "--data", data); r.code != 2 {
		t.Fatalf("no URL: %d", r.code)
	}
}
