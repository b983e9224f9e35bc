package web

import (
	"net/http"

	"github.com/warden-schools/warden/internal/blockpage"
)

// thanks serves GET /blocked/thanks?kind=review|report&ref=REF: a calm
// confirmation that says what happens next. It reads nothing from the
// store, so a guessed reference tells nobody anything.
func (w *Web) thanks(rw http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ref, err := blockpage.ParseRef(q.Get("ref"))
	if err != nil {
		ref = ""
	}
	n := blockpage.Notice{Ref: ref}
	switch q.Get("kind") {
	case "review":
		n.Title = "Your request has been sent"
		n.Paragraphs = []string{
			"The people who look after the school's filter will look at the site and decide whether to unblock it. You do not need to do anything else.",
			"If you need the site for a lesson now, tell your teacher and give them the reference below.",
		}
	case "report":
		n.Title = "Thank you for your report"
		n.Paragraphs = []string{
			"The people who look after online safety at school will check the site.",
			"If something you saw upset or worried you, please talk to a teacher or another adult you trust. You have done the right thing by telling us.",
		}
	case "youtube":
		n.Title = "Approved for teaching"
		n.Paragraphs = []string{
			"The approval is recorded in your name. Go back and reload the page: it opens for the group within a few seconds.",
			"YouTube's Restricted Mode stays on for everything else. The approval can be revoked from the console or with warden youtube revoke.",
		}
	default:
		n.Title = "Thank you"
		n.Paragraphs = []string{"Your form has been sent."}
	}
	w.notice(rw, http.StatusOK, n)
}
