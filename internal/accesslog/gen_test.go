package accesslog

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/warden-schools/warden/internal/events"
)

// traffic makes a school's DNS traffic, deterministically from its seed:
// people online in lessons (a different 30% each hour) on school or
// their own devices, a tenth of queries from devices nobody signed in to,
// hosts drawn from a Zipf distribution over a long tail, 15% blocked, a
// rare host now and then.
type traffic struct {
	r        *rand.Rand
	zipf     *rand.Zipf
	hosts    []string
	people   int
	devices  int
	groups   []string
	addrs    []netip.Addr // by device
	personIP []netip.Addr // by person, for their own devices
	active   []int64
	deviceOf []int64 // by person, this lesson
	lesson   time.Time
	now      time.Time
	rate     int     // events a second
	rare     float64 // chance of the rare host
	policy   int64
}

// rareHost is the host the benchmarks and tests search for.
const rareHost = "rare-term-search.example"

func newTraffic(seed uint64, people, devices, hosts int) *traffic {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	t := &traffic{r: r, people: people, devices: devices, rate: 1000, policy: 42,
		groups: []string{"staff", "key-stage-3", "key-stage-4", "sixth-form", "visitors"},
		now:    time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)}
	popular := []string{"www.google.com", "clients4.google.com", "outlook.office365.com", "teams.microsoft.com",
		"login.microsoftonline.com", "www.bbc.co.uk", "www.youtube.com", "i.ytimg.com", "classroom.google.com",
		"www.wikipedia.org", "fonts.gstatic.com", "api.tiktok.com", "edge.microsoft.com", "www.instagram.com"}
	words := []string{"cdn", "static", "api", "img", "www", "assets", "media", "ads", "telemetry", "login"}
	sites := []string{"example-video", "homework-help", "news-daily", "gamehub", "shopping-mall", "sportscores",
		"maths-online", "science-lab", "music-stream", "chat-now", "Weather-Now", "photos-share"}
	tlds := []string{"com", "co.uk", "net", "org", "io", "sch.uk"}
	t.hosts = append(t.hosts, popular...)
	for i := len(popular); i < hosts; i++ {
		t.hosts = append(t.hosts, fmt.Sprintf("%s%d.%s.%s", words[i%len(words)], i, sites[(i/7)%len(sites)], tlds[i%len(tlds)]))
	}
	t.zipf = rand.NewZipf(r, 1.05, 4, uint64(hosts-1))
	for d := 0; d <= devices; d++ {
		t.addrs = append(t.addrs, netip.AddrFrom4([4]byte{10, 30, byte(d / 250), byte(d%250 + 1)}))
	}
	for p := 0; p <= people; p++ {
		if p%20 == 0 {
			t.personIP = append(t.personIP, netip.MustParseAddr(fmt.Sprintf("2001:db8:40::%x", p+1)))
		} else {
			t.personIP = append(t.personIP, netip.AddrFrom4([4]byte{10, 40, byte(p / 250), byte(p%250 + 1)}))
		}
	}
	t.deviceOf = make([]int64, people+1)
	return t
}

// startLesson picks who is online for the next hour and on which device.
func (t *traffic) startLesson() {
	t.lesson = t.now.Add(time.Hour)
	t.active = t.active[:0]
	for p := 1; p <= t.people; p++ {
		if t.r.IntN(10) < 3 {
			t.active = append(t.active, int64(p))
			t.deviceOf[p] = 0 // their own device, known by their sign-in
			if t.r.IntN(10) < 7 {
				t.deviceOf[p] = int64(1 + t.r.IntN(t.devices))
			}
		}
	}
}

// batch returns the events of the next flush (250 ms at the current rate).
func (t *traffic) batch(dst []events.Event) []events.Event {
	n := t.rate/8 + t.r.IntN(t.rate/4+1)
	return t.events(dst, n, 250*time.Millisecond)
}

// events appends n events spread over span.
func (t *traffic) events(dst []events.Event, n int, span time.Duration) []events.Event {
	step := span / time.Duration(max(n, 1))
	for range n {
		if !t.now.Before(t.lesson) {
			t.startLesson()
		}
		t.now = t.now.Add(step)
		dst = append(dst, t.event())
	}
	return dst
}

func (t *traffic) event() events.Event {
	r := t.r
	e := events.Event{Time: t.now, Source: "dns", QType: "A", Action: "allow", Rule: "default", PolicyVersion: t.policy,
		Status: "NOERROR", Upstream: "cache", Latency: time.Duration(20+r.IntN(200)) * time.Microsecond}
	if r.IntN(10) == 0 || len(t.active) == 0 { // a device nobody signed in to
		e.DeviceID = int64(1 + r.IntN(t.devices))
		e.Group = t.groups[4]
		e.ClientIP = t.addrs[e.DeviceID]
	} else {
		e.PersonID = t.active[r.IntN(len(t.active))]
		e.DeviceID = t.deviceOf[e.PersonID]
		e.Group = t.groups[e.PersonID%4]
		e.ClientIP = t.addrs[e.DeviceID]
		if e.DeviceID == 0 {
			e.ClientIP = t.personIP[e.PersonID]
		}
	}
	if t.rare > 0 && r.Float64() < t.rare {
		e.Host = rareHost
	} else {
		e.Host = t.hosts[t.zipf.Uint64()]
	}
	switch k := r.IntN(100); {
	case k < 35:
		e.QType = "AAAA"
	case k < 50:
		e.QType = "HTTPS"
	case k < 52:
		e.QType = "TXT"
	}
	switch k := r.IntN(100); {
	case k < 5:
		e.Source = "doh"
	case k < 8:
		e.Source = "dot"
	}
	if r.IntN(100) < 15 {
		cats := []string{"social-networking", "games", "gambling", "adult", "malware", "proxies"}
		c := cats[r.IntN(len(cats))]
		e.Action, e.Category, e.List, e.Rule, e.Upstream = "block", c, "ut1/"+c, "category", ""
		e.Latency = time.Duration(5+r.IntN(30)) * time.Microsecond
		e.Alert = c == "proxies" && r.IntN(4) == 0
	} else {
		if r.IntN(100) < 40 {
			e.Upstream = "192.0.2.53:53"
			e.Latency = time.Duration(2+r.IntN(80)) * time.Millisecond
		}
		if r.IntN(100) < 5 {
			e.Status = "NXDOMAIN"
		}
		if r.IntN(3) == 0 {
			e.Category = []string{"education", "search-engines", "news", "video", "shopping"}[r.IntN(5)]
		}
	}
	if r.IntN(50000) == 0 {
		t.policy++
	}
	return e
}
