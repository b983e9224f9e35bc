package inspect

import (
	"bufio"
	"bytes"
	_ "embed"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/warden-schools/warden/internal/lists"
	"github.com/warden-schools/warden/internal/policy"
)

//go:embed bypass_hosts.txt
var bypassHostsText []byte

// DefaultBypassCategories returns the categories never inspected unless
// configured otherwise: online banking, and health where the taxonomy
// has such a category (a category the taxonomy lacks matches nothing).
func DefaultBypassCategories() []string { return []string{"banking", "health"} }

// DefaultBypassHosts returns the built-in hosts never inspected (see
// bypass_hosts.txt for why each is there).
func DefaultBypassHosts() []string {
	var hosts []string
	sc := bufio.NewScanner(bytes.NewReader(bypassHostsText))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		hosts = append(hosts, line)
	}
	return hosts
}

// hostSet holds domains that match themselves and their subdomains.
type hostSet map[string]bool

func newHostSet(hosts []string) (hostSet, error) {
	s := hostSet{}
	for _, h := range hosts {
		n, err := lists.NormalizeHost(strings.TrimPrefix(strings.TrimSpace(h), "*."))
		if err != nil {
			return nil, fmt.Errorf("bypass host %q: %w", h, err)
		}
		s[n] = true
	}
	return s, nil
}

// contains reports whether host (normalised) or one of its parent
// domains is in the set.
func (s hostSet) contains(host string) bool {
	if s[host] {
		return true
	}
	if lists.IsIP(host) {
		return false
	}
	for {
		i := strings.IndexByte(host, '.')
		if i < 0 {
			return false
		}
		host = host[i+1:]
		if s[host] {
			return true
		}
	}
}

// categoryBypass says, per list of one matcher, whether the list carries
// a bypass category. It is rebuilt when the policy's matcher changes.
type categoryBypass struct {
	m      *lists.Matcher
	bypass []bool
}

// bypassCategories returns the table for snap's matcher, building it on
// the first use of a new matcher.
func (in *Inspector) bypassCategories(snap *policy.Snapshot) *categoryBypass {
	m := snap.Lists()
	if cb := in.catBypass.Load(); cb != nil && cb.m == m {
		return cb
	}
	infos := m.Lists()
	cb := &categoryBypass{m: m, bypass: make([]bool, len(infos))}
	for i, info := range infos {
		for _, c := range info.Categories {
			if in.bypassCats[c] {
				cb.bypass[i] = true
			}
		}
	}
	in.catBypass.Store(cb)
	return cb
}

// bypassState is kept on the Inspector.
type bypassState = atomic.Pointer[categoryBypass]
