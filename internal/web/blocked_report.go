package web

import (
	"net/http"

	"github.com/warden-schools/warden/internal/reviews"
)

// postReport stores a report of an unsuitable site, with who reported it
// from the page's token.
func (w *Web) postReport(rw http.ResponseWriter, r *http.Request) {
	sub, ok := w.begin(rw, r)
	if !ok {
		return
	}
	form, err := decodeReport(sub.values)
	if err != nil {
		w.formProblem(rw, err)
		return
	}
	c, ok := w.verify(rw, form.Token)
	if !ok {
		return
	}
	rep, err := w.reviews.CreateReport(r.Context(), reviews.ReportInput{
		URL: form.URL, Message: form.Message,
		GroupID: c.Group, ClientIP: c.ClientIP, DeviceID: c.DeviceID, PersonID: c.PersonID,
		Ref: c.Ref,
	})
	if err != nil {
		w.storeFailed(rw, "report", c.Ref, err)
		return
	}
	w.log.Info("site_report_stored", "id", rep.ID, "ref", rep.Ref)
	sent(rw, "report", c.Ref)
}
