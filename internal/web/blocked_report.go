package web

import (
	"net/http"

	"github.com/warden-schools/warden/internal/reviews"
)

// postReport stores a report of an unsuitable site, with who reported it
// from the page's token.
func (w *Web) postReport(rw http.ResponseWriter, r *http.Request) {
	form, c, ok := startForm(w, rw, r, decodeReport)
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
