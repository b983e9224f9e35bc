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

	"github.com/miekg/dns"
	"github.com/warden-schools/warden/internal/wardentest"
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

// served is a running `warden serve` and where it listens.
type served struct {
	// scheme is "http", or "https" when the web listener has a
	// certificate; dot is the DNS-over-TLS address.
	http, dns, dot string
	scheme         string
	cmd            *exec.Cmd
	stderr         *bytes.Buffer
}

// serve starts the real server with the given extra arguments, always on
// random loopback ports, and waits until it reports its addresses.
func serve(t *testing.T, data string, args ...string) *served {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	args = append([]string{"serve", "--data", data, "--http-addr", "127.0.0.1:0"}, args...)
	cmd := exec.CommandContext(ctx, wardenBin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &served{cmd: cmd, stderr: &bytes.Buffer{}}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	httpRe := regexp.MustCompile(`(https?)://(127\.0\.0\.1:\d+)/healthz`)
	dnsRe := regexp.MustCompile(`DNS filter on (127\.0\.0\.1:\d+)`)
	dotRe := regexp.MustCompile(`DNS-over-TLS on (127\.0\.0\.1:\d+)`)
	wantDNS, wantDoT := false, false
	for _, a := range args {
		wantDNS = wantDNS || a == "--dns-addr"
		wantDoT = wantDoT || a == "--dot-addr"
	}
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		if m := httpRe.FindStringSubmatch(lines.Text()); m != nil {
			s.scheme, s.http = m[1], m[2]
		}
		if m := dnsRe.FindStringSubmatch(lines.Text()); m != nil {
			s.dns = m[1]
		}
		if m := dotRe.FindStringSubmatch(lines.Text()); m != nil {
			s.dot = m[1]
		}
		if s.http != "" && (s.dns != "" || !wantDNS) && (s.dot != "" || !wantDoT) {
			break
		}
	}
	if s.http == "" || wantDNS && s.dns == "" || wantDoT && s.dot == "" {
		t.Fatalf("server did not report its addresses; stderr:\n%s", s.stderr.String())
	}
	go io.Copy(io.Discard, stdout)
	return s
}

func (s *served) stop(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Wait(); err != nil {
		t.Fatalf("serve did not stop cleanly: %v\n%s", err, s.stderr.String())
	}
}

// health reads /healthz.
func (s *served) health(t *testing.T) (version int64, domains int) {
	t.Helper()
	resp, err := http.Get("http://" + s.http + "/healthz")
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

// TestServeReloadsChanges starts the real server on a random loopback
// port, changes a list from the command line, and sees the running
// server's policy version move without a restart.
func TestServeReloadsChanges(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	s := serve(t, data, "--demo", "--dns-addr", "127.0.0.1:0", "--upstream", "127.0.0.1:9")
	v0, d0 := s.health(t)
	if d0 < 1000 {
		t.Errorf("demo lists hold only %d domains", d0)
	}
	mustWarden(t, "lists", "add", "--data", data, "local/education", "new-learning-site.example")
	deadline := time.Now().Add(20 * time.Second)
	for {
		v, d := s.health(t)
		if v > v0 && d == d0+1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server still at version %d with %d domains after the change", v, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.stop(t)
}

// TestServeDNS runs the demo's DNS filter and asks it, as a school device
// on loopback (a key stage 2 pupil in the demo) would, with a fake
// upstream resolver on loopback; then changes the policy while it runs.
func TestServeDNS(t *testing.T) {
	up := wardentest.Resolver(t)
	data := filepath.Join(t.TempDir(), "data")
	s := serve(t, data, "--demo", "--dns-addr", "127.0.0.1:0", "--upstream", up)
	ask := func(name string) *dns.Msg {
		t.Helper()
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(name), dns.TypeA)
		r, _, err := (&dns.Client{Timeout: 3 * time.Second}).Exchange(m, s.dns)
		if err != nil {
			t.Fatalf("ask %s: %v", name, err)
		}
		return r
	}
	a := func(r *dns.Msg) string {
		for _, rr := range r.Answer {
			if x, ok := rr.(*dns.A); ok {
				return x.A.String()
			}
		}
		return ""
	}
	if got := a(ask("www.bet365.com")); got != "127.0.0.1" {
		t.Errorf("bet365 for a pupil: %q, want the block page 127.0.0.1", got)
	}
	if got := a(ask("example.org")); got != "192.0.2.7" {
		t.Errorf("example.org: %q, want the upstream's answer", got)
	}
	// A live change: allow bet365.com on the education list (which the
	// demo's key stage 2 puts ahead of gambling). No restart.
	mustWarden(t, "lists", "add", "--data", data, "local/education", "bet365.com")
	deadline := time.Now().Add(20 * time.Second)
	for a(ask("www.bet365.com")) != "192.0.2.7" {
		if time.Now().After(deadline) {
			t.Fatal("the running DNS filter did not pick up the change")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Every question was counted and recorded in the access log.
	deadline = time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + s.http + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := string(body)
		written := regexp.MustCompile(`(?m)^warden_events_written_total (\d+)`).FindStringSubmatch(m)
		if strings.Contains(m, `warden_dns_queries_total{decision="block",qtype="A"}`) &&
			strings.Contains(m, `warden_dns_blocked_total{category="gambling"}`) && written != nil && written[1] != "0" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics do not show the queries and their events:\n%s", m)
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.stop(t)
}

func TestZones(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	mustWarden(t, "init", "--data", data)
	mustWarden(t, "groups", "add", "--data", data, "guests")
	mustWarden(t, "zones", "add", "--data", data, "guest-wifi", "--networks", "10.99.0.0/16, 10.98.0.0/16", "--group", "guests", "--name", "Guest Wi-Fi")
	if out := mustWarden(t, "zones", "list", "--data", data).stdout; !strings.Contains(out, "10.98.0.0/16") || !strings.Contains(out, "guests") {
		t.Errorf("zones list:\n%s", out)
	}
	if got := checkJSONOf(t, "--data", data, "--ip", "10.99.4.5", "example.org"); got.Group != "guests" || got.Zone != "guest-wifi" {
		t.Errorf("client in the zone: %+v", got)
	}
	if r := warden(t, "zones", "add", "--data", data, "bad", "--networks", "10.0.0.5/8"); r.code == 0 || !strings.Contains(r.stderr, "host bits") {
		t.Errorf("zone with host bits: exit %d %s", r.code, r.stderr)
	}
	mustWarden(t, "zones", "delete", "--data", data, "guest-wifi")
	if out := mustWarden(t, "zones", "list", "--data", data).stdout; strings.Contains(out, "guest-wifi") {
		t.Errorf("zone not deleted:\n%s", out)
	}
}
