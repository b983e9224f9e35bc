// Command gendomains prepares the data of the DNS benchmark (bench/dns.sh):
// a generated plain list that tops Warden's blocklist up to a given number
// of distinct domains, and a dnsperf query file of distinct names, half of
// them listed (blocked for the benchmark's client) and half in no list.
//
// Everything is deterministic for a given seed: the generated names come
// from liststest.GenerateDomains, and sampling and shuffling use a fixed
// pseudo-random sequence, so two runs of the benchmark query the same
// names in the same order.
//
// Usage:
//
//	gendomains -existing all.txt -blocked blocked.txt -allowed allowed.txt \
//	    -topsites tranco_top_100k.csv.gz -total 1000000 -queries 100000 -out DIR
//
// The input files hold one entry per line, as `warden lists show ID`
// prints them (URL entries, which contain a slash, are ignored):
// -existing every entry Warden holds, -blocked the entries of the lists
// the client is blocked from, -allowed those of the lists it is allowed
// (names covered by these are never used as "listed" queries). It writes
// into DIR:
//
//	generated.txt  the new names, one a line (import as a plain list)
//	queries.txt    the dnsperf input, "NAME A" a line, shuffled
//	expect.txt     the first 2,000 query names with "blocked" or "allowed"
//	probe.txt      one blocked name, for timing the first blocked answer
package main

import (
	"bufio"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/warden-schools/warden/internal/lists/liststest"
)

// prefixes are put in front of some listed names, so that the benchmark
// also exercises matching by parent domain.
var prefixes = []string{"www.", "m.", "cdn.", "api.", "mail.", "static.", "login.", "img."}

// expectSample is how many query names expect.txt describes.
const expectSample = 2000

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "gendomains:", err)
		os.Exit(1)
	}
}

// set is a set of host names.
type set map[string]struct{}

func (s set) has(n string) bool { _, ok := s[n]; return ok }

// covers reports whether name or one of its parent domains is in s.
func (s set) covers(name string) bool {
	for {
		if s.has(name) {
			return true
		}
		i := strings.IndexByte(name, '.')
		if i < 0 {
			return false
		}
		name = name[i+1:]
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("gendomains", flag.ContinueOnError)
	existingPath := fs.String("existing", "", "file of every entry Warden already holds")
	blockedPath := fs.String("blocked", "", "file of the entries of the lists blocked for the client")
	allowedPath := fs.String("allowed", "", "file of the entries of the lists allowed for the client")
	topPath := fs.String("topsites", "", "top sites file (one domain a line, .gz allowed); optional")
	total := fs.Int("total", 1_000_000, "distinct domains wanted in total (existing plus generated)")
	nQueries := fs.Int("queries", 100_000, "distinct names in the query file")
	seed := fs.Uint64("seed", 1, "seed of the generated names, the sampling and the shuffle")
	outDir := fs.String("out", "", "folder to write generated.txt, queries.txt, expect.txt and probe.txt into")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *outDir == "" || fs.NArg() > 0 {
		return errors.New("give -out DIR and no other arguments (see the package comment)")
	}
	if *nQueries < 2 || *total < 1 {
		return errors.New("-queries must be at least 2 and -total at least 1")
	}

	existing, _, err := readSet(*existingPath)
	if err != nil {
		return err
	}
	blocked, blockedOrder, err := readSet(*blockedPath)
	if err != nil {
		return err
	}
	allowed, _, err := readSet(*allowedPath)
	if err != nil {
		return err
	}
	for n := range blocked {
		existing[n] = struct{}{}
	}

	// Top the blocklist up to the total with generated names.
	need := max(*total-len(existing), 0)
	// GenerateDomains' names are distinct in practice but not by
	// construction (a base-36 counter after a syllable can spell what
	// another syllable and counter spell: "ne"+"t5" and "net"+"5"), and
	// may be in the lists already, so each is checked against everything
	// taken so far.
	generated := make([]string, 0, need)
	liststest.GenerateDomains(need+need/8+1000, *seed, func(n string) {
		if len(generated) < need && !existing.has(n) {
			existing[n] = struct{}{}
			generated = append(generated, n)
		}
	})
	if len(generated) < need {
		return fmt.Errorf("could generate only %d of %d new names", len(generated), need)
	}
	all := existing // from here on: every listed name, generated ones too

	r := rand.New(rand.NewPCG(*seed, *seed^0x5bd1e995))
	used := set{}
	nListed := *nQueries / 2
	nUnlisted := *nQueries - nListed

	// Listed: sampled from the blocked lists (host names only) and the
	// generated list, a quarter of them under a subdomain.
	pool := make([]string, 0, len(blockedOrder)+len(generated))
	for _, n := range blockedOrder {
		if !isIP(n) {
			pool = append(pool, n)
		}
	}
	fromLists := len(pool)
	pool = append(pool, generated...)
	var listed []string
	var listedFromLists, prefixed int
	for _, i := range r.Perm(len(pool)) {
		if len(listed) == nListed {
			break
		}
		n := pool[i]
		withPrefix := r.IntN(4) == 0
		if withPrefix {
			n = prefixes[r.IntN(len(prefixes))] + n
		}
		if allowed.covers(n) || used.has(n) || len(n) > 253 {
			continue
		}
		used[n] = struct{}{}
		listed = append(listed, n)
		if i < fromLists {
			listedFromLists++
		}
		if withPrefix {
			prefixed++
		}
	}
	if len(listed) < nListed {
		return fmt.Errorf("only %d listed names to sample from, %d wanted", len(listed), nListed)
	}

	// Not listed: up to half from the top sites that no list covers, the
	// rest generated with another seed and checked against every list.
	var unlisted []string
	var fromTop int
	if *topPath != "" {
		top, err := readLines(*topPath)
		if err != nil {
			return err
		}
		for _, i := range r.Perm(len(top)) {
			if len(unlisted) == nUnlisted/2 {
				break
			}
			n := top[i]
			if all.covers(n) || allowed.covers(n) || used.has(n) || isIP(n) {
				continue
			}
			used[n] = struct{}{}
			unlisted = append(unlisted, n)
		}
		fromTop = len(unlisted)
	}
	more := nUnlisted - len(unlisted)
	liststest.GenerateDomains(2*more+1000, *seed+1, func(n string) {
		if len(unlisted) == nUnlisted {
			return
		}
		if r.IntN(8) == 0 {
			n = "www." + n
		}
		if all.covers(n) || allowed.covers(n) || used.has(n) {
			return
		}
		used[n] = struct{}{}
		unlisted = append(unlisted, n)
	})
	if len(unlisted) < nUnlisted {
		return fmt.Errorf("could find only %d unlisted names, %d wanted", len(unlisted), nUnlisted)
	}

	type query struct {
		name    string
		blocked bool
	}
	queries := make([]query, 0, *nQueries)
	for _, n := range listed {
		queries = append(queries, query{n, true})
	}
	for _, n := range unlisted {
		queries = append(queries, query{n, false})
	}
	r.Shuffle(len(queries), func(i, j int) { queries[i], queries[j] = queries[j], queries[i] })

	if err := os.MkdirAll(*outDir, 0o755); err != nil {
		return err
	}
	if err := writeLines(filepath.Join(*outDir, "generated.txt"), len(generated), func(i int) string { return generated[i] }); err != nil {
		return err
	}
	if err := writeLines(filepath.Join(*outDir, "queries.txt"), len(queries), func(i int) string { return queries[i].name + " A" }); err != nil {
		return err
	}
	if err := writeLines(filepath.Join(*outDir, "expect.txt"), min(expectSample, len(queries)), func(i int) string {
		if queries[i].blocked {
			return queries[i].name + " blocked"
		}
		return queries[i].name + " allowed"
	}); err != nil {
		return err
	}
	// The probe is a listed name from the lists themselves when there is one.
	probe := listed[0]
	for _, n := range listed {
		if blocked.has(n) {
			probe = n
			break
		}
	}
	if err := writeLines(filepath.Join(*outDir, "probe.txt"), 1, func(int) string { return probe }); err != nil {
		return err
	}

	fmt.Fprintf(out, "blocklist: %d entries already held + %d generated = %d distinct\n", len(all)-len(generated), len(generated), len(all))
	fmt.Fprintf(out, "queries: %d distinct names, shuffled (seed %d)\n", len(queries), *seed)
	fmt.Fprintf(out, "  listed:     %d (%d from the blocked lists, %d from the generated list; %d under a subdomain prefix)\n",
		len(listed), listedFromLists, len(listed)-listedFromLists, prefixed)
	fmt.Fprintf(out, "  not listed: %d (%d top sites in no list, %d generated names in no list)\n", len(unlisted), fromTop, len(unlisted)-fromTop)
	return nil
}

// isIP reports whether an entry is an IP address rather than a host name.
func isIP(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

// readSet reads a file of entries into a set and a slice in file order
// (first occurrence); an empty path gives an empty set.
func readSet(path string) (set, []string, error) {
	s := set{}
	if path == "" {
		return s, nil, nil
	}
	lines, err := readLines(path)
	if err != nil {
		return nil, nil, err
	}
	order := make([]string, 0, len(lines))
	for _, n := range lines {
		if s.has(n) {
			continue
		}
		s[n] = struct{}{}
		order = append(order, n)
	}
	return s, order, nil
}

// readLines reads the host names of a plain or gzip-compressed file, one
// a line, lower-cased and trimmed; blank lines, comments and URL entries
// (with a slash) are skipped.
func readLines(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var rd io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		gz, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		defer gz.Close()
		rd = gz
	}
	var lines []string
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		l := strings.ToLower(strings.TrimSpace(sc.Text()))
		if l == "" || l[0] == '#' || strings.Contains(l, "/") {
			continue // blank, comment or URL entry
		}
		// A CSV top-sites file may carry "rank,domain".
		if i := strings.LastIndexByte(l, ','); i >= 0 {
			l = l[i+1:]
		}
		lines = append(lines, strings.TrimSuffix(l, "."))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return lines, nil
}

// writeLines writes n lines, line(i) each, to path.
func writeLines(path string, n int, line func(int) string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for i := 0; i < n; i++ {
		w.WriteString(line(i))
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
