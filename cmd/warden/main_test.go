package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// wardenBin is the warden binary built once for the tests.
var wardenBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "warden-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	wardenBin = filepath.Join(dir, "warden")
	build := exec.Command("go", "build", "-o", wardenBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build warden:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	stdout, stderr string
	code           int
}

// warden runs the real binary and returns its output and exit status.
func warden(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, wardenBin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run warden %v: %v", args, err)
	}
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

func mustWarden(t *testing.T, args ...string) result {
	t.Helper()
	r := warden(t, args...)
	if r.code != 0 {
		t.Fatalf("warden %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

func demoData(t *testing.T) string {
	t.Helper()
	data := filepath.Join(t.TempDir(), "data")
	r := mustWarden(t, "init", "--demo", "--data", data)
	if !strings.Contains(r.stdout, "demonstration school") {
		t.Fatalf("init output: %s", r.stdout)
	}
	return data
}

func checkJSONOf(t *testing.T, args ...string) checkJSON {
	t.Helper()
	r := mustWarden(t, append([]string{"check", "--json"}, args...)...)
	var out checkJSON
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("check --json output is not JSON: %v\n%s", err, r.stdout)
	}
	return out
}

func TestCheckJSON(t *testing.T) {
	data := demoData(t)
	got := checkJSONOf(t, "--data", data, "--group", "key-stage-2", "www.bet365.com")
	if got.Action != "block" || got.Category != "gambling" || got.List != "ut1/gambling" || got.Rule != "category" ||
		got.Group != "key-stage-2" || got.PolicyVersion <= 0 || !strings.Contains(got.Reason, "UT1 gambling") {
		t.Errorf("bet365 for key-stage-2: %+v", got)
	}
	// The object carries at least these keys, with these names.
	r := mustWarden(t, "check", "--json", "--data", data, "--group", "staff", "example.org")
	var raw map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"action", "category", "list", "rule", "reason", "group", "policy_version"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("check --json lacks %q", k)
		}
	}
	// --ip with --group sets the source address for zone rules.
	lunch := checkJSONOf(t, "--data", data, "--group", "staff", "--ip", "10.20.0.9", "--time", "2026-06-10T11:30:00Z", "facebook.com")
	if lunch.Action != "allow" || lunch.Zone != "staff-room" || !strings.HasPrefix(lunch.Rule, "rule:") {
		t.Errorf("staff at lunch in the staff room: %+v", lunch)
	}
	morning := checkJSONOf(t, "--data", data, "--group", "staff", "--ip", "10.20.0.9", "--time", "2026-06-10T08:30:00Z", "facebook.com")
	if morning.Action != "block" {
		t.Errorf("staff in the morning: %+v", morning)
	}
	byUser := checkJSONOf(t, "--data", data, "--user", "mia.jones", "https://play.ttrockstars.com/")
	if byUser.Action != "allow" || byUser.Group != "key-stage-2" || byUser.Person != "Mia Jones" || byUser.Rule != "education" {
		t.Errorf("mia.jones on TTRS: %+v", byUser)
	}
}

func TestCheckText(t *testing.T) {
	data := demoData(t)
	r := mustWarden(t, "check", "--data", data, "--ip", "10.30.2.3", "example.org")
	for _, want := range []string{"BLOCK  example.org", "early-years-ks1", "reception-ipad-03", "approved sites only", "policy version"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("check output lacks %q:\n%s", want, r.stdout)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	data := demoData(t)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"frobnicate"}, 2, "unknown command"},
		{[]string{"check", "--data", data, "example.org"}, 2, "--group"},
		{[]string{"check", "--data", data, "--group", "staff"}, 2, "one host name or URL"},
		{[]string{"check", "--data", data, "--group", "nope", "example.org"}, 1, `no group "nope"`},
		{[]string{"check", "--data", data, "--group", "staff", "--time", "noon", "example.org"}, 2, "RFC 3339"},
		{[]string{"lists", "import", "--data", data, "--format", "csv", "x"}, 2, "unknown list format"},
		{[]string{"init", "--demo", "--data", data}, 1, "already holds a school"},
	} {
		r := warden(t, tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("warden %v: exit %d, stderr %q; want exit %d and %q", tc.args, r.code, r.stderr, tc.code, tc.want)
		}
	}
}

func TestListsImport(t *testing.T) {
	data := demoData(t)
	r := mustWarden(t, "lists", "import", "--data", data, "--category", "gambling", "--name", "local/extra-gambling", "testdata/extra-gambling.txt")
	if !strings.Contains(r.stderr, "testdata/extra-gambling.txt:4:") || !strings.Contains(r.stderr, "1 malformed line") {
		t.Errorf("malformed line not reported with file:line:\n%s", r.stderr)
	}
	if !strings.Contains(r.stdout, "local/extra-gambling") {
		t.Errorf("import output:\n%s", r.stdout)
	}
	got := checkJSONOf(t, "--data", data, "--group", "key-stage-2", "www.spin-and-win.example")
	if got.Action != "block" || got.List != "local/extra-gambling" || got.Category != "gambling" {
		t.Errorf("imported domain: %+v", got)
	}
	got = checkJSONOf(t, "--data", data, "--group", "key-stage-2", "http://promo.example/free-bets/today")
	if got.Action != "block" || got.Matched != "promo.example/free-bets/" {
		t.Errorf("imported URL prefix: %+v", got)
	}

	// Hosts file, format detected.
	mustWarden(t, "lists", "import", "--data", data, "--category", "advertising", "testdata/ads.hosts")
	got = checkJSONOf(t, "--data", data, "--group", "key-stage-2", "tracker-two.example")
	if got.Action != "block" || got.List != "local/ads" {
		t.Errorf("hosts entry: %+v", got)
	}

	// An unreadable file fails clearly and the previous version stays.
	before := mustWarden(t, "lists", "show", "--data", data).stdout
	r = warden(t, "lists", "import", "--data", data, "--name", "local/extra-gambling", "testdata/no-such-file.txt")
	if r.code != 1 || !strings.Contains(r.stderr, "no-such-file.txt") || !strings.Contains(r.stderr, "Nothing was changed") {
		t.Errorf("missing file: exit %d, %s", r.code, r.stderr)
	}
	if after := mustWarden(t, "lists", "show", "--data", data).stdout; after != before {
		t.Errorf("a failed import changed the lists:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	got = checkJSONOf(t, "--data", data, "--group", "key-stage-2", "local-casino.example")
	if got.Action != "block" {
		t.Errorf("previous version no longer in force: %+v", got)
	}

	// Categories and the source mapping are shown as data.
	cats := mustWarden(t, "lists", "categories").stdout
	for _, want := range []string{"pornography", "self-harm", "circumvention", "drogue", "drugs", "agressif"} {
		if !strings.Contains(cats, want) {
			t.Errorf("lists categories lacks %q", want)
		}
	}
}

func TestMandatoryListNeverShown(t *testing.T) {
	data := demoData(t)
	mustWarden(t, "lists", "import", "--data", data, "--mandatory", "iwf", "testdata/iwf-urls.txt")
	got := checkJSONOf(t, "--data", data, "--group", "staff", "http://illegal-test.example/abuse/1.jpg")
	if got.Action != "block" || !got.Mandatory || got.List != "iwf" || got.Matched != "" {
		t.Errorf("IWF hit: %+v", got)
	}
	for _, m := range got.Listed {
		if m.List == "iwf" && m.Entry != "" {
			t.Errorf("IWF entry shown in listed: %+v", m)
		}
	}
	// Listing commands never show the entries.
	show := mustWarden(t, "lists", "show", "--data", data, "iwf")
	all := mustWarden(t, "lists", "show", "--data", data)
	for _, r := range []result{show, all} {
		if strings.Contains(r.stdout+r.stderr, "illegal") {
			t.Errorf("lists show reveals a mandatory entry:\n%s%s", r.stdout, r.stderr)
		}
	}
	if !strings.Contains(show.stdout, "never shown") || !strings.Contains(show.stdout, "2 entries") {
		t.Errorf("lists show iwf: %s", show.stdout)
	}
	// Checking one URL echoes that URL, but never the list's entries.
	text := mustWarden(t, "check", "--data", data, "--group", "staff", "http://illegal-test.example/abuse/1.jpg").stdout
	if strings.Contains(text, "other-illegal") || !strings.Contains(text, "(entry not shown)") || strings.Contains(text, "matched") {
		t.Errorf("check reveals mandatory entries:\n%s", text)
	}
	js := mustWarden(t, "check", "--json", "--data", data, "--group", "staff", "https://www.other-illegal.example/path/page.html").stdout
	if strings.Contains(js, "illegal-test") || strings.Contains(js, `"entry"`) {
		t.Errorf("check --json reveals mandatory entries:\n%s", js)
	}
	for _, args := range [][]string{{"lists", "delete", "--data", data, "iwf"}, {"lists", "add", "--data", data, "iwf", "x.example"}} {
		if r := warden(t, args...); r.code == 0 {
			t.Errorf("warden %v succeeded on a mandatory list", args)
		}
	}
}

func TestPeopleImport(t *testing.T) {
	data := demoData(t)
	r := mustWarden(t, "people", "import", "--data", data, "testdata/pupils.csv")
	if !strings.Contains(r.stdout, "3 new") {
		t.Errorf("import output:\n%s", r.stdout)
	}
	r = mustWarden(t, "people", "import", "--data", data, "testdata/pupils.csv")
	if !strings.Contains(r.stdout, "0 new") || !strings.Contains(r.stdout, "3 unchanged") {
		t.Errorf("re-import output:\n%s", r.stdout)
	}
	list := mustWarden(t, "people", "list", "--data", data, "--search", "Novak").stdout
	if !strings.Contains(list, "Eva Novak") || !strings.Contains(list, "key-stage-2") {
		t.Errorf("people list:\n%s", list)
	}
	list = mustWarden(t, "people", "list", "--data", data, "--search", "Liam").stdout
	if !strings.Contains(list, "early-years-ks1") {
		t.Errorf("Reception pupil not in early-years-ks1:\n%s", list)
	}
	before := mustWarden(t, "people", "list", "--data", data).stdout
	r = warden(t, "people", "import", "--data", data, "testdata/bad_pupils.csv")
	if r.code != 1 || !strings.Contains(r.stderr, "testdata/bad_pupils.csv:3:") || !strings.Contains(r.stderr, "testdata/bad_pupils.csv:4:") {
		t.Errorf("bad rows: exit %d\n%s", r.code, r.stderr)
	}
	if after := mustWarden(t, "people", "list", "--data", data).stdout; after != before {
		t.Error("a failed import changed the people")
	}
}

// TestServeReloadsChanges starts the real server on a random loopback
// port, changes a list from the command line, and sees the running
// server's policy version move without a restart.
func TestServeReloadsChanges(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, wardenBin, "serve", "--demo", "--data", data, "--http-addr", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	addrRe := regexp.MustCompile(`http://(127\.0\.0\.1:\d+)/healthz`)
	lines := bufio.NewScanner(stdout)
	var addr string
	for lines.Scan() {
		if m := addrRe.FindStringSubmatch(lines.Text()); m != nil {
			addr = m[1]
			break
		}
	}
	if addr == "" {
		t.Fatalf("server did not report its address; stderr:\n%s", stderr.String())
	}
	go io.Copy(io.Discard, stdout)
	health := func() (version int64, domains int) {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var h struct {
			Status        string `json:"status"`
			PolicyVersion int64  `json:"policy_version"`
			Domains       int    `json:"domains"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&h); err != nil || h.Status != "ok" {
			t.Fatalf("healthz: %+v, %v", h, err)
		}
		return h.PolicyVersion, h.Domains
	}
	v0, d0 := health()
	if d0 < 1000 {
		t.Errorf("demo lists hold only %d domains", d0)
	}
	mustWarden(t, "lists", "add", "--data", data, "local/education", "new-learning-site.example")
	deadline := time.Now().Add(20 * time.Second)
	for {
		v, d := health()
		if v > v0 && d == d0+1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server still at version %d with %d domains after the change", v, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("serve did not stop cleanly: %v\n%s", err, stderr.String())
	}
}

// TestNewSchoolSetUp sets up a school without the demo: groups,
// membership rules, a people import, and a decision for a pupil.
func TestNewSchoolSetUp(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	mustWarden(t, "init", "--data", data)
	mustWarden(t, "groups", "add", "--data", data, "infants", "--mode", "approved", "--education-first")
	mustWarden(t, "groups", "add", "--data", data, "juniors", "--education-first")
	mustWarden(t, "groups", "set", "--data", data, "juniors", "streaming=block", "games=alert")
	mustWarden(t, "groups", "members", "add", "--data", data, "infants", "--kind", "pupil", "--years", "N-2")
	r := mustWarden(t, "groups", "members", "add", "--data", data, "juniors", "--kind", "pupil", "--years", "3-6")
	if !regexp.MustCompile(`2\s+pupil Year 3 to Year 6\s+juniors`).MatchString(r.stdout) {
		t.Errorf("members output:\n%s", r.stdout)
	}
	r = mustWarden(t, "people", "import", "--data", data, "testdata/pupils.csv")
	if !strings.Contains(r.stdout, "infants") || !strings.Contains(r.stdout, "juniors") {
		t.Errorf("import did not place pupils by rule:\n%s", r.stdout)
	}
	mustWarden(t, "lists", "import", "--data", data, "--category", "games", "--name", "local/games", "testdata/extra-gambling.txt")
	r = warden(t, "check", "--data", data, "--group", "juniors", "--json", "local-casino.example")
	var j checkJSON
	if err := json.Unmarshal([]byte(r.stdout), &j); err != nil {
		t.Fatal(err)
	}
	if j.Action != "allow" || !j.Alert || j.Category != "games" {
		t.Errorf("games=alert for juniors: %+v", j)
	}
	if r := warden(t, "groups", "set", "--data", data, "juniors", "child-abuse=allow"); r.code == 0 {
		t.Error("a mandatory category was set to allow")
	}
	if r := warden(t, "groups", "members", "add", "--data", data, "nowhere", "--kind", "staff"); r.code == 0 {
		t.Error("a membership rule for a missing group was accepted")
	}
}
