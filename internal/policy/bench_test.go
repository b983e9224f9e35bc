package policy

import (
	"bufio"
	"compress/gzip"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warden-schools/warden/internal/lists"
	"github.com/warden-schools/warden/internal/lists/liststest"
)

// benchLists loads the shared UT1 set and adds generated names up to
// total domains, or skips when the shared data is absent.
func benchLists(b *testing.B, total int) ([]*lists.List, []string) {
	b.Helper()
	dir := filepath.Join(liststest.SharedData(), "categories", "ut1")
	if _, err := os.Stat(dir); err != nil {
		b.Skipf("shared UT1 data not present at %s", dir)
	}
	cats, err := lists.ReadUT1(os.DirFS(dir), dir)
	if err != nil {
		b.Fatal(err)
	}
	tax := lists.DefaultTaxonomy()
	var ls []*lists.List
	var listed []string
	distinct := map[string]struct{}{}
	for _, sc := range cats {
		mapped, ok := tax.Map("ut1", sc.Name)
		if !ok {
			b.Fatalf("no mapping for UT1 %s", sc.Name)
		}
		ls = append(ls, &lists.List{Info: lists.Info{ID: "ut1/" + sc.Name, Source: "ut1", SourceCategory: sc.Name, Categories: mapped},
			Domains: sc.Collector.Domains, URLs: sc.Collector.URLs})
		for _, d := range sc.Collector.Domains {
			distinct[d] = struct{}{}
		}
		for i, d := range sc.Collector.Domains {
			if i%50 == 0 {
				listed = append(listed, d)
			}
		}
	}
	if extra := total - len(distinct); extra > 0 {
		gen := make([]string, 0, extra)
		liststest.GenerateDomains(extra, 7, func(d string) { gen = append(gen, d) })
		ls = append(ls, &lists.List{Info: lists.Info{ID: "generated", Source: "generated", Categories: []string{"malware-hacking"}}, Domains: gen})
		for i := 0; i < len(gen); i += 500 {
			listed = append(listed, gen[i])
		}
	}
	ls = append(ls, &lists.List{Info: lists.Info{ID: "local/education", Source: "local", SourceCategory: "education", Categories: []string{"education"}},
		Domains: []string{"ttrockstars.com", "phonicsplay.co.uk", "bbc.co.uk", "teams.microsoft.com", "nspcc.org.uk"}})
	return ls, listed
}

// topSites returns up to n hosts from the shared Tranco top sites.
func topSites(b *testing.B, n int) []string {
	f, err := os.Open(filepath.Join(liststest.SharedData(), "topsites", "tranco_top_100k.csv.gz"))
	if err != nil {
		b.Skipf("shared top sites not present: %v", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		b.Fatal(err)
	}
	var out []string
	sc := bufio.NewScanner(zr)
	for sc.Scan() && len(out) < n {
		if h := strings.TrimSpace(sc.Text()); h != "" {
			out = append(out, h)
		}
	}
	return out
}

// queryStream mixes popular sites (mostly unlisted, some with "www.") with
// listed names under a subdomain, half and half.
func queryStream(top, listed []string) []string {
	var q []string
	for i := 0; i < 100_000; i++ {
		if i%2 == 0 {
			h := top[(i/2)%len(top)]
			if i%6 == 0 {
				h = "www." + h
			}
			q = append(q, h)
		} else {
			h := listed[(i*7919)%len(listed)]
			if i%3 == 0 && !lists.IsIP(h) {
				h = "cdn." + h
			}
			q = append(q, h)
		}
	}
	return q
}

func benchSnapshot(b *testing.B, ls []*lists.List) *Snapshot {
	m, err := lists.Compile(ls)
	if err != nil {
		b.Fatal(err)
	}
	loc, _ := time.LoadLocation("Europe/London")
	weekdays, _ := ParseDays("mon-fri")
	s, err := Compile(Config{
		Version: 1, Location: loc, Taxonomy: lists.DefaultTaxonomy(), Lists: m,
		Groups: []Group{
			{ID: "key-stage-2", Mode: ModeFilter, DefaultAction: Allow, SafeSearch: SafeSearchStrict, EducationFirst: true,
				Exceptions: []Exception{{Action: Allow, Pattern: "scratch.mit.edu"}, {Action: Block, Pattern: "example.net"}}},
			{ID: "staff", Mode: ModeFilter, DefaultAction: Allow, Categories: map[string]Action{"social-media": Block, "games": Allow},
				Rules: []Rule{{ID: 1, Name: "lunch", Action: Allow, Categories: []string{"social-media"},
					Schedule: Schedule{Days: weekdays, Start: 720, End: 795}, Zones: []string{"staff-room"}}}},
		},
		Zones: []Zone{{ID: "staff-room", Networks: []netip.Prefix{netip.MustParsePrefix("10.20.0.0/24")}}},
	})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// mapBaselineNs times the reference: a plain Go map from domain to list
// number, walked over the host's suffixes, with no policy at all. It
// returns the median ns per lookup of five runs over the query stream.
func mapBaselineNs(ls []*lists.List, queries []string) float64 {
	m := map[string]uint16{}
	for i, l := range ls {
		for _, d := range l.Domains {
			m[d] = uint16(i)
		}
	}
	const rounds = 20
	var runs []float64
	hits := 0
	for r := 0; r < 5; r++ {
		start := time.Now()
		for k := 0; k < rounds; k++ {
			for _, h := range queries {
				for s := h; ; {
					if _, ok := m[s]; ok {
						hits++
						break
					}
					j := strings.IndexByte(s, '.')
					if j < 0 {
						break
					}
					s = s[j+1:]
				}
			}
		}
		runs = append(runs, float64(time.Since(start).Nanoseconds())/float64(rounds*len(queries)))
	}
	slices.Sort(runs)
	_ = hits
	return runs[len(runs)/2]
}

func benchDecide(b *testing.B, total int) {
	ls, listed := benchLists(b, total)
	queries := queryStream(topSites(b, 100_000), listed)
	snap := benchSnapshot(b, ls)
	base := mapBaselineNs(ls, queries)
	now := time.Date(2026, 3, 4, 12, 30, 0, 0, time.UTC)
	client := netip.MustParseAddr("10.20.0.7")
	groups := []string{"key-stage-2", "staff"}
	blocked := 0
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		d := snap.Decide(Request{Host: queries[i%len(queries)], Group: groups[i&1], ClientIP: client, Time: now})
		if d.Action == Block {
			blocked++
		}
		i++
	}
	b.StopTimer()
	perOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(float64(snap.Lists().Domains()), "domains")
	b.ReportMetric(base, "map-ns/op")
	b.ReportMetric(perOp/base, "ratio-to-map")
	b.ReportMetric(float64(blocked)/float64(b.N), "blocked-share")
}

// BenchmarkDecide measures one host decision with the whole UT1 set
// loaded (UT1) and with generated names up to 5 million domains (5M),
// against a plain Go map of the same domains measured in the same run.
func BenchmarkDecide(b *testing.B) {
	b.Run("UT1", func(b *testing.B) { benchDecide(b, 0) })
	b.Run("5M", func(b *testing.B) { benchDecide(b, 5_000_000) })
}
