package directory

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxFileSize is the largest people file ParseCSV reads. An export of a
// large secondary school is well under a megabyte.
const MaxFileSize = 32 << 20

// Column is one column of a people file's header and the field Warden
// reads from it: "upn", "admission_no", "mis_id", "legal_forename",
// "preferred_forename", "surname", "name", "year", "reg_group", "role",
// "username", "email", "relationship", "pupil_upn", "pupil_admission_no",
// "pupil_mis_id" or "kind"; FieldIgnored for a column recognised and
// deliberately not kept (DOB, address, telephone...); "" for a column not
// recognised, which is ignored too.
type Column struct {
	Header string
	Field  string
}

// Record is one valid data row of a people file, normalised: UPNs upper
// case, usernames and emails lower case, year groups as ParseYearGroup
// returns them. Fields that do not apply to the row's kind are empty
// (only pupils have a UPN, admission number and year group; only parents
// have a relationship and a pupil reference).
type Record struct {
	// Line is the physical line the row starts on (the header is line 1).
	Line              int
	Kind              Kind
	MISID             string
	UPN               string
	AdmissionNo       string
	LegalForename     string
	PreferredForename string
	Surname           string
	Year              int
	HasYear           bool
	RegGroup          string
	Role              string
	Username          string
	Email             string
	// Relationship and the pupil reference (at least one of PupilUPN,
	// PupilAdmissionNo, PupilMISID) belong to parent rows.
	Relationship     string
	PupilUPN         string
	PupilAdmissionNo string
	PupilMISID       string
	// SameAs is, for a parent row repeating a parent listed on an earlier
	// line (for another child), the line where that parent first appears;
	// 0 otherwise. Keys the repeat adds are merged into the first row.
	SameAs int
}

// Sheet is a parsed people file.
type Sheet struct {
	File string
	// Kind is the kind of every record, or "" when the file has a person
	// type column and mixes kinds.
	Kind    Kind
	Columns []Column
	Records []Record
	// has says which fields have a column, so that a re-import changes
	// only what the file holds.
	has [numFields]bool
}

// Ignored returns the headers of columns recognised and deliberately not
// kept, such as DOB.
func (s *Sheet) Ignored() []string { return s.headers(FieldIgnored) }

// Unknown returns the headers of columns not recognised (and so ignored).
func (s *Sheet) Unknown() []string { return s.headers("") }

func (s *Sheet) headers(f string) []string {
	var out []string
	for _, c := range s.Columns {
		if c.Field == f && strings.TrimSpace(c.Header) != "" {
			out = append(out, c.Header)
		}
	}
	return out
}

// ParseCSV reads a people file exported from a school MIS: a header row
// and one person a row. Headers are matched ignoring case, spaces and
// punctuation, with the synonyms MIS exports use ("Legal Forename",
// "First Name"; "Year", "NC Year"; "Adno", "Admission Number"...). kind ""
// means detect it from the headers: a role or staff-code column means
// staff, a relationship or pupil-reference column parents, a year column
// pupils; a person type column ("Person Type", "Kind") allows a file of
// mixed kinds.
//
// It takes UTF-8 with or without a byte-order mark, UTF-16 with one, and
// Windows-1252 (what spreadsheet programs save as "CSV" on Windows);
// comma, semicolon or tab separators; CRLF line ends; quoted values with
// commas or line breaks; and blank lines. Columns such as DOB, gender and
// address are recognised and never read (data minimisation).
//
// A file with any bad row yields an *ImportError listing every bad row
// (up to MaxProblems) as "file:line: what is wrong"; an I/O error is
// returned wrapped.
func ParseCSV(r io.Reader, file string, kind Kind) (*Sheet, error) {
	if kind != "" && !kind.Valid() {
		return nil, invalidf("person kind %q not recognised (want pupil, staff, visitor or parent)", kind)
	}
	data, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	ps := &problems{file: file}
	if len(data) > MaxFileSize {
		ps.add(0, "the file is larger than %d MiB; is it the right file?", MaxFileSize>>20)
		return nil, ps.err()
	}
	text, line, msg := decodeText(data)
	if msg != "" {
		ps.add(line, "%s", msg)
		return nil, ps.err()
	}
	if strings.TrimSpace(text) == "" {
		ps.add(0, "the file is empty")
		return nil, ps.err()
	}
	cr := csv.NewReader(strings.NewReader(text))
	cr.Comma = sniffDelimiter(text)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = cr.Comma != '\t'

	var header []string
	headerLine := 1
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			ps.add(0, "the file is empty")
			return nil, ps.err()
		}
		if err != nil {
			csvProblem(ps, err)
			return nil, ps.err()
		}
		if blankRow(rec) {
			continue
		}
		header = rec
		headerLine, _ = cr.FieldPos(0)
		break
	}
	p, ok := newHeaderPlan(ps, header, headerLine, kind)
	if !ok {
		return nil, ps.err()
	}
	sheet := &Sheet{File: file, Kind: p.kind, Columns: p.columns, has: p.has}

	// Rows with more values than the header are a value with an unquoted
	// comma, unless every row has them and they are empty: an export that
	// ends each data row with a separator.
	type row struct {
		rec    Record
		msgs   []string
		values int
		extra  bool // more values than the header, the extra ones empty
	}
	var rows []row
	extraRows := 0
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			csvProblem(ps, err)
			break
		}
		if blankRow(rec) {
			continue
		}
		line, _ := cr.FieldPos(0)
		if len(rec) > len(header) && !blankRow(rec[len(header):]) {
			rows = append(rows, row{rec: Record{Line: line}, values: len(rec), msgs: []string{tooManyValues(len(rec), len(header))}})
			continue
		}
		r, msgs := p.record(rec, line)
		extra := len(rec) > len(header)
		if extra {
			extraRows++
		}
		rows = append(rows, row{rec: r, msgs: msgs, values: len(rec), extra: extra})
	}
	for _, r := range rows {
		if r.extra && extraRows < len(rows) {
			r.msgs = []string{tooManyValues(r.values, len(header))}
		}
		if len(r.msgs) > 0 {
			ps.add(r.rec.Line, "%s", strings.Join(r.msgs, "; "))
			continue
		}
		sheet.Records = append(sheet.Records, r.rec)
	}
	if len(rows) == 0 && len(ps.list) == 0 {
		ps.add(0, "no data rows: the file has a header but no people")
	}
	checkDuplicates(ps, sheet.Records)
	if err := ps.err(); err != nil {
		return nil, err
	}
	if sheet.Kind == "" {
		// A person type column whose rows all give one kind.
		k := sheet.Records[0].Kind
		for _, r := range sheet.Records {
			if r.Kind != k {
				k = ""
				break
			}
		}
		sheet.Kind = k
	}
	return sheet, nil
}

// tooManyValues explains a row longer than the header.
func tooManyValues(values, columns int) string {
	return fmt.Sprintf("the row has %d values but the header has %d columns: a value holding a comma must be in double quotes", values, columns)
}

// headerPlan is what each column of a file means once its kind is known.
type headerPlan struct {
	kind    Kind // "" for a file of mixed kinds
	forced  Kind // the kind asked for, which a person type column must agree with
	columns []Column
	fields  []field
	has     [numFields]bool
	col     [numFields]int // index of each field's column, -1 if none
}

// newHeaderPlan maps the header row; header problems go to ps.
func newHeaderPlan(ps *problems, header []string, line int, kind Kind) (*headerPlan, bool) {
	syns := make([]synonym, len(header))
	var present [numFields]bool
	for i, h := range header {
		syns[i] = lookupHeader(h)
		present[syns[i].f] = true
	}
	p := &headerPlan{forced: kind, columns: make([]Column, len(header)), fields: make([]field, len(header))}
	for i := range p.col {
		p.col[i] = -1
	}
	switch {
	case kind != "":
		p.kind = kind
	case present[fKind]:
		p.kind = ""
	default:
		k, ok := detectKind(syns, present)
		if !ok {
			ps.add(line, "cannot tell whether the file lists pupils, staff or parents: it has no year group, role or relationship column (found %s); choose the kind of people to import", listHeaders(header))
			return nil, false
		}
		p.kind = k
	}
	for i, s := range syns {
		f := s.f
		if p.kind != "" {
			f = remap(s, p.kind, present)
		}
		p.fields[i] = f
		p.columns[i] = Column{Header: strings.TrimSpace(header[i]), Field: fieldNames[f]}
		if f == fUnknown || f == fIgnored {
			continue
		}
		if j := p.col[f]; j >= 0 {
			ps.add(line, "columns %q and %q both give the %s; remove or rename one", p.columns[j].Header, p.columns[i].Header, fieldLabels[f])
			continue
		}
		p.col[f] = i
		p.has[f] = true
	}
	if len(ps.list) > 0 {
		return nil, false
	}
	has := p.has
	if !((has[fLegalForename] || has[fPreferredForename]) && has[fSurname] || has[fName]) {
		hint := `such as "Legal Forename" and "Legal Surname", or "First Name" and "Last Name"`
		if p.kind == KindParent {
			hint = `such as "Contact Forename" and "Contact Surname"`
		}
		ps.add(line, "no name columns: expected a forename and a surname column (%s) or a \"Name\" column; found %s", hint, listHeaders(header))
	}
	if !(has[fUPN] || has[fAdmissionNo] || has[fMISID] || has[fUsername] || has[fEmail]) {
		want := `"UPN", "Adno", "MIS ID", "Username" or "Email"`
		switch p.kind {
		case KindStaff:
			want = `"Staff Code", "Username" or "Email"`
		case KindParent:
			want = `"Contact ID", "Username" or "Email" for the parent`
		case KindVisitor:
			want = `"MIS ID", "Username" or "Email"`
		}
		ps.add(line, "no column identifies people: expected one of %s", want)
	}
	if p.kind == KindPupil && !has[fYear] {
		ps.add(line, `no year group column (such as "Year" or "Year Group"): pupils need one`)
	}
	if p.kind == KindParent && !(has[fPupilUPN] || has[fPupilAdmissionNo] || has[fPupilMISID]) {
		ps.add(line, `no column says which pupil each parent belongs to (such as "Pupil UPN" or "Pupil Adno")`)
	}
	if len(ps.list) > 0 {
		return nil, false
	}
	return p, true
}

// detectKind decides the kind of a file from its columns.
func detectKind(syns []synonym, present [numFields]bool) (Kind, bool) {
	hasHint := func(pred func(synonym) bool) bool {
		for _, s := range syns {
			if pred(s) {
				return true
			}
		}
		return false
	}
	pupilRef := present[fPupilUPN] || present[fPupilAdmissionNo] || present[fPupilMISID]
	switch {
	case present[fRelationship] || hasHint(func(s synonym) bool { return s.h == hParent && s.f != fIgnored }):
		return KindParent, true
	case pupilRef && !present[fYear]:
		return KindParent, true
	case present[fRole] || hasHint(func(s synonym) bool { return s.h == hStaff }):
		return KindStaff, true
	case present[fYear]:
		return KindPupil, true
	case present[fUPN] || present[fAdmissionNo] || pupilRef || hasHint(func(s synonym) bool { return s.h == hPupil && s.f == fMISID }):
		return KindPupil, true
	}
	return "", false
}

// remap turns a recognised column into the field it gives for a file of
// one kind: in a parents file "Pupil ID" is the child's reference and
// "Pupil Forename" is not kept; in a pupils file "Pupil UPN" is the
// pupil's own UPN and "Contact Email" is not kept.
func remap(s synonym, k Kind, present [numFields]bool) field {
	f := s.f
	switch k {
	case KindPupil:
		if s.h == hParent || s.h == hStaff {
			return fIgnored
		}
		switch f {
		case fPupilUPN:
			return ownUnlessPresent(fUPN, present)
		case fPupilAdmissionNo:
			return ownUnlessPresent(fAdmissionNo, present)
		case fPupilMISID:
			return ownUnlessPresent(fMISID, present)
		case fRelationship, fRole:
			return fIgnored
		}
	case KindParent:
		if s.h == hStaff {
			return fIgnored
		}
		switch f {
		case fPupilUPN, fPupilAdmissionNo, fPupilMISID:
			return f
		case fUPN:
			return refUnlessPresent(fPupilUPN, present)
		case fAdmissionNo:
			return refUnlessPresent(fPupilAdmissionNo, present)
		case fMISID:
			if s.h == hPupil {
				return refUnlessPresent(fPupilMISID, present)
			}
		case fYear, fRegGroup, fRole:
			return fIgnored
		}
		if s.h == hPupil {
			return fIgnored
		}
	case KindStaff, KindVisitor:
		if s.h == hPupil || s.h == hParent {
			return fIgnored
		}
		switch f {
		case fUPN, fAdmissionNo, fPupilUPN, fPupilAdmissionNo, fPupilMISID, fYear, fRelationship:
			return fIgnored
		case fRegGroup:
			if k == KindVisitor {
				return fIgnored
			}
		}
	}
	return f
}

// ownUnlessPresent maps a pupil-reference column to the pupil's own key,
// unless the file also has a column for that key.
func ownUnlessPresent(f field, present [numFields]bool) field {
	if present[f] {
		return fIgnored
	}
	return f
}

// refUnlessPresent maps a key column of a parents file to the pupil
// reference, unless the file also has an explicit reference column.
func refUnlessPresent(f field, present [numFields]bool) field {
	if present[f] {
		return fIgnored
	}
	return f
}

// listHeaders quotes a header row for a message.
func listHeaders(h []string) string {
	var parts []string
	for _, s := range h {
		if s = strings.TrimSpace(s); s != "" {
			parts = append(parts, fmt.Sprintf("%q", trunc(s)))
		}
		if len(parts) == 12 {
			parts = append(parts, "...")
			break
		}
	}
	if len(parts) == 0 {
		return "no headers"
	}
	return strings.Join(parts, ", ")
}

// record validates one data row into a Record; msgs say what is wrong.
func (p *headerPlan) record(row []string, line int) (Record, []string) {
	get := func(f field) string {
		if i := p.col[f]; i >= 0 && i < len(row) {
			return strings.TrimSpace(row[i])
		}
		return ""
	}
	var msgs []string
	fail := func(err error) { msgs = append(msgs, err.Error()) }
	r := Record{Line: line, Kind: p.kind}
	if p.kind == "" || p.col[fKind] >= 0 && p.forced != "" {
		v := get(fKind)
		if v == "" && p.forced != "" {
			r.Kind = p.forced
		} else if v == "" {
			return r, []string{"person type is missing"}
		} else {
			k, err := ParseKind(v)
			if err != nil {
				return r, []string{err.Error()}
			}
			if p.forced != "" && k != p.forced {
				return r, []string{fmt.Sprintf("person type %q, but this import is of %s", v, p.forced.plural())}
			}
			r.Kind = k
		}
	}
	k := r.Kind

	legal, pref, sur := get(fLegalForename), get(fPreferredForename), get(fSurname)
	if (legal == "" && pref == "") || sur == "" {
		if f, s := splitName(get(fName)); f != "" || s != "" {
			if legal == "" && pref == "" {
				legal = f
			}
			if sur == "" {
				sur = s
			}
		}
	}
	var err error
	if r.LegalForename, err = cleanText("forename", legal, maxNameLen); err != nil {
		fail(err)
	}
	if r.PreferredForename, err = cleanText("preferred forename", pref, maxNameLen); err != nil {
		fail(err)
	}
	if r.Surname, err = cleanText("surname", sur, maxNameLen); err != nil {
		fail(err)
	}
	if legal == "" && pref == "" {
		msgs = append(msgs, "forename is missing")
	}
	if sur == "" {
		msgs = append(msgs, "surname is missing")
	}
	if r.LegalForename == "" {
		r.LegalForename = r.PreferredForename
	}

	if k == KindPupil {
		if r.UPN, err = normUPN(get(fUPN)); err != nil {
			fail(err)
		}
		if r.AdmissionNo, err = normKey("admission number", get(fAdmissionNo)); err != nil {
			fail(err)
		}
	}
	if r.MISID, err = normKey("MIS id", get(fMISID)); err != nil {
		fail(err)
	}
	if r.Username, err = normUsername(get(fUsername)); err != nil {
		fail(err)
	}
	if r.Email, err = normEmail(get(fEmail)); err != nil {
		fail(err)
	}
	identified := get(fMISID) != "" || get(fUsername) != "" || get(fEmail) != ""
	if k == KindPupil {
		identified = identified || get(fUPN) != "" || get(fAdmissionNo) != ""
	}
	if !identified {
		if k == KindPupil {
			msgs = append(msgs, "nothing identifies this pupil: give a UPN, admission number, MIS id, username or email")
		} else {
			msgs = append(msgs, fmt.Sprintf("nothing identifies this %s: give an MIS id, username or email", singular(k)))
		}
	}

	switch k {
	case KindPupil:
		if v := get(fYear); v == "" {
			msgs = append(msgs, "year group is missing")
		} else if y, err := ParseYearGroup(v); err != nil {
			fail(err)
		} else {
			r.Year, r.HasYear = y, true
		}
		if r.RegGroup, err = cleanText("registration group", get(fRegGroup), maxTextLen); err != nil {
			fail(err)
		}
	case KindStaff:
		if r.RegGroup, err = cleanText("registration group", get(fRegGroup), maxTextLen); err != nil {
			fail(err)
		}
		if r.Role, err = cleanText("role", get(fRole), maxTextLen); err != nil {
			fail(err)
		}
	case KindVisitor:
		if r.Role, err = cleanText("role", get(fRole), maxTextLen); err != nil {
			fail(err)
		}
	case KindParent:
		if r.Relationship, err = cleanText("relationship", get(fRelationship), maxRelationshipLen); err != nil {
			fail(err)
		}
		if r.PupilUPN, err = normUPN(get(fPupilUPN)); err != nil {
			fail(fmt.Errorf("pupil's %w", err))
		}
		if r.PupilAdmissionNo, err = normKey("pupil's admission number", get(fPupilAdmissionNo)); err != nil {
			fail(err)
		}
		if r.PupilMISID, err = normKey("pupil's MIS id", get(fPupilMISID)); err != nil {
			fail(err)
		}
		if get(fPupilUPN) == "" && get(fPupilAdmissionNo) == "" && get(fPupilMISID) == "" {
			msgs = append(msgs, "no pupil UPN, admission number or MIS id: a parent row must say which pupil it belongs to")
		}
	}
	return r, msgs
}

// singular names one person of a kind in a message.
func singular(k Kind) string {
	switch k {
	case KindStaff:
		return "member of staff"
	case KindParent:
		return "parent"
	}
	return string(k)
}

// splitName splits a full name: "Surname, Forename" at the comma,
// otherwise "Forename Surname" at the last space.
func splitName(s string) (forename, surname string) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", ""
	}
	if sur, fore, ok := strings.Cut(s, ","); ok {
		return strings.TrimSpace(fore), strings.TrimSpace(sur)
	}
	words := strings.Fields(s)
	if len(words) == 1 {
		return "", words[0]
	}
	return strings.Join(words[:len(words)-1], " "), words[len(words)-1]
}

// blankRow reports whether every value of a row is empty or spaces, as in
// the ",,,," lines spreadsheets leave at the end.
func blankRow(rec []string) bool {
	for _, v := range rec {
		if strings.TrimSpace(v) != "" {
			return false
		}
	}
	return true
}

// csvProblem turns a CSV syntax error into a problem at its line.
func csvProblem(ps *problems, err error) {
	var pe *csv.ParseError
	if !errors.As(err, &pe) {
		ps.add(0, "cannot read the file: %v", err)
		return
	}
	const advice = "a value holding a comma or a double quote must be enclosed in double quotes, with each double quote inside doubled"
	switch {
	case errors.Is(pe.Err, csv.ErrBareQuote):
		ps.add(pe.Line, "stray double quote at column %d: %s", pe.Column, advice)
	case errors.Is(pe.Err, csv.ErrQuote) && pe.StartLine != pe.Line:
		ps.add(pe.StartLine, "a double-quoted value starting on this line is not closed properly (line %d, column %d): %s", pe.Line, pe.Column, advice)
	case errors.Is(pe.Err, csv.ErrQuote):
		ps.add(pe.Line, "misplaced or unclosed double quote at column %d: %s", pe.Column, advice)
	default:
		ps.add(pe.Line, "%v", pe.Err)
	}
}

// sniffDelimiter picks the separator of the first line: comma, semicolon
// (spreadsheets in some locales) or tab, whichever appears most outside
// quotes; comma on a tie.
func sniffDelimiter(text string) rune {
	line, _, _ := strings.Cut(text, "\n")
	counts := map[rune]int{}
	quoted := false
	for _, c := range line {
		switch c {
		case '"':
			quoted = !quoted
		case ',', ';', '\t':
			if !quoted {
				counts[c]++
			}
		}
	}
	best := ','
	for _, c := range []rune{';', '\t'} {
		if counts[c] > counts[best] {
			best = c
		}
	}
	return best
}

// decodeText turns the bytes of a file into text, or says why it cannot
// be a CSV file (with the line at fault, 0 for the whole file).
func decodeText(data []byte) (text string, line int, msg string) {
	switch {
	case bytes.HasPrefix(data, []byte("PK\x03\x04")):
		return "", 0, `this is a spreadsheet workbook (such as .xlsx), not a CSV file: save it as "CSV UTF-8" and import that`
	case bytes.HasPrefix(data, []byte{0xD0, 0xCF, 0x11, 0xE0}):
		return "", 0, `this is an Excel 97-2003 workbook (.xls), not a CSV file: save it as "CSV UTF-8" and import that`
	case bytes.HasPrefix(data, []byte("%PDF")):
		return "", 0, "this is a PDF document, not a CSV file: export the list from the MIS as CSV"
	}
	switch {
	case bytes.HasPrefix(data, []byte{0xEF, 0xBB, 0xBF}):
		data = data[3:]
		if !utf8.Valid(data) {
			return "", 0, "the file says it is UTF-8 but is not: export it again as \"CSV UTF-8\""
		}
		text = string(data)
	case bytes.HasPrefix(data, []byte{0xFF, 0xFE}), bytes.HasPrefix(data, []byte{0xFE, 0xFF}):
		be := data[0] == 0xFE
		data = data[2:]
		if len(data)%2 != 0 {
			return "", 0, "the file says it is UTF-16 but has an odd number of bytes: export it again as \"CSV UTF-8\""
		}
		u := make([]uint16, len(data)/2)
		for i := range u {
			if be {
				u[i] = uint16(data[2*i])<<8 | uint16(data[2*i+1])
			} else {
				u[i] = uint16(data[2*i+1])<<8 | uint16(data[2*i])
			}
		}
		text = string(utf16.Decode(u))
	case utf8.Valid(data):
		text = string(data)
	default:
		text = decodeWindows1252(data)
	}
	// Binary data: any NUL, or more than a few control characters (other
	// than tab and line ends). A few stray ones are left for the row
	// checks to report where they are.
	controls, first := 0, -1
	for i, r := range text {
		if r == 0 || r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0x7f || r >= 0x80 && r < 0xa0 {
			if first < 0 {
				first = i
			}
			controls++
			if r == 0 {
				controls += len(text)
				break
			}
		}
	}
	if first >= 0 && controls > 8 {
		return "", strings.Count(text[:first], "\n") + 1, "binary data: this is not a CSV text file; export the list from the MIS as CSV"
	}
	return text, 0, ""
}

// win1252 maps bytes 0x80-0x9F of Windows-1252; the rest of the range
// 0x80-0xFF is Latin-1. Unassigned bytes keep their C1 control code
// point, which decodeText treats as binary.
var win1252 = [32]rune{
	0x20AC, 0x81, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x8D, 0x017D, 0x8F,
	0x90, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D, 0x017E, 0x0178,
}

// decodeWindows1252 decodes Windows-1252 text.
func decodeWindows1252(data []byte) string {
	var b strings.Builder
	b.Grow(len(data) + len(data)/8)
	for _, c := range data {
		switch {
		case c < 0x80:
			b.WriteByte(c)
		case c < 0xA0:
			b.WriteRune(win1252[c-0x80])
		default:
			b.WriteRune(rune(c))
		}
	}
	return b.String()
}

// recordKey is one identifying key of a record, for finding duplicates.
type recordKey struct {
	kind  Kind // "" for keys unique across kinds (UPN, username)
	label string
	value string
}

// keys returns the identifying keys of a record, in canonical form.
func (r *Record) keys() []recordKey {
	var ks []recordKey
	if r.UPN != "" {
		ks = append(ks, recordKey{"", "UPN", r.UPN})
	}
	if r.MISID != "" {
		ks = append(ks, recordKey{r.Kind, "MIS id", canonKey(r.MISID)})
	}
	if r.AdmissionNo != "" {
		ks = append(ks, recordKey{r.Kind, "admission number", canonKey(r.AdmissionNo)})
	}
	if r.Username != "" {
		ks = append(ks, recordKey{"", "username", r.Username})
	}
	if r.Email != "" {
		ks = append(ks, recordKey{r.Kind, "email", r.Email})
	}
	return ks
}

// displayValue shows a key as the row gave it.
func (r *Record) displayValue(k recordKey) string {
	switch k.label {
	case "MIS id":
		return r.MISID
	case "admission number":
		return r.AdmissionNo
	}
	return k.value
}

// samePerson reports whether two parent rows describe the same parent:
// the same names and no key that differs.
func samePerson(a, b *Record) bool {
	if a.Kind != KindParent || b.Kind != KindParent ||
		!strings.EqualFold(a.LegalForename, b.LegalForename) || !strings.EqualFold(a.Surname, b.Surname) {
		return false
	}
	differ := func(x, y string) bool { return x != "" && y != "" && canonKey(x) != canonKey(y) }
	return !differ(a.MISID, b.MISID) && !differ(a.Username, b.Username) && !differ(a.Email, b.Email)
}

// pupilRefs returns a parent row's references to its pupil, canonical.
func (r *Record) pupilRefs() []string {
	var out []string
	if r.PupilUPN != "" {
		out = append(out, "upn:"+r.PupilUPN)
	}
	if r.PupilAdmissionNo != "" {
		out = append(out, "adno:"+canonKey(r.PupilAdmissionNo))
	}
	if r.PupilMISID != "" {
		out = append(out, "mis:"+canonKey(r.PupilMISID))
	}
	return out
}

// checkDuplicates reports keys given by two rows (pointing at both
// lines), except parent rows that repeat the same parent for another
// child, which are marked SameAs and merged into the first.
func checkDuplicates(ps *problems, recs []Record) {
	seen := make(map[recordKey]int) // key -> index of the record that has it
	links := make(map[string]int)   // parent line + pupil ref -> line
	bad := make(map[int][]string)   // index -> messages
	for i := range recs {
		r := &recs[i]
		root := -1
		for _, k := range r.keys() {
			j, ok := seen[k]
			if !ok {
				continue
			}
			first := &recs[j]
			if samePerson(first, r) && (root < 0 || root == j) {
				root = j
				continue
			}
			bad[i] = append(bad[i], fmt.Sprintf("%s %s is also on line %d", k.label, r.displayValue(k), first.Line))
		}
		if len(bad[i]) > 0 {
			continue
		}
		owner := i
		if root >= 0 {
			owner = root
			first := &recs[root]
			r.SameAs = first.Line
			if first.MISID == "" {
				first.MISID = r.MISID
			}
			if first.Username == "" {
				first.Username = r.Username
			}
			if first.Email == "" {
				first.Email = r.Email
			}
		}
		for _, k := range r.keys() {
			if _, ok := seen[k]; !ok {
				seen[k] = owner
			}
		}
		if r.Kind == KindParent {
			line := recs[owner].Line
			for _, ref := range r.pupilRefs() {
				key := fmt.Sprintf("%d/%s", line, ref)
				if other, ok := links[key]; ok {
					bad[i] = append(bad[i], fmt.Sprintf("the same parent and pupil are also on line %d", other))
					break
				}
				links[key] = r.Line
			}
		}
	}
	for i, msgs := range bad {
		ps.add(recs[i].Line, "%s", strings.Join(msgs, "; "))
	}
}
