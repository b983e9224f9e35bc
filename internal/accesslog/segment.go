package accesslog

// Segments: one batch of events stored as one row, column by column.
//
// A segment's data blob (format 1) is
//
//	byte     format (segmentFormat)
//	uvarint  rows (1..65535)
//	columns, each: uvarint column id, uvarint body length, body
//
// Columns may come in any order. A decoder skips the columns it does not
// know and reads a missing column as all zero values ("", 0, false, the
// invalid address), so fields can be added later (a proxy's method, bytes,
// search term) without a new format, and a column whose values are all
// zero is simply left out. The bodies by kind:
//
//	int     byte mode, then: 0 one varint (every row the same);
//	        1 a varint per row; 2 a varint per row, each the difference
//	        from the row before (the first from zero). Varints are zigzag.
//	string  uvarint n (distinct values, 1..rows), byte flags (bit 0: no
//	        value has an upper-case ASCII letter or a non-ASCII byte),
//	        uvarint text length, the values' bytes back to back, a uvarint
//	        length per value, then each row's index into the values, packed
//	        in w bits (w = bits.Len(n-1), so none when n is 1): row i's
//	        index is bits i*w to i*w+w-1, bit k being bit k%8 of byte k/8.
//	addr    uvarint n, per value a uvarint length and netip.Addr's binary
//	        form (empty for the invalid address), then the indexes as for
//	        strings.
//	bool    a bitmap, row i in bit i%8 of byte i/8.
//
// Times are microseconds since the Unix epoch; latency is microseconds.

import (
	"errors"
	"fmt"
	"math/bits"

	"github.com/warden-schools/warden/internal/events"
)

// segmentFormat is the encoding written by this version (the format
// column and the blob's first byte).
const segmentFormat = 1

// maxSegmentEvents is the most events one segment holds: an Entry's ID
// keeps the row in its low 16 bits.
const maxSegmentEvents = 1<<16 - 1

// Column ids. Append only: an id, once written, keeps its meaning.
const (
	colTime     = 1  // int, delta: microseconds since the Unix epoch
	colSource   = 2  // string
	colClientIP = 3  // addr
	colDevice   = 4  // int
	colPerson   = 5  // int
	colGroup    = 6  // string
	colHost     = 7  // string
	colURL      = 8  // string
	colQType    = 9  // string
	colAction   = 10 // string
	colAlert    = 11 // bool
	colCategory = 12 // string
	colList     = 13 // string
	colRule     = 14 // string
	colPolicy   = 15 // int, delta
	colLatency  = 16 // int: microseconds
	colUpstream = 17 // string
	colStatus   = 18 // string
	colMethod   = 19 // string: HTTP method (proxy)
	colSearch   = 20 // string: search term (proxy)
	colBytes    = 21 // int: response body bytes (proxy)
	numColumns  = 22 // ids below this are known to this version
)

// Int column modes.
const (
	intConst = 0
	intPlain = 1
	intDelta = 2
)

// flagFolded marks a string column none of whose values changes under
// strings.ToLower, so a lower-case needle can be searched in its bytes
// directly.
const flagFolded = 1

// errCorrupt is the error a malformed segment gives (wrapped).
var errCorrupt = errors.New("corrupt segment")

// corrupt returns an error about a malformed segment.
func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errCorrupt, fmt.Sprintf(format, args...))
}

// summary is what a segment's row holds besides its data: the facts that
// let readers skip it.
type summary struct {
	// firstAt and lastAt are the earliest and latest event times (Unix
	// milliseconds), whatever the events' order.
	firstAt, lastAt int64
	events, blocked int
	// people and devices are the sorted distinct positive ids, as
	// uvarint differences (nil when there are none).
	people, devices []byte
	// groups and categories are the sorted distinct non-empty values,
	// newline-joined.
	groups, categories string
	// hostGrams is the hosts' bigram and trigram filter (see gramFilter).
	hostGrams []byte
	data      []byte
}

// indexBits is the bits a row's index into n values takes.
func indexBits(n int) uint { return uint(bits.Len(uint(n - 1))) }

// String columns, indexing stringColumns.
const (
	strSource = iota
	strGroup
	strHost
	strURL
	strQType
	strAction
	strCategory
	strList
	strRule
	strUpstream
	strStatus
	strMethod
	strSearch
	numStrings
)

// stringColumns are the string columns' ids and the Event field each
// holds (a table, never written).
var stringColumns = [numStrings]struct {
	id    int
	field func(*events.Event) *string
}{
	strSource:   {colSource, func(e *events.Event) *string { return &e.Source }},
	strGroup:    {colGroup, func(e *events.Event) *string { return &e.Group }},
	strHost:     {colHost, func(e *events.Event) *string { return &e.Host }},
	strURL:      {colURL, func(e *events.Event) *string { return &e.URL }},
	strQType:    {colQType, func(e *events.Event) *string { return &e.QType }},
	strAction:   {colAction, func(e *events.Event) *string { return &e.Action }},
	strCategory: {colCategory, func(e *events.Event) *string { return &e.Category }},
	strList:     {colList, func(e *events.Event) *string { return &e.List }},
	strRule:     {colRule, func(e *events.Event) *string { return &e.Rule }},
	strUpstream: {colUpstream, func(e *events.Event) *string { return &e.Upstream }},
	strStatus:   {colStatus, func(e *events.Event) *string { return &e.Status }},
	strMethod:   {colMethod, func(e *events.Event) *string { return &e.Method }},
	strSearch:   {colSearch, func(e *events.Event) *string { return &e.SearchTerm }},
}

// floorDiv divides rounding down (Unix milliseconds of a microsecond time
// before 1970 included).
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}
