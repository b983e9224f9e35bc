// Package builtin holds the list data embedded in the Warden binary: the
// curated education allow list that every installation starts with, and
// the small UT1 starter sample that the demonstration school uses. It is
// data only; importing it into the store is listsync's job.
package builtin

import (
	"embed"
	"io/fs"
)

//go:embed education.txt
var educationList []byte

//go:embed starter
var starter embed.FS

// EducationListID is the id of the education allow list in the store.
const EducationListID = "local/education"

// EducationList returns the curated education allow list in plain format
// (one domain or URL per line, '#' comments).
func EducationList() []byte { return educationList }

// StarterUT1 returns the demo's UT1 sample as a folder of
// CATEGORY/domains and CATEGORY/urls files.
func StarterUT1() fs.FS {
	sub, err := fs.Sub(starter, "starter/ut1")
	if err != nil {
		// The path is fixed at build time; failing is a build defect.
		panic(err)
	}
	return sub
}

// StarterAttribution returns the CC BY-SA 4.0 attribution of the starter
// sample.
func StarterAttribution() string {
	b, err := starter.ReadFile("starter/ATTRIBUTION.md")
	if err != nil {
		panic(err)
	}
	return string(b)
}
