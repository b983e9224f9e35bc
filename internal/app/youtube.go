package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/warden-schools/warden/internal/audit"
	"github.com/warden-schools/warden/internal/auth"
	"github.com/warden-schools/warden/internal/policy"
	"github.com/warden-schools/warden/internal/store"
)

// MaxYouTubeReason is the longest reason kept with a YouTube approval, in
// characters.
const MaxYouTubeReason = 500

// YouTubeApproval is a YouTube video or channel approved for teaching: an
// allow exception whose pattern names the video or channel, so the
// inspecting proxy lifts Restricted Mode for it and nothing else.
type YouTubeApproval struct {
	// ExceptionID is the exception that holds the approval.
	ExceptionID int64
	// Group is the group it is approved for; "" means every group.
	Group string
	Ref   policy.YouTubeRef
	// Reason is why (the exception's note).
	Reason string
	// By and At say who approved it and when.
	By string
	At time.Time
}

// ErrYouTubeNotApproved is returned by RevokeYouTube when the video or
// channel is not approved for the group.
var ErrYouTubeNotApproved = errors.New("not approved")

// ApproveYouTube approves a YouTube video or channel (what, a URL or an
// id) for a group, or for every group when group is "", with a reason.
// It adds an allow exception (and so a revision in the change record)
// in the actor's name. Approving what is already approved, or what a
// block exception for the group blocks, is an error that says so.
func (a *App) ApproveYouTube(ctx context.Context, actor, group, what, reason string) (YouTubeApproval, error) {
	ref, err := policy.ParseYouTubeRef(what)
	if err != nil {
		return YouTubeApproval{}, err
	}
	reason = strings.Join(strings.Fields(reason), " ")
	if utf8.RuneCountInString(reason) > MaxYouTubeReason {
		return YouTubeApproval{}, fmt.Errorf("the reason is longer than %d characters", MaxYouTubeReason)
	}
	if err := a.checkGroup(ctx, group); err != nil {
		return YouTubeApproval{}, err
	}
	recs, err := a.exceptionRecords(ctx)
	if err != nil {
		return YouTubeApproval{}, err
	}
	for _, r := range recs {
		if r.Ref != ref || (r.Group != group && r.Group != "") {
			continue
		}
		switch {
		case r.action == policy.Block:
			return YouTubeApproval{}, fmt.Errorf("%s is blocked for %s by exception %d (%s); remove that exception first",
				ref, scopeName(r.Group), r.ExceptionID, r.pattern)
		case r.Group == group:
			return YouTubeApproval{}, fmt.Errorf("%s is already approved for %s (by %s on %s): %w",
				ref, scopeName(group), r.By, r.At.Format("2 January 2006"), store.ErrConflict)
		}
	}
	id, err := a.Policies.AddException(ctx, actor, group, policy.Exception{Action: policy.Allow, Pattern: ref.Pattern(), Note: reason})
	if err != nil {
		return YouTubeApproval{}, fmt.Errorf("approve %s for %s: %w", ref, scopeName(group), err)
	}
	return YouTubeApproval{ExceptionID: id, Group: group, Ref: ref, Reason: reason, By: actor, At: a.now().UTC()}, nil
}

// RevokeYouTube removes a group's approval of a YouTube video or channel
// (every exception of the group's, or of every group's when group is "",
// that approves it), recording each removal in the change record. An
// approval for every group is not removed for one group alone.
func (a *App) RevokeYouTube(ctx context.Context, actor, group, what string) ([]YouTubeApproval, error) {
	ref, err := policy.ParseYouTubeRef(what)
	if err != nil {
		return nil, err
	}
	if err := a.checkGroup(ctx, group); err != nil {
		return nil, err
	}
	recs, err := a.exceptionRecords(ctx)
	if err != nil {
		return nil, err
	}
	var removed []YouTubeApproval
	schoolWide := false
	for _, r := range recs {
		if r.Ref != ref || r.action != policy.Allow {
			continue
		}
		if r.Group != group {
			schoolWide = schoolWide || r.Group == ""
			continue
		}
		if err := a.Policies.RemoveException(ctx, actor, r.ExceptionID); err != nil {
			return removed, fmt.Errorf("revoke %s for %s: %w", ref, scopeName(group), err)
		}
		removed = append(removed, r.YouTubeApproval)
	}
	if len(removed) == 0 {
		if schoolWide {
			return nil, fmt.Errorf("%s is approved for every group, not for %s alone; revoke it for all groups: %w", ref, group, ErrYouTubeNotApproved)
		}
		return nil, fmt.Errorf("%s is %w for %s", ref, ErrYouTubeNotApproved, scopeName(group))
	}
	return removed, nil
}

// YouTubeApprovals lists the YouTube videos and channels approved for a
// group (its own and those for every group), or every approval when
// group is "", oldest first.
func (a *App) YouTubeApprovals(ctx context.Context, group string) ([]YouTubeApproval, error) {
	if err := a.checkGroup(ctx, group); err != nil {
		return nil, err
	}
	recs, err := a.exceptionRecords(ctx)
	if err != nil {
		return nil, err
	}
	var out []YouTubeApproval
	for _, r := range recs {
		if r.action == policy.Allow && (group == "" || r.Group == group || r.Group == "") {
			out = append(out, r.YouTubeApproval)
		}
	}
	return out, nil
}

// checkGroup checks that a group exists ("" is every group).
func (a *App) checkGroup(ctx context.Context, group string) error {
	if group == "" {
		return nil
	}
	pol, err := a.Policies.Load(ctx)
	if err != nil {
		return err
	}
	for _, g := range pol.Groups {
		if g.ID == group {
			return nil
		}
	}
	return fmt.Errorf("no group %q (see `warden groups list`): %w", group, store.ErrNotFound)
}

// youTubeRecord is an exception that names a YouTube video or channel.
type youTubeRecord struct {
	YouTubeApproval
	action  policy.Action
	pattern string
}

// exceptionRecords reads every exception that names a YouTube video or
// channel, with who added it and when, oldest first.
func (a *App) exceptionRecords(ctx context.Context) ([]youTubeRecord, error) {
	all, err := a.Policies.Exceptions(ctx)
	if err != nil {
		return nil, err
	}
	var out []youTubeRecord
	for _, e := range all {
		ref, ok := policy.ParseYouTubeURL(e.Pattern)
		if !ok {
			continue
		}
		r := youTubeRecord{action: e.Action, pattern: e.Pattern}
		r.ExceptionID, r.Group, r.Ref, r.Reason, r.By, r.At = e.ID, e.Group, ref, e.Note, e.CreatedBy, e.CreatedAt
		out = append(out, r)
	}
	return out, nil
}

func scopeName(group string) string {
	if group == "" {
		return "all groups"
	}
	return group
}

// ApproveYouTubeAsStaff approves a YouTube video or channel (url) for a
// group on the word of a member of staff who signs with their login and
// Warden password: the block page's approval form. The approval is
// recorded in their name. It returns auth.ErrInvalidCredentials,
// *auth.LockedError or auth.ErrNotPermitted when they may not approve.
func (a *App) ApproveYouTubeAsStaff(ctx context.Context, login, password, group, url, reason string) error {
	acct, err := a.Accounts.Verify(ctx, login, password)
	entry := audit.Entry{Actor: login, Action: audit.ActionYouTubeApproved, Target: group + " " + url, Detail: reason}
	if err != nil {
		entry.Outcome, entry.Detail = audit.Failed, "sign-in on the block page failed"
		return errors.Join(err, a.recordAudit(ctx, entry))
	}
	entry.PersonID = acct.Person.ID
	if acct.Person.Username != "" {
		entry.Actor = acct.Person.Username
	}
	if !acct.Role.Can(auth.PermApproveYouTube) {
		entry.Outcome, entry.Detail = audit.Refused, "role "+acct.Role.String()
		return errors.Join(fmt.Errorf("%s (role %s): %w", acct.Person.DisplayName(), acct.Role, auth.ErrNotPermitted), a.recordAudit(ctx, entry))
	}
	// Recorded first: an approval is never made unrecorded.
	if err := a.recordAudit(ctx, entry); err != nil {
		return err
	}
	_, err = a.ApproveYouTube(ctx, entry.Actor, group, url, reason)
	return err
}

// recordAudit writes to the audit log when it is open (warden serve).
func (a *App) recordAudit(ctx context.Context, e audit.Entry) error {
	if a.audit == nil {
		return errors.New("the audit log is not open")
	}
	return a.audit.Record(ctx, e)
}
