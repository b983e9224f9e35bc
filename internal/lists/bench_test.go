package lists_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/warden-schools/warden/internal/lists"
	"github.com/warden-schools/warden/internal/lists/liststest"
)

// sharedUT1 returns the UT1 folder of the shared data set, or skips.
func sharedUT1(b *testing.B) string {
	dir := filepath.Join(liststest.SharedData(), "categories", "ut1")
	if _, err := os.Stat(dir); err != nil {
		b.Skipf("shared UT1 data not present at %s", dir)
	}
	return dir
}

// toLists maps UT1 source categories to lists as an import does.
func toLists(b *testing.B, cats []lists.SourceCategory) []*lists.List {
	tax := lists.DefaultTaxonomy()
	var out []*lists.List
	for _, sc := range cats {
		mapped, ok := tax.Map("ut1", sc.Name)
		if !ok {
			b.Fatalf("UT1 category %s has no mapping", sc.Name)
		}
		out = append(out, &lists.List{
			Info:    lists.Info{ID: "ut1/" + sc.Name, Source: "ut1", SourceCategory: sc.Name, Categories: mapped},
			Domains: sc.Collector.Domains, URLs: sc.Collector.URLs,
		})
	}
	return out
}

// heapInUse returns live heap bytes after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func reportMatcher(b *testing.B, m *lists.Matcher, before uint64) {
	after := heapInUse()
	n := m.Domains()
	b.ReportMetric(float64(n), "domains")
	b.ReportMetric(float64(m.Bytes())/float64(n), "index-B/domain")
	b.ReportMetric(float64(int64(after)-int64(before))/float64(n), "heap-B/domain")
	runtime.KeepAlive(m)
}

// BenchmarkLoadUT1 reads the whole UT1 set from ../shared/data (about 0.7
// million domains, no adult domains) and compiles it into a Matcher.
func BenchmarkLoadUT1(b *testing.B) {
	dir := sharedUT1(b)
	b.ReportAllocs()
	var ls []*lists.List
	for b.Loop() {
		cats, err := lists.ReadUT1(os.DirFS(dir), dir)
		if err != nil {
			b.Fatal(err)
		}
		ls = toLists(b, cats)
		if _, err = lists.Compile(ls); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	ls = nil
	before := heapInUse()
	cats, _ := lists.ReadUT1(os.DirFS(dir), dir)
	ls = toLists(b, cats)
	m, _ := lists.Compile(ls)
	ls, cats = nil, nil
	reportMatcher(b, m, before)
}

// BenchmarkLoad1M parses a plain file of 1,000,000 generated domains and
// compiles it.
func BenchmarkLoad1M(b *testing.B) {
	path := filepath.Join(b.TempDir(), "domains")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	liststest.GenerateDomains(1_000_000, 1, func(d string) {
		fmt.Fprintln(w, d)
	})
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	load := func() *lists.Matcher {
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		c := &lists.Collector{}
		if err := c.Parse(f, path, lists.FormatPlain); err != nil {
			b.Fatal(err)
		}
		m, err := lists.Compile([]*lists.List{{Info: lists.Info{ID: "gen", Categories: []string{"gambling"}}, Domains: c.Domains}})
		if err != nil {
			b.Fatal(err)
		}
		return m
	}
	b.ReportAllocs()
	for b.Loop() {
		load()
	}
	b.StopTimer()
	before := heapInUse()
	m := load()
	reportMatcher(b, m, before)
}
