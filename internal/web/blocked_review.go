package web

import (
	"net/http"

	"github.com/warden-schools/warden/internal/blockpage"
	"github.com/warden-schools/warden/internal/reviews"
)

// postReview stores a request to review a block: the block's details
// from the page's token, and the optional message.
func (w *Web) postReview(rw http.ResponseWriter, r *http.Request) {
	form, c, ok := startForm(w, rw, r, decodeReview)
	if !ok {
		return
	}
	if c.Mandatory {
		w.notice(rw, http.StatusBadRequest, blockpage.Notice{
			Title: "This site cannot be unblocked",
			Paragraphs: []string{"It is on a list of illegal content that the law requires schools to block, so nobody at school can unblock it.",
				"If you saw something that worried you, you can report it from the block page, or talk to a teacher."},
			Ref: c.Ref,
		})
		return
	}
	req, err := w.reviews.CreateRequest(r.Context(), reviews.RequestInput{
		Ref: c.Ref, BlockedAt: c.Time, Host: c.Host, URL: c.URL,
		Category: c.Category, List: c.List, Rule: c.Rule, Reason: c.Reason,
		GroupID: c.Group, PolicyVersion: c.PolicyVersion,
		ClientIP: c.ClientIP, DeviceID: c.DeviceID, PersonID: c.PersonID,
		Message: form.Message,
	})
	if err != nil {
		w.storeFailed(rw, "request", c.Ref, err)
		return
	}
	w.log.Info("review_request_stored", "id", req.ID, "ref", req.Ref)
	sent(rw, "review", req.Ref)
}
