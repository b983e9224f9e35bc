// Package lists turns category list files into compact matchers. It reads
// squidGuard/UT1 sets (folders or archives of CATEGORY/domains and
// CATEGORY/urls), hosts files, plain domain and URL lists, Adblock-style
// "||domain^" rules and SHA-256 hash lists; normalises every entry (host
// names lower-cased and IDNA-encoded, URLs to a scheme-less canonical
// key); maps source categories onto Warden's taxonomy (the UK Safer
// Internet Centre's categories plus those schools also manage); and
// compiles the lists in force into a Matcher whose domain index costs
// about 14 bytes per name beyond the name itself.
//
// A domain entry covers every subdomain; a URL entry matches URLs that
// start with it; IP entries match only themselves. The package is pure:
// it reads from io.Reader and fs.FS values it is given and does no other
// I/O. Persistence lives in listsync.
package lists
