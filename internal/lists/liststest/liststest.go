// Package liststest provides test and benchmark helpers for list data:
// where the shared data set lives, and generated domain names for scale.
package liststest

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
)

// SharedData returns the folder of the shared data set (UT1 lists, top
// sites, MIS exports) that lives beside the project checkout, or the
// folder named by WARDEN_SHARED_DATA. It may not exist: callers skip.
func SharedData() string {
	if d := os.Getenv("WARDEN_SHARED_DATA"); d != "" {
		return d
	}
	_, file, _, _ := runtime.Caller(0)
	// internal/lists/liststest -> repository root -> ../shared/data
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "..", "shared", "data")
}

var (
	syllables = []string{"ka", "lo", "mi", "ne", "ro", "sa", "ti", "vu", "zen", "bet", "play", "win", "shop",
		"news", "cloud", "web", "net", "media", "club", "star", "max", "pro", "hub", "zone", "line", "data"}
	tlds = []string{"com", "net", "org", "info", "co.uk", "fr", "de", "ru", "io", "xyz", "top", "online", "site", "biz"}
)

// GenerateDomains calls fn with n distinct, realistic-looking domain names
// (two or three labels, 8 to 30 characters), the same for the same seed.
// Names are made unique by a counter woven into the first label.
func GenerateDomains(n int, seed uint64, fn func(string)) {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	buf := make([]byte, 0, 64)
	for i := 0; i < n; i++ {
		buf = buf[:0]
		if r.IntN(4) == 0 {
			buf = append(buf, syllables[r.IntN(len(syllables))]...)
			buf = append(buf, '.')
		}
		k := 1 + r.IntN(3)
		for j := 0; j < k; j++ {
			buf = append(buf, syllables[r.IntN(len(syllables))]...)
		}
		buf = strconv.AppendInt(buf, int64(i), 36)
		buf = append(buf, '.')
		buf = append(buf, tlds[r.IntN(len(tlds))]...)
		fn(string(buf))
	}
}
