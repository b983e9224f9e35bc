// Package inspect is Warden's optional TLS inspection: a school root CA
// (InitCA, LoadCA) that mints short-lived certificates for the hosts it
// intercepts, and an Inspector that the proxy hands allowed CONNECT
// tunnels to.
//
// For each intercepted tunnel the Inspector completes TLS with the client
// using a certificate for the client's SNI name (HTTP/2 or HTTP/1.1 by
// ALPN), and decides every request inside by its full URL, so URL lists
// (the IWF's among them) apply under allowed hosts. Blocked requests get
// the block page; allowed ones have safe search enforced (Google
// safe=active, Bing adlt=strict, DuckDuckGo kp=1, the YouTube-Restrict
// header), their search terms captured into events, and are forwarded
// over pooled connections whose certificates are verified against the
// system roots. A certificate that does not verify is never passed over:
// the client gets the block page saying why.
//
// Some hosts are never inspected: a built-in list of services that pin
// their certificates or break under inspection (DefaultBypassHosts), the
// school's own additions, and sites in bypass categories such as banking
// (DefaultBypassCategories).
//
// The package does not import the proxy: Inspector has the method set of
// the proxy's Inspector interface, and the server wires the two.
package inspect
