package policy

import (
	"fmt"
	"strings"
)

// Action is what a policy does with a request: allow it, block it, or
// allow it and raise an alert for the safeguarding team.
type Action uint8

// Actions. The order is the severity used when a site is in several
// categories: Block beats Alert beats Allow.
const (
	Allow Action = iota
	Alert
	Block
)

// ParseAction reads "allow", "alert" (allow and alert) or "block".
func ParseAction(s string) (Action, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "allow":
		return Allow, nil
	case "alert", "allow-and-alert", "allow_and_alert":
		return Alert, nil
	case "block":
		return Block, nil
	}
	return 0, fmt.Errorf("unknown action %q (want allow, alert or block)", s)
}

// String returns "allow", "alert" or "block".
func (a Action) String() string {
	switch a {
	case Allow:
		return "allow"
	case Alert:
		return "alert"
	case Block:
		return "block"
	}
	return fmt.Sprintf("action(%d)", uint8(a))
}

// MarshalText writes the action's name.
func (a Action) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// Mode is how a group filters: by category, or approved sites only.
type Mode uint8

// Modes.
const (
	// ModeFilter allows what no category or rule blocks.
	ModeFilter Mode = iota
	// ModeApproved allows only approved sites (the group's allow
	// exceptions and, if the group puts education first, the education
	// lists), for the youngest pupils.
	ModeApproved
)

// ParseMode reads "filter" or "approved".
func ParseMode(s string) (Mode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "filter", "category", "categories":
		return ModeFilter, nil
	case "approved", "approved-only", "approved-sites-only":
		return ModeApproved, nil
	}
	return 0, fmt.Errorf("unknown mode %q (want filter or approved)", s)
}

// String returns "filter" or "approved".
func (m Mode) String() string {
	if m == ModeApproved {
		return "approved"
	}
	return "filter"
}

// SafeSearch is the safe search level a group enforces on search engines
// and YouTube.
type SafeSearch uint8

// Safe search levels.
const (
	SafeSearchOff SafeSearch = iota
	SafeSearchModerate
	SafeSearchStrict
)

// ParseSafeSearch reads "off", "moderate" or "strict".
func ParseSafeSearch(s string) (SafeSearch, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "off", "none":
		return SafeSearchOff, nil
	case "moderate":
		return SafeSearchModerate, nil
	case "strict":
		return SafeSearchStrict, nil
	}
	return 0, fmt.Errorf("unknown safe search level %q (want off, moderate or strict)", s)
}

// String returns "off", "moderate" or "strict".
func (s SafeSearch) String() string {
	switch s {
	case SafeSearchModerate:
		return "moderate"
	case SafeSearchStrict:
		return "strict"
	}
	return "off"
}

// MarshalText writes the level's name.
func (s SafeSearch) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
