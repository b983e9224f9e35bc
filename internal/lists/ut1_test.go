package lists_test

import (
	"archive/tar"
	"bytes"
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/warden-schools/warden/internal/lists"
	"github.com/warden-schools/warden/internal/lists/liststest"
)

// ut1Summary renders a UT1 result as category -> "domains | urls".
func ut1Summary(cats []lists.SourceCategory) map[string]string {
	out := map[string]string{}
	for _, sc := range cats {
		out[sc.Name] = strings.Join(sc.Collector.Domains, " ") + " | " + strings.Join(urlStrings(sc.Collector.URLs), " ")
	}
	return out
}

func ut1Names(cats []lists.SourceCategory) []string {
	var out []string
	for _, sc := range cats {
		out = append(out, sc.Name)
	}
	return out
}

func checkUT1Set(t *testing.T, cats []lists.SourceCategory, want map[string]string) {
	t.Helper()
	got := ut1Summary(cats)
	if !slices.IsSorted(ut1Names(cats)) {
		t.Errorf("categories not sorted: %v", ut1Names(cats))
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s = %q\n want %q", name, got[name], w)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("unexpected category %s = %q", name, got[name])
		}
	}
}

// The same UT1 set, as a folder and as archives.
var ut1Want = map[string]string{
	"adult":           "a.example b.example d.example | c.example/x",
	"gambling":        "bet.example casino.example | example.com/poker",
	"games":           "play.example | games.example/flash",
	"social_networks": "social.example | ",
}

func TestReadUT1Folder(t *testing.T) {
	fsys := fstest.MapFS{
		"blacklists/README":                  {Data: []byte("UT1 blacklists\n")},
		"blacklists/global_usage":            {Data: []byte("NAME: adult\n")},
		"blacklists/gambling/domains":        {Data: []byte("bet.example\ncasino.example\n")},
		"blacklists/gambling/urls":           {Data: []byte("example.com/poker\n")},
		"blacklists/gambling/usage":          {Data: []byte("black\n")},
		"blacklists/adult/domains.0":         {Data: []byte("a.example\n")},
		"blacklists/adult/domains.1.gz":      {Data: gzipBytes(t, "b.example\n")},
		"blacklists/adult/domains.x":         {Data: []byte("notread.example\n")},
		"blacklists/adult/urls":              {Data: []byte("c.example/x\nd.example/\n")},
		"blacklists/adult/expressions":       {Data: []byte("(porn|sex)\n")},
		"blacklists/adult/usage":             {Data: []byte("black\nadult\nporn\n")},
		"blacklists/games/domains.gz":        {Data: gzipBytes(t, "play.example\n")},
		"blacklists/games/urls":              {Data: []byte("games.example/flash\n")},
		"blacklists/social_networks/domains": {Data: []byte("social.example\n")},
		// UT1 aliases are symbolic links: never read twice.
		"blacklists/porn":          {Data: []byte("adult"), Mode: fs.ModeSymlink},
		"blacklists/drugs/domains": {Data: []byte("../gambling/domains"), Mode: fs.ModeSymlink},
	}
	cats, err := lists.ReadUT1(fsys, "ut1")
	if err != nil {
		t.Fatal(err)
	}
	checkUT1Set(t, cats, ut1Want)
	for _, sc := range cats {
		if r := sc.Collector.Report; r.Malformed != 0 {
			t.Errorf("%s: %s", sc.Name, r.Summary())
		}
	}
}

func TestReadUT1Problems(t *testing.T) {
	fsys := fstest.MapFS{
		"gambling/domains": {Data: []byte("bet.example\nbad..example\n")},
		"gambling/urls":    {Data: []byte("x.example/%zz\n")},
	}
	cats, err := lists.ReadUT1(fsys, "ut1")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`ut1/gambling/domains:2: not a valid host name: "bad..example" has an empty label`,
		`ut1/gambling/urls:1: not a valid URL: bad percent-escape at "%zz"`,
	}
	if got := problemStrings(cats[0].Collector.Report); !slices.Equal(got, want) {
		t.Errorf("problems = %q\nwant %q", got, want)
	}
}

func TestReadUT1Empty(t *testing.T) {
	for name, fsys := range map[string]fstest.MapFS{
		"empty":       {},
		"no entries":  {"adult/usage": {Data: []byte("black\n")}, "README": {Data: []byte("x")}},
		"root domain": {"domains": {Data: []byte("a.example\n")}},
	} {
		t.Run(name, func(t *testing.T) {
			if cats, err := lists.ReadUT1(fsys, "ut1"); err == nil {
				t.Errorf("ReadUT1 = %v, want an error", ut1Names(cats))
			}
		})
	}
}

// TestReadUT1Sample reads the committed fixture of real UT1 entries.
func TestReadUT1Sample(t *testing.T) {
	dir := "testdata/ut1-sample"
	cats, err := lists.ReadUT1(os.DirFS(dir), dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ut1Names(cats), []string{"adult", "gambling", "games", "social_networks"}; !slices.Equal(got, want) {
		t.Fatalf("categories = %v, want %v", got, want)
	}
	tax := lists.DefaultTaxonomy()
	var ls []*lists.List
	for _, sc := range cats {
		if r := sc.Collector.Report; r.Malformed != 0 || r.Lines != sc.Collector.Entries() {
			t.Errorf("%s: %d lines, %d entries: %s", sc.Name, r.Lines, sc.Collector.Entries(), r.Summary())
		}
		mapped, ok := tax.Map("ut1", sc.Name)
		if !ok {
			t.Errorf("no mapping for UT1 %s", sc.Name)
		}
		ls = append(ls, &lists.List{
			Info:    lists.Info{ID: "ut1/" + sc.Name, Source: "ut1", SourceCategory: sc.Name, Categories: mapped},
			Domains: sc.Collector.Domains, URLs: sc.Collector.URLs,
		})
	}
	m, err := lists.Compile(ls)
	if err != nil {
		t.Fatal(err)
	}
	hosts := map[string]string{
		"www.facebook.com":          "ut1/social_networks",
		"0-casino.info":             "ut1/gambling",
		"159.153.253.16":            "ut1/gambling",
		"cdn.007arcadegames.com":    "ut1/games",
		"xn--80a0aejb8dva.com":      "ut1/games",
		"cri.univ-tlse1.fr":         "",
		"notfacebook.com":           "",
		"159.153.253.17":            "",
		"itch.io":                   "",
		"online-casino.com":         "",
		"epicurious.com":            "",
		"www.000-online-casino.com": "ut1/gambling",
	}
	for host, want := range hosts {
		var ms lists.Matches
		m.MatchHost(host, &ms)
		got := ""
		if ms.N > 0 {
			got = m.Info(ms.M[0].List).ID
		}
		if got != want || ms.N > 1 {
			t.Errorf("MatchHost(%s) = %v, want %q", host, matchIDs(m, &ms), want)
		}
	}
	urls := map[string]string{
		"https://1512h.itch.io/life-in-teyvat":                           "ut1/adult",
		"http://178.128.25.172/watch?v=1":                                "ut1/adult",
		"http://cri.univ-tlse1.fr/tools/test_filtrage/games/index.html":  "ut1/games",
		"http://cri.univ-tlse1.fr/tools/test_filtrage/gambling/":         "ut1/gambling",
		"http://www.epicurious.com/community/recipes":                    "ut1/social_networks",
		"http://cri.univ-tlse1.fr/tools/test_filtrage/social_networks/":  "",
		"http://epicurious.com/recipes":                                  "",
		"http://itch.io/life-in-teyvat":                                  "",
		"https://instagram.com/anything":                                 "ut1/social_networks",
		"http://208.80.53.49/jeux/tetris":                                "ut1/games",
		"http://1.208.80.53.49/jeux/":                                    "", // not a valid host: rejected below
		"http://astrolabio.net/casino/roulette?x=1":                      "ut1/gambling",
		"http://astrolabio.net/casinos":                                  "",
		"http://a95i.com/en/main.php?lang=en":                            "ut1/adult",
		"http://cri.univ-tlse1.fr/tools/test_filtrage/adult/":            "",
		"https://www.6austria.com:443/main_page":                         "ut1/adult",
		"https://www.6austria.com:8443/main_page":                        "",
		"http://1001cocktails.com/javanoid/play":                         "ut1/games",
		"http://1001cocktails.com/":                                      "",
		"http://10tune.com/":                                             "ut1/social_networks",
		"http://tiktok.com/@someone":                                     "ut1/social_networks",
		"http://games.example/":                                          "",
		"http://cri.univ-tlse1.fr/tools/test_filtrage/gambling/more/x/y": "ut1/gambling",
	}
	for raw, want := range urls {
		k, err := lists.NormalizeURL(raw)
		if err != nil {
			if want != "" {
				t.Errorf("NormalizeURL(%s): %v", raw, err)
			}
			continue
		}
		var ms lists.Matches
		m.MatchURL(k, &ms)
		got := ""
		if ms.N > 0 {
			got = m.Info(ms.M[0].List).ID
		}
		if got != want || ms.N > 1 {
			t.Errorf("MatchURL(%s) = %v, want %q", raw, matchIDs(m, &ms), want)
		}
	}
}

func TestReadUT1Tar(t *testing.T) {
	entries := []liststest.TarEntry{
		{Name: "blacklists/", Type: tar.TypeDir},
		{Name: "blacklists/global_usage", Type: tar.TypeReg, Body: []byte("NAME: adult\n")},
		{Name: "blacklists/gambling/", Type: tar.TypeDir},
		{Name: "blacklists/gambling/domains", Type: tar.TypeReg, Body: []byte("bet.example\ncasino.example\n")},
		{Name: "blacklists/gambling/urls", Type: tar.TypeReg, Body: []byte("example.com/poker\n")},
		{Name: "blacklists/gambling/usage", Type: tar.TypeReg, Body: []byte("black\n")},
		{Name: "blacklists/adult/", Type: tar.TypeDir},
		{Name: "blacklists/adult/domains.0", Type: tar.TypeReg, Body: []byte("a.example\n")},
		{Name: "blacklists/adult/domains.1.gz", Type: tar.TypeReg, Body: gzipBytes(t, "b.example\n")},
		{Name: "blacklists/adult/urls", Type: tar.TypeReg, Body: []byte("c.example/x\nd.example/\n")},
		{Name: "blacklists/adult/expressions", Type: tar.TypeReg, Body: []byte("(porn)\n")},
		{Name: "./blacklists/games/domains.gz", Type: tar.TypeReg, Body: gzipBytes(t, "play.example\n")},
		{Name: "./blacklists/games/urls", Type: tar.TypeReg, Body: []byte("games.example/flash\n")},
		{Name: "blacklists/social_networks/domains", Type: tar.TypeReg, Body: []byte("social.example\n")},
		// Aliases: a symbolic link to a folder and one to a file, and a
		// hard link; none is read.
		{Name: "blacklists/porn", Type: tar.TypeSymlink, Link: "adult"},
		{Name: "blacklists/drugs/domains", Type: tar.TypeSymlink, Link: "../gambling/domains"},
		{Name: "blacklists/violence/domains", Type: tar.TypeLink, Link: "blacklists/gambling/domains"},
		{Name: "domains", Type: tar.TypeReg, Body: []byte("toplevel.example\n")},
	}
	for _, compress := range []bool{true, false} {
		name := "tar"
		if compress {
			name = "tar.gz"
		}
		t.Run(name, func(t *testing.T) {
			cats, err := lists.ReadUT1Tar(bytes.NewReader(liststest.Tar(t, entries, compress)), "blacklists."+name)
			if err != nil {
				t.Fatal(err)
			}
			checkUT1Set(t, cats, ut1Want)
		})
	}
}

func TestReadUT1TarProblems(t *testing.T) {
	data := liststest.Tar(t, []liststest.TarEntry{
		{Name: "blacklists/gambling/domains", Type: tar.TypeReg, Body: []byte("ok.example\nbad..example\n")},
	}, true)
	cats, err := lists.ReadUT1Tar(bytes.NewReader(data), "ut1.tar.gz")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`ut1.tar.gz:blacklists/gambling/domains:2: not a valid host name: "bad..example" has an empty label`}
	if got := problemStrings(cats[0].Collector.Report); !slices.Equal(got, want) {
		t.Errorf("problems = %q, want %q", got, want)
	}
}

func TestReadUT1TarErrors(t *testing.T) {
	good := liststest.Tar(t, []liststest.TarEntry{{Name: "a/domains", Type: tar.TypeReg, Body: []byte("a.example\n")}}, true)
	tests := map[string][]byte{
		"empty archive":   liststest.Tar(t, nil, true),
		"only folders":    liststest.Tar(t, []liststest.TarEntry{{Name: "a/", Type: tar.TypeDir}}, false),
		"truncated":       good[:len(good)/2],
		"bad gzip header": {0x1f, 0x8b, 1, 2, 3},
		"not a tar":       []byte("this is not an archive at all, just some text that is long enough" + strings.Repeat(".", 600)),
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			if cats, err := lists.ReadUT1Tar(bytes.NewReader(data), "x.tar.gz"); err == nil {
				t.Errorf("ReadUT1Tar = %v, want an error", ut1Names(cats))
			}
		})
	}
}
