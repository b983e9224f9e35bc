package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/warden-schools/warden/internal/auth"
	"github.com/warden-schools/warden/internal/blockpage"
	"github.com/warden-schools/warden/internal/store"
)

// YouTubeApprover approves a blocked YouTube video or channel for a group
// on a member of staff's word: it checks their login and password, that
// their role may approve (auth.PermApproveYouTube), and records the
// approval in their name. Errors: auth.ErrInvalidCredentials,
// *auth.LockedError, auth.ErrNotPermitted, or store.ErrConflict (already
// approved, with a message that says so).
type YouTubeApprover interface {
	ApproveYouTubeAsStaff(ctx context.Context, login, password, group, url, reason string) error
}

// youTubeForm is a decoded approval form.
type youTubeForm struct {
	Token, Login, Password, Reason string
}

// decodeYouTube reads the approval form's fields.
func decodeYouTube(v url.Values) (youTubeForm, error) {
	var f youTubeForm
	var err error
	for _, fld := range []struct {
		dst  *string
		name string
	}{{&f.Token, blockpage.FieldToken}, {&f.Login, blockpage.FieldLogin}, {&f.Password, blockpage.FieldPassword}, {&f.Reason, blockpage.FieldReason}} {
		if *fld.dst, err = single(v, fld.name); err != nil {
			return youTubeForm{}, err
		}
	}
	if f.Login, err = cleanText("Your username or email", f.Login, 254, false); err != nil {
		return youTubeForm{}, err
	}
	if f.Reason, err = cleanText("The lesson or reason", f.Reason, blockpage.MaxReasonLen, false); err != nil {
		return youTubeForm{}, err
	}
	switch {
	case f.Login == "" || f.Password == "":
		return youTubeForm{}, formErrorf("Please give your username or email and your Warden password.")
	case len(f.Password) > 1024:
		return youTubeForm{}, formErrorf("That password is too long.")
	case f.Reason == "":
		return youTubeForm{}, formErrorf("Please say which lesson the video is for: the approval is recorded with it.")
	}
	return f, nil
}

// postYouTube approves the blocked YouTube video or channel of the
// page's token for the token's group, when a member of staff signs the
// form with their Warden password.
func (w *Web) postYouTube(rw http.ResponseWriter, r *http.Request) {
	if w.youTube == nil {
		http.NotFound(rw, r)
		return
	}
	form, c, ok := startForm(w, rw, r, decodeYouTube)
	if !ok {
		return
	}
	if c.Mandatory || c.URL == "" || c.Group == "" {
		w.formProblem(rw, formErrorf("This block page does not offer an approval."))
		return
	}
	err := w.youTube.ApproveYouTubeAsStaff(r.Context(), form.Login, form.Password, c.Group, c.URL, form.Reason)
	var locked *auth.LockedError
	switch {
	case err == nil:
		w.log.Info("youtube_approved_from_block_page", "ref", c.Ref, "group", c.Group, "login", form.Login)
		sent(rw, "youtube", c.Ref)
	case errors.Is(err, auth.ErrInvalidCredentials):
		w.notice(rw, http.StatusForbidden, blockpage.Notice{
			Title:      "Sign-in failed",
			Paragraphs: []string{"The username or password is wrong. Go back and try again; after five wrong passwords the account is locked for a while."},
			Ref:        c.Ref,
		})
	case errors.As(err, &locked):
		w.notice(rw, http.StatusForbidden, blockpage.Notice{
			Title:      "Your account is locked",
			Paragraphs: []string{locked.Error() + ".", "Ask the IT technician if you need it sooner."},
			Ref:        c.Ref,
		})
	case errors.Is(err, auth.ErrNotPermitted):
		w.notice(rw, http.StatusForbidden, blockpage.Notice{
			Title:      "Only staff can approve videos",
			Paragraphs: []string{"Your account cannot approve videos for teaching. Ask a teacher, or ask for a review from the block page."},
			Ref:        c.Ref,
		})
	case errors.Is(err, store.ErrConflict):
		w.notice(rw, http.StatusOK, blockpage.Notice{
			Title:      "Already approved",
			Paragraphs: []string{err.Error() + ".", "Go back and reload the page."},
			Ref:        c.Ref,
		})
	default:
		w.log.Error("youtube_approval_failed", "ref", c.Ref, "err", err)
		w.notice(rw, http.StatusServiceUnavailable, blockpage.Notice{
			Title:      "The video was not approved",
			Paragraphs: []string{"Warden could not record the approval just now. Please go back and try again in a minute."},
			Ref:        c.Ref,
		})
	}
}
