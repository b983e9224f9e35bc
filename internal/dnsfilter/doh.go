package dnsfilter

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/miekg/dns"

	"github.com/warden-schools/warden/internal/identity"
)

// DoHPattern is where the DNS-over-HTTPS handler is mounted on the web
// listener's mux: a device's own URL holds its token.
const DoHPattern = "/dns-query/{token}"

// dohContentType is the media type of DNS messages over HTTP (RFC 8484).
const dohContentType = "application/dns-message"

// maxDoHMessage bounds a query: a DNS message is at most 65535 bytes.
const maxDoHMessage = 65535

// DoHOptions configure the DNS-over-HTTPS handler.
type DoHOptions struct {
	// RateLimit is the queries per second one device token may make
	// (bursts of twice that); 0 means DefaultRateLimit, negative means no
	// limit. It is the per-address limit of the UDP and TCP listeners,
	// applied per device, since an off-site device has no fixed address.
	RateLimit int
}

// DoH answers DNS-over-HTTPS (RFC 8484) at DoHPattern for devices that
// have a token: GET with the query in the dns parameter (base64url) or
// POST with the query as the body. The token identifies the device, and
// so the policy, wherever the device is.
//
// An unknown or revoked token gets exactly the response of a path that
// does not exist, so tokens cannot be probed. Over plain HTTP (a web
// listener without a certificate) only loopback clients are answered:
// a token sent in the clear could be copied.
type DoH struct {
	f       *Filter
	limiter *limiter
}

// DoH returns the filter's DNS-over-HTTPS handler; mount it at
// DoHPattern.
func (f *Filter) DoH(opts DoHOptions) *DoH {
	if opts.RateLimit == 0 {
		opts.RateLimit = DefaultRateLimit
	}
	h := &DoH{f: f}
	if opts.RateLimit > 0 {
		h.limiter = newLimiter(opts.RateLimit, f.now)
	}
	return h
}

// dohError is an HTTP-level failure: a status and a short text for the
// client, never a Go error's text.
type dohError struct {
	status int
	text   string
}

// ServeHTTP answers one DNS-over-HTTPS request.
func (h *DoH) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	client := remoteAddr(r.RemoteAddr)
	// First, before the token is looked at: over plain HTTP from another
	// machine the token has already crossed the network in the clear.
	if !dohTransportOK(r.TLS != nil, client) {
		writeDoHError(w, dohError{http.StatusForbidden, "DNS-over-HTTPS needs HTTPS: give Warden's web listener a certificate (tls.cert_file and tls.key_file)."})
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		writeDoHError(w, dohError{http.StatusMethodNotAllowed, "Use GET or POST (RFC 8484)."})
		return
	}
	sub, ok := h.identify(r.PathValue("token"), client)
	if !ok {
		// The same answer as any path that does not exist.
		http.NotFound(w, r)
		return
	}
	q, herr := readDoHQuery(w, r)
	if herr != nil {
		writeDoHError(w, *herr)
		return
	}
	resp := h.answer(r.Context(), q, client, sub)
	if resp == nil {
		writeDoHError(w, dohError{http.StatusBadRequest, "The message is a DNS response, not a query."})
		return
	}
	buf, err := resp.Pack()
	if err != nil {
		h.f.log.Error("doh_pack_failed", "err", err)
		writeDoHError(w, dohError{http.StatusInternalServerError, "The answer could not be encoded."})
		return
	}
	w.Header().Set("Content-Type", dohContentType)
	w.Header().Set("Cache-Control", "max-age="+strconv.FormatUint(uint64(maxAge(resp)), 10))
	w.Header().Set("Content-Length", strconv.Itoa(len(buf)))
	_, _ = w.Write(buf)
}

// dohTransportOK says whether a DoH request may be answered: always over
// HTTPS, and over plain HTTP only from loopback (tests, or a reverse
// proxy on the same machine that terminates HTTPS).
func dohTransportOK(overTLS bool, client netip.Addr) bool {
	return overTLS || client.IsLoopback()
}

// identify looks the token up in the identity table in force. The form
// check keeps junk from being hashed; the lookup is by the token's hash,
// so its time says nothing about how close a guess was.
func (h *DoH) identify(token string, client netip.Addr) (identity.Subject, bool) {
	if !identity.ValidToken(token) {
		return identity.Subject{}, false
	}
	tab := h.f.opts.Identity()
	if tab == nil {
		return identity.Subject{}, false
	}
	return tab.ByToken(token, client)
}

// readDoHQuery reads the query from a GET's dns parameter or a POST's
// body, and unpacks it.
func readDoHQuery(w http.ResponseWriter, r *http.Request) (*dns.Msg, *dohError) {
	var buf []byte
	if r.Method == http.MethodGet {
		param := r.URL.Query().Get("dns")
		if param == "" {
			return nil, &dohError{http.StatusBadRequest, "Missing the dns parameter (the query in base64url)."}
		}
		if len(param) > base64.RawURLEncoding.EncodedLen(maxDoHMessage)+2 {
			return nil, &dohError{http.StatusRequestURITooLong, "The dns parameter is longer than a DNS message can be."}
		}
		var err error
		// RFC 8484 says no padding; accept it anyway.
		if buf, err = base64.RawURLEncoding.DecodeString(strings.TrimRight(param, "=")); err != nil {
			return nil, &dohError{http.StatusBadRequest, "The dns parameter is not base64url."}
		}
	} else {
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != dohContentType {
			return nil, &dohError{http.StatusUnsupportedMediaType, "Send the query with Content-Type: " + dohContentType + "."}
		}
		buf, err = io.ReadAll(http.MaxBytesReader(w, r.Body, maxDoHMessage))
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			return nil, &dohError{http.StatusRequestEntityTooLarge, fmt.Sprintf("The body is larger than a DNS message can be (%d bytes).", maxDoHMessage)}
		case err != nil:
			return nil, &dohError{http.StatusBadRequest, "The body could not be read."}
		}
	}
	if len(buf) == 0 {
		return nil, &dohError{http.StatusBadRequest, "The DNS message is empty."}
	}
	q := new(dns.Msg)
	if err := q.Unpack(buf); err != nil {
		return nil, &dohError{http.StatusBadRequest, "Malformed DNS message."}
	}
	return q, nil
}

// answer runs a well-formed message from an identified device through
// the filter, or returns nil when it is not a query.
func (h *DoH) answer(ctx context.Context, q *dns.Msg, client netip.Addr, sub identity.Subject) *dns.Msg {
	if q.Response {
		return nil
	}
	if h.limiter != nil && !h.limiter.allow(deviceKey(sub.DeviceID)) {
		if len(q.Question) == 1 {
			h.f.metrics.query(q.Question[0].Qtype, idxRefused)
		}
		return refuse(q, dns.RcodeRefused)
	}
	if ok, bad := Check(q); !ok {
		return bad
	}
	return h.f.Handle(ctx, &Request{Msg: q, Client: client, Protocol: "doh", Start: h.f.now(), Subject: sub})
}

// writeDoHError writes an HTTP error that no cache keeps.
func writeDoHError(w http.ResponseWriter, e dohError) {
	w.Header().Set("Cache-Control", "max-age=0")
	http.Error(w, e.text, e.status)
}

// maxAge is how long an HTTP cache may keep an answer (RFC 8484 section
// 5.1): the smallest TTL in the answer section, or for a name that does
// not exist or has no records of the type, the negative-caching time of
// the SOA in the authority section; 0 for errors and answers with
// nothing to go by.
func maxAge(m *dns.Msg) uint32 {
	if m.Rcode != dns.RcodeSuccess && m.Rcode != dns.RcodeNameError {
		return 0
	}
	if len(m.Answer) > 0 {
		age := m.Answer[0].Header().Ttl
		for _, rr := range m.Answer[1:] {
			age = min(age, rr.Header().Ttl)
		}
		return age
	}
	for _, rr := range m.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			return min(soa.Hdr.Ttl, soa.Minttl)
		}
	}
	return 0
}

// remoteAddr reads an http.Request's RemoteAddr.
func remoteAddr(s string) netip.Addr {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// deviceKey gives a device its own key in the rate limiter, which counts
// by address: an address in 100::/64, the IPv6 discard prefix (RFC
// 6666), which no client can be asking from.
func deviceKey(deviceID int64) netip.Addr {
	b := [16]byte{0: 0x01}
	for i := 0; i < 8; i++ {
		b[15-i] = byte(deviceID >> (8 * i))
	}
	return netip.AddrFrom16(b)
}
