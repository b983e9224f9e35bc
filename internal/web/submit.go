package web

import (
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"

	"github.com/warden-schools/warden/internal/blockpage"
	"github.com/warden-schools/warden/internal/reviews"
	"github.com/warden-schools/warden/internal/store"
)

// The review and report forms are cross-origin by design: the block page
// is usually shown on the blocked site's own origin (by the proxy, or by
// this listener under a DNS-blocked name) and posts to Warden's action
// URL. Cookies, SameSite and Origin checks therefore cannot protect them.
// The protection is the signed token in each form: it binds everything
// stored about the block (reference, time, host, URL, decision, client,
// device, person) with HMAC-SHA256 under a key only Warden holds, so a
// forged or altered form is refused, and it expires. What a sender can
// choose is only the free text, which is cleaned, bounded and rate
// limited per client address.

// submission is what both form handlers start with.
type submission struct {
	client netip.Addr
	values url.Values
}

// begin rate-limits the client and parses the form with a size limit. It
// writes the error page and returns false on failure. Every attempt
// counts towards the limit, so a flood of junk is cheap to refuse.
func (w *Web) begin(rw http.ResponseWriter, r *http.Request) (submission, bool) {
	client := clientIP(r)
	now := w.now()
	if !w.limiter.allow(client, now) {
		wait := w.limiter.retryAfter(client, now)
		rw.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds()+0.999)))
		w.log.Info("form_rate_limited", "client", client)
		w.notice(rw, http.StatusTooManyRequests, blockpage.Notice{
			Title: "Too many requests from this device",
			Paragraphs: []string{
				"This device has sent a lot of requests in the last few minutes. Please wait a while and try again.",
				"If it is urgent, ask your teacher.",
			},
		})
		return submission{}, false
	}
	r.Body = http.MaxBytesReader(rw, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		if _, tooBig := errors.AsType[*http.MaxBytesError](err); tooBig {
			w.notice(rw, http.StatusRequestEntityTooLarge, blockpage.Notice{
				Title:      "Your message is too long",
				Paragraphs: []string{"Go back, shorten your message and send it again."},
			})
			return submission{}, false
		}
		w.notice(rw, http.StatusBadRequest, blockpage.Notice{
			Title:      "This form could not be read",
			Paragraphs: []string{"Go back to the blocked page, reload it and try again."},
		})
		return submission{}, false
	}
	return submission{client: client, values: r.PostForm}, true
}

// tokenForm is a decoded block-page form, which carries its page's token.
type tokenForm interface {
	token() string
}

func (f reviewForm) token() string  { return f.Token }
func (f reportForm) token() string  { return f.Token }
func (f youTubeForm) token() string { return f.Token }

// startForm begins every block-page form: rate limit and parse (begin),
// decode, and verify the token. It writes the error page and returns
// false on failure.
func startForm[F tokenForm](w *Web, rw http.ResponseWriter, r *http.Request, decode func(url.Values) (F, error)) (F, blockpage.Claims, bool) {
	var zero F
	sub, ok := w.begin(rw, r)
	if !ok {
		return zero, blockpage.Claims{}, false
	}
	form, err := decode(sub.values)
	if err != nil {
		w.formProblem(rw, err)
		return zero, blockpage.Claims{}, false
	}
	c, ok := w.verify(rw, form.token())
	if !ok {
		return zero, blockpage.Claims{}, false
	}
	return form, c, true
}

// verify checks a form's token, writing the error page on failure.
func (w *Web) verify(rw http.ResponseWriter, token string) (blockpage.Claims, bool) {
	c, err := w.page.Verify(token)
	switch {
	case err == nil:
		return c, true
	case errors.Is(err, blockpage.ErrTokenExpired):
		w.notice(rw, http.StatusBadRequest, blockpage.Notice{
			Title: "This page has expired",
			Paragraphs: []string{"A block page's forms can be used for a few days only.",
				"Go back, reload the page you wanted to get a new block page, and send your request from there."},
		})
	default:
		w.log.Info("form_token_refused", "err", err)
		w.notice(rw, http.StatusBadRequest, blockpage.Notice{
			Title: "This form could not be sent",
			Paragraphs: []string{"Its details were changed, or it did not come from this school's filter.",
				"Go back to the blocked page, reload it and try again."},
		})
	}
	return blockpage.Claims{}, false
}

// formProblem writes the page for a form that failed its checks.
func (w *Web) formProblem(rw http.ResponseWriter, err error) {
	w.notice(rw, http.StatusBadRequest, blockpage.Notice{
		Title:      "Please check your form",
		Paragraphs: []string{err.Error(), "Go back, correct it and send it again."},
	})
}

// storeFailed writes the page for a request that could not be stored:
// never a pretended success.
func (w *Web) storeFailed(rw http.ResponseWriter, what, ref string, err error) {
	switch {
	case errors.Is(err, reviews.ErrInvalid):
		w.formProblem(rw, err)
		return
	case errors.Is(err, store.ErrConflict):
		w.notice(rw, http.StatusConflict, blockpage.Notice{
			Title:      "This request could not be saved",
			Paragraphs: []string{"Another request already uses this page's reference. Go back, reload the page you wanted and send your request from the new block page."},
			Ref:        ref,
		})
		return
	}
	w.log.Error("form_store_failed", "what", what, "ref", ref, "err", err)
	w.notice(rw, http.StatusServiceUnavailable, blockpage.Notice{
		Title: "Your " + what + " was not saved",
		Paragraphs: []string{"Warden could not save it just now. Please go back and send it again in a minute.",
			"If it keeps happening, tell your teacher and give them the reference."},
		Ref: ref,
	})
}

// sent redirects to the thanks page (relative to this handler, so that
// it works under any path prefix).
func sent(rw http.ResponseWriter, kind, ref string) {
	rw.Header().Set("Location", "thanks?"+url.Values{"kind": {kind}, "ref": {ref}}.Encode())
	rw.Header().Set("Cache-Control", "no-store")
	rw.WriteHeader(http.StatusSeeOther)
}
