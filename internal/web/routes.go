package web

import "net/http"

// Register adds the block page's routes to mux:
//
//	GET  /blocked          the block page for ?host= (and optional &url=), for links and tests
//	POST /blocked/review   "this should not be blocked": store a review request
//	POST /blocked/report   "report an unsuitable site": store a site report
//	POST /blocked/youtube  a member of staff approves a blocked YouTube video or channel
//	GET  /blocked/thanks   confirmation with the reference (?kind=review|report|youtube&ref=)
//
// Wrap the listener's handler in BlockForeignHosts so that names the DNS
// filter blocked get the block page on any path.
func (w *Web) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /blocked", w.blocked)
	mux.HandleFunc("POST /blocked/review", w.postReview)
	mux.HandleFunc("POST /blocked/report", w.postReport)
	mux.HandleFunc("POST /blocked/youtube", w.postYouTube)
	mux.HandleFunc("GET /blocked/thanks", w.thanks)
}
