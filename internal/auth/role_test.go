package auth

import (
	"os"
	"strings"
	"testing"
)

// The README shows the permissions matrix; this keeps it true.
func TestREADMEMatrix(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- permissions matrix: generated from internal/auth, checked by TestREADMEMatrix -->\n", "<!-- end of permissions matrix -->"
	_, rest, ok := strings.Cut(string(readme), begin)
	got, _, ok2 := strings.Cut(rest, end)
	if !ok || !ok2 {
		t.Fatalf("README.md lacks the permissions matrix between %q and %q", begin, end)
	}
	var b strings.Builder
	b.WriteString("| permission |")
	for _, r := range Roles() {
		b.WriteString(" " + string(r) + " |")
	}
	b.WriteString("\n| --- |" + strings.Repeat(" :-: |", len(Roles())) + "\n")
	for _, p := range Permissions() {
		b.WriteString("| `" + string(p) + "` |")
		for _, r := range Roles() {
			if r.Can(p) {
				b.WriteString(" ✓ |")
			} else {
				b.WriteString(" |")
			}
		}
		b.WriteString("\n")
	}
	if got != b.String() {
		t.Errorf("README.md's permissions matrix differs from internal/auth; it should read:\n%s", b.String())
	}
}

func TestMatrix(t *testing.T) {
	m := Matrix()
	if len(m) != len(Permissions()) {
		t.Fatalf("Matrix has %d permissions, Permissions lists %d", len(m), len(Permissions()))
	}
	for _, p := range Permissions() {
		if RoleNone.Can(p) {
			t.Errorf("an account without a role holds %s", p)
		}
	}
	// Need to know: governors see reports only; safeguarding records are
	// not for IT or leadership by default.
	for _, p := range Permissions() {
		if RoleGovernor.Can(p) != (p == PermViewReports) {
			t.Errorf("governor and %s: %v", p, RoleGovernor.Can(p))
		}
	}
	if RoleIT.Can(PermViewSafeguarding) || RoleLeadership.Can(PermViewSafeguarding) || RoleStaff.Can(PermViewAccessLog) {
		t.Error("need-to-know broken")
	}
	if _, err := ParseRole("Deputy-DSL"); err != nil {
		t.Error(err)
	}
	if _, err := ParseRole("wizard"); err == nil {
		t.Error("unknown role parsed")
	}
}
