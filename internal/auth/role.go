package auth

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/warden-schools/warden/internal/directory"
)

// Role is what an account may do in the console. RoleNone is an account
// with credentials only (the web proxy's sign-in, the AUP), and no console.
type Role string

// The roles. The console's permissions matrix is written in terms of them.
const (
	RoleNone        Role = ""
	RoleDSL         Role = "dsl"
	RoleDeputyDSL   Role = "deputy-dsl"
	RoleHeadteacher Role = "headteacher"
	RoleLeadership  Role = "leadership"
	RoleIT          Role = "it"
	RoleStaff       Role = "staff"
	RoleGovernor    Role = "governor"
)

// Roles lists the console roles, most trusted with safeguarding first.
func Roles() []Role {
	return []Role{RoleDSL, RoleDeputyDSL, RoleHeadteacher, RoleLeadership, RoleIT, RoleStaff, RoleGovernor}
}

// ParseRole reads a role name ("none" or "" for no console role).
func ParseRole(s string) (Role, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" || s == "none" {
		return RoleNone, nil
	}
	for _, r := range Roles() {
		if string(r) == s {
			return r, nil
		}
	}
	names := make([]string, 0, 8)
	for _, r := range Roles() {
		names = append(names, string(r))
	}
	return "", fmt.Errorf("unknown role %q (want none, %s)", s, strings.Join(names, ", "))
}

// String returns the role's name, "none" for RoleNone.
func (r Role) String() string {
	if r == RoleNone {
		return "none"
	}
	return string(r)
}

// Label is the role's name for people: "DSL", "IT technician".
func (r Role) Label() string {
	switch r {
	case RoleDSL:
		return "DSL"
	case RoleDeputyDSL:
		return "Deputy DSL"
	case RoleHeadteacher:
		return "Headteacher"
	case RoleLeadership:
		return "Leadership"
	case RoleIT:
		return "IT technician"
	case RoleStaff:
		return "Staff"
	case RoleGovernor:
		return "Governor"
	}
	return "No console role"
}

// RequiresTOTP reports whether the role must sign in to the console with a
// second factor: the roles that see safeguarding records or control the
// filter.
func (r Role) RequiresTOTP() bool {
	switch r {
	case RoleDSL, RoleDeputyDSL, RoleHeadteacher, RoleIT:
		return true
	}
	return false
}

// allowedFor reports why a person of kind k cannot hold role r, or "".
// Pupils hold no console role; governors may be staff, parents or
// visitors (community governors); every other role is for staff.
func (r Role) allowedFor(k directory.Kind) string {
	switch {
	case r == RoleNone:
		return ""
	case r == RoleGovernor && k != directory.KindPupil:
		return ""
	case k == directory.KindStaff:
		return ""
	case r == RoleGovernor:
		return "a pupil cannot be a governor"
	}
	return fmt.Sprintf("the %s role is for staff only (this person is recorded as %s)", r, k)
}

// MinPasswordLen is the shortest password for a person of kind k holding
// role r: MinPasswordPupil for a pupil, MinPasswordStaff for everyone
// else.
func MinPasswordLen(k directory.Kind, r Role) int {
	if k == directory.KindPupil && r == RoleNone {
		return MinPasswordPupil
	}
	return MinPasswordStaff
}

// Permission is something a role may do in the console.
type Permission string

// Permissions. The matrix of which role holds which is Matrix; the README
// shows it as a table, which a test keeps in step.
const (
	// PermCheckSite is "Why is this blocked?": decide any address for any
	// group, as warden check does.
	PermCheckSite Permission = "check-site"
	// PermApproveYouTube approves a YouTube video or channel for a group,
	// for teaching (from the block page or the console).
	PermApproveYouTube Permission = "approve-youtube"
	// PermViewFiltering shows group policies, categories, lists,
	// exceptions, schedules and zones, and the change log.
	PermViewFiltering Permission = "view-filtering"
	// PermProposeChange proposes a change to filtering, and handles the
	// review-request queue.
	PermProposeChange Permission = "propose-change"
	// PermApproveChange approves a change that loosens protection for
	// pupils, proposed by someone else (the DfE standards' sign-off by
	// leadership).
	PermApproveChange Permission = "approve-change"
	// PermViewPeople shows people, devices and zones.
	PermViewPeople Permission = "view-people"
	// PermManagePeople imports people, registers devices and issues
	// device tokens.
	PermManagePeople Permission = "manage-people"
	// PermViewAccessLog shows the access log: who visited what.
	PermViewAccessLog Permission = "view-access-log"
	// PermViewSafeguarding shows safeguarding concerns and records.
	PermViewSafeguarding Permission = "view-safeguarding"
	// PermViewReports shows reports for leadership and governors.
	PermViewReports Permission = "view-reports"
	// PermManageAccounts gives people accounts and roles, resets
	// passwords and two-factor authentication, and changes settings.
	PermManageAccounts Permission = "manage-accounts"
	// PermViewAudit shows the audit log of console actions and sign-ins.
	PermViewAudit Permission = "view-audit"
)

// Permissions lists every permission in the order the matrix shows them.
func Permissions() []Permission {
	return []Permission{PermCheckSite, PermApproveYouTube, PermViewFiltering, PermProposeChange, PermApproveChange,
		PermViewPeople, PermManagePeople, PermViewAccessLog, PermViewSafeguarding, PermViewReports, PermManageAccounts, PermViewAudit}
}

// Matrix returns, for each permission, the roles that hold it. It is
// least privilege by need to know: the access log (personal browsing) is
// for the safeguarding team, the headteacher and IT; safeguarding records
// for the safeguarding team and the headteacher; governors see reports
// only. An account without a role (RoleNone) holds nothing.
func Matrix() map[Permission][]Role {
	return map[Permission][]Role{
		PermCheckSite:        {RoleDSL, RoleDeputyDSL, RoleHeadteacher, RoleLeadership, RoleIT, RoleStaff},
		PermApproveYouTube:   {RoleDSL, RoleDeputyDSL, RoleHeadteacher, RoleLeadership, RoleIT, RoleStaff},
		PermViewFiltering:    {RoleDSL, RoleDeputyDSL, RoleHeadteacher, RoleLeadership, RoleIT},
		PermProposeChange:    {RoleDSL, RoleDeputyDSL, RoleHeadteacher, RoleLeadership, RoleIT},
		PermApproveChange:    {RoleDSL, RoleHeadteacher, RoleLeadership},
		PermViewPeople:       {RoleDSL, RoleDeputyDSL, RoleHeadteacher, RoleLeadership, RoleIT},
		PermManagePeople:     {RoleIT},
		PermViewAccessLog:    {RoleDSL, RoleDeputyDSL, RoleHeadteacher, RoleIT},
		PermViewSafeguarding: {RoleDSL, RoleDeputyDSL, RoleHeadteacher},
		PermViewReports:      {RoleDSL, RoleDeputyDSL, RoleHeadteacher, RoleLeadership, RoleGovernor},
		PermManageAccounts:   {RoleHeadteacher, RoleIT},
		PermViewAudit:        {RoleDSL, RoleHeadteacher},
	}
}

// ErrNotPermitted means the account's role may not do what was asked.
var ErrNotPermitted = errors.New("not permitted for this role")

// Can reports whether role r has permission p.
func (r Role) Can(p Permission) bool {
	return r != RoleNone && slices.Contains(Matrix()[p], r)
}
