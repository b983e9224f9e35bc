package directory

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf16"
)

func TestHeaderSynonyms(t *testing.T) {
	tests := []struct {
		header string
		want   field
	}{
		{"UPN", fUPN}, {"Unique Pupil Number", fUPN},
		{"Adno", fAdmissionNo}, {"Admission No", fAdmissionNo}, {"Admission Number", fAdmissionNo}, {"Adm. No.", fAdmissionNo},
		{"Student ID", fMISID}, {"Pupil ID", fMISID}, {"MIS ID", fMISID}, {"mis_id", fMISID}, {"Staff Code", fMISID},
		{"Staff ID", fMISID}, {"Employee ID", fMISID}, {"Contact ID", fMISID},
		{"Legal Forename", fLegalForename}, {"Forename", fLegalForename}, {"First Name", fLegalForename},
		{"Given Name", fLegalForename}, {"FIRST_NAME", fLegalForename}, {"Contact Forename", fLegalForename},
		{"Parent Forename", fLegalForename}, {"Preferred Forename", fPreferredForename}, {"Preferred Name", fPreferredForename},
		{"Known As", fPreferredForename},
		{"Legal Surname", fSurname}, {"Surname", fSurname}, {"Last Name", fSurname}, {"Family Name", fSurname},
		{"Contact Surname", fSurname},
		{"Name", fName}, {"Full Name", fName},
		{"Year", fYear}, {"Year Group", fYear}, {"NC Year", fYear}, {"Curriculum Year", fYear}, {"year_group", fYear},
		{"Reg", fRegGroup}, {"Reg Group", fRegGroup}, {"Registration Group", fRegGroup}, {"Registration Form", fRegGroup},
		{"Form", fRegGroup}, {"Tutor Group", fRegGroup}, {"Class", fRegGroup},
		{"Username", fUsername}, {"User Name", fUsername}, {"Login", fUsername}, {"Network Login", fUsername},
		{"Email", fEmail}, {"E-mail", fEmail}, {"Email Address", fEmail}, {"E-Mail Address", fEmail}, {"Contact Email", fEmail},
		{"Role", fRole}, {"Job Title", fRole}, {"Post", fRole}, {"Staff Role", fRole},
		{"Relationship", fRelationship}, {"Relationship to Pupil", fRelationship},
		{"Pupil UPN", fPupilUPN}, {"Child UPN", fPupilUPN}, {"Student UPN", fPupilUPN},
		{"Pupil Adno", fPupilAdmissionNo}, {"Pupil Admission Number", fPupilAdmissionNo}, {"Child ID", fPupilMISID},
		{"Person Type", fKind},
		{"DOB", fIgnored}, {"Date of Birth", fIgnored}, {"Title", fIgnored}, {"Gender", fIgnored}, {"Postcode", fIgnored},
		{"Mobile", fIgnored}, {"Ethnicity", fIgnored},
		{"Favourite colour", fUnknown}, {"", fUnknown},
	}
	for _, tt := range tests {
		if got := lookupHeader(tt.header).f; got != tt.want {
			t.Errorf("header %q = %q, want %q", tt.header, fieldNames[got], fieldNames[tt.want])
		}
	}
}

// parseString parses an inline CSV file.
func parseString(t *testing.T, text string, kind Kind) (*Sheet, error) {
	t.Helper()
	return ParseCSV(strings.NewReader(text), "people.csv", kind)
}

func TestDetectKind(t *testing.T) {
	tests := []struct {
		name, header string
		row          string
		want         Kind
	}{
		{"year means pupils", "UPN,Forename,Surname,Year", "A820000000001,Ava,Evans,3", KindPupil},
		{"role means staff", "Forename,Surname,Role,Email", "Grace,Smith,Head,g@example.org", KindStaff},
		{"staff code means staff", "Staff Code,Forename,Surname", "S1,Grace,Smith", KindStaff},
		{"relationship means parents", "Forename,Surname,Relationship,Email,Pupil UPN", "Sam,Evans,Mother,s@example.net,A820000000001", KindParent},
		{"pupil reference means parents", "Contact Forename,Contact Surname,Email,Pupil Adno", "Sam,Evans,s@example.net,12", KindParent},
		{"parents with the child's year", "Forename,Surname,Relationship,Email,Pupil UPN,Year", "Sam,Evans,Mother,s@example.net,A820000000001,Y3", KindParent},
		{"pupil UPN with a year is the pupil's own", "Pupil UPN,Forename,Surname,Year", "A820000000001,Ava,Evans,3", KindPupil},
		{"one kind in a person type column", "Person Type,Forename,Surname,Email", "Visitor,Ann,Other,ann@example.org", KindVisitor},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := parseString(t, tt.header+"\n"+tt.row+"\n", "")
			if err != nil {
				t.Fatal(err)
			}
			if s.Kind != tt.want || s.Records[0].Kind != tt.want {
				t.Errorf("kind = %q (record %q), want %q", s.Kind, s.Records[0].Kind, tt.want)
			}
		})
	}
}

func TestParseLayouts(t *testing.T) {
	tests := []struct {
		file    string
		kind    Kind
		rows    int
		first   Record
		ignored []string
		unknown []string
	}{
		{
			file: "sims_student_list.csv", kind: KindPupil, rows: 12,
			first: Record{Line: 2, Kind: KindPupil, UPN: "A820000000001", AdmissionNo: "000001", LegalForename: "Ava",
				Surname: "Evans", Year: 2, HasYear: true, RegGroup: "2C"},
			ignored: []string{"DOB"},
		},
		{
			file: "arbor_students.csv", kind: KindPupil, rows: 10,
			first: Record{Line: 2, Kind: KindPupil, MISID: "000200", LegalForename: "Tomasz", Surname: "Taylor", Year: 3,
				HasYear: true, RegGroup: "3C", Email: "ttaylor200@pupils.example-school.org.uk"},
		},
		{
			file: "staff.csv", kind: KindStaff, rows: 12,
			first: Record{Line: 2, Kind: KindStaff, MISID: "S001", LegalForename: "Grace", Surname: "Smith",
				Role: "Headteacher", Email: "gsmith@example-school.org.uk"},
			ignored: []string{"Title"},
		},
		{
			file: "messy_pupils.csv", kind: KindPupil, rows: 13,
			first: Record{Line: 2, Kind: KindPupil, UPN: "A820000000201", LegalForename: "Chidi", Surname: "Ahmed",
				Year: -1, HasYear: true, RegGroup: "NurA", Email: "cahmed201@pupils.example-school.org.uk"},
			ignored: []string{"Date of Birth", "House"},
			unknown: []string{"Notes for office"},
		},
		{
			file: "parents.csv", kind: KindParent, rows: 4,
			first: Record{Line: 2, Kind: KindParent, LegalForename: "Sarah", Surname: "Evans", Email: "sevans@example.net",
				Relationship: "Mother", PupilUPN: "A820000000001"},
			ignored: []string{"Pupil Forename", "Pupil Surname", "Contact Title", "Mobile"},
		},
		{
			file: "pupils_windows1252.csv", kind: KindPupil, rows: 2,
			first: Record{Line: 2, Kind: KindPupil, UPN: "A820000000401", LegalForename: "Zoë", Surname: "Brontë", Year: 4, HasYear: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			s, err := ParseCSV(f, tt.file, "")
			if err != nil {
				t.Fatal(err)
			}
			if s.Kind != tt.kind || len(s.Records) != tt.rows {
				t.Fatalf("kind %q rows %d, want %q %d", s.Kind, len(s.Records), tt.kind, tt.rows)
			}
			if !reflect.DeepEqual(s.Records[0], tt.first) {
				t.Errorf("first record\n got %+v\nwant %+v", s.Records[0], tt.first)
			}
			if got := s.Ignored(); !reflect.DeepEqual(got, tt.ignored) {
				t.Errorf("ignored = %q, want %q", got, tt.ignored)
			}
			if got := s.Unknown(); !reflect.DeepEqual(got, tt.unknown) {
				t.Errorf("unknown = %q, want %q", got, tt.unknown)
			}
		})
	}
}

func TestParseMessyValues(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "messy_pupils.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := ParseCSV(f, "messy_pupils.csv", "")
	if err != nil {
		t.Fatal(err)
	}
	type got struct {
		line          int
		fore, sur     string
		year          int
		upn           string
		email         string
		preferredName string
	}
	want := []got{
		{2, "Chidi", "Ahmed", -1, "A820000000201", "cahmed201@pupils.example-school.org.uk", ""},
		{3, "Harry", "Begum", -1, "A820000000202", "", ""},
		{4, "Ivy", "O'Brien", 0, "A820000000203", "", ""},
		{5, "Rosie", "Wright", 0, "A820000000204", "", ""},
		{6, "Ava", "Jones", 0, "A820000000205", "", ""},
		{7, "Siân", `O"Neil`, 0, "A820000000206", "", ""},
		{8, "Zoë", "Hughes", 3, "A820000000207", "", ""},
		{9, "Sophia", "Green", 3, "A820000000208", "", ""},
		{10, "Oliver", "Davies", 3, "A820000000209", "", ""},
		{11, "Mia", "Lewis", 3, "A820000000210", "", ""},
		{12, "Leo", "Ali", 3, "A820000000211", "", ""},
		{13, "Freya", "Taylor", 3, "A820000000212", "", ""},
		{14, "Isla", "Kowalski", 6, "A820000000213", "", ""},
	}
	for i, r := range s.Records {
		g := got{r.Line, r.LegalForename, r.Surname, r.Year, r.UPN, r.Email, r.PreferredForename}
		if g != want[i] {
			t.Errorf("record %d = %+v, want %+v", i, g, want[i])
		}
	}
}

func TestParseEncodings(t *testing.T) {
	const text = "UPN,Forename,Surname,Year\r\nA820000000401,Zoë,Brontë,Year 4\r\n"
	utf16le := func(s string, be bool) string {
		u := utf16.Encode([]rune(s))
		b := []byte{0xFF, 0xFE}
		if be {
			b = []byte{0xFE, 0xFF}
		}
		for _, c := range u {
			if be {
				b = append(b, byte(c>>8), byte(c))
			} else {
				b = append(b, byte(c), byte(c>>8))
			}
		}
		return string(b)
	}
	tests := []struct{ name, data string }{
		{"utf-8", text},
		{"utf-8 with BOM", "\xEF\xBB\xBF" + text},
		{"utf-16le", utf16le(text, false)},
		{"utf-16be", utf16le(text, true)},
		{"windows-1252", "UPN,Forename,Surname,Year\r\nA820000000401,Zo\xEB,Bront\xEB,Year 4\r\n"},
		{"semicolons", "UPN;Forename;Surname;Year\nA820000000401;Zoë;Brontë;Year 4\n"},
		{"tabs", "UPN\tForename\tSurname\tYear\nA820000000401\tZoë\tBrontë\tYear 4\n"},
		{"blank lines and spaces", "\n\nUPN, Forename, Surname, Year\n\n A820000000401 , Zoë , \"Brontë\", Year 4 \n,,,\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := parseString(t, tt.data, "")
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Records) != 1 {
				t.Fatalf("%d records", len(s.Records))
			}
			r := s.Records[0]
			if r.LegalForename != "Zoë" || r.Surname != "Brontë" || r.Year != 4 || r.UPN != "A820000000401" {
				t.Errorf("record %+v", r)
			}
		})
	}
}

// problemsOf returns the messages of an *ImportError.
func problemsOf(t *testing.T, err error) []string {
	t.Helper()
	var ie *ImportError
	if !errors.As(err, &ie) {
		t.Fatalf("error %v (%T) is not an *ImportError", err, err)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("error is not ErrInvalid")
	}
	var out []string
	for _, p := range ie.Problems {
		out = append(out, p.Error())
	}
	return out
}

func TestParseBadRows(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "bad_pupils.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = ParseCSV(f, "bad_pupils.csv", "")
	want := []string{
		"bad_pupils.csv:3: surname is missing",
		`bad_pupils.csv:4: year group "Y14" out of range (want N, R, or 1 to 13)`,
		`bad_pupils.csv:5: UPN "A82000000004" should be 13 letters and digits, not 12 characters`,
		"bad_pupils.csv:6: UPN A820000000001 is also on line 2",
		`bad_pupils.csv:7: email "not-an-email" is not an email address`,
		"bad_pupils.csv:8: nothing identifies this pupil: give a UPN, admission number, MIS id, username or email",
		"bad_pupils.csv:9: year group is missing",
		"bad_pupils.csv:10: the row has 9 values but the header has 8 columns: a value holding a comma must be in double quotes",
		"bad_pupils.csv:12: admission number 000010 is also on line 11",
	}
	if got := problemsOf(t, err); !reflect.DeepEqual(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestParseFileErrors(t *testing.T) {
	tests := []struct {
		name, data string
		kind       Kind
		want       []string
	}{
		{"empty", "", "", []string{"people.csv: the file is empty"}},
		{"only blank lines", "\r\n\r\n  \r\n", "", []string{"people.csv: the file is empty"}},
		{"only a header", "UPN,Forename,Surname,Year\r\n,,,\r\n", "", []string{"people.csv: no data rows: the file has a header but no people"}},
		{"binary", "UPN,Name\n\x00\x01\x02\x03garbage", "", []string{"people.csv:2: binary data: this is not a CSV text file; export the list from the MIS as CSV"}},
		{"xlsx", "PK\x03\x04\x14\x00\x06\x00", "", []string{`people.csv: this is a spreadsheet workbook (such as .xlsx), not a CSV file: save it as "CSV UTF-8" and import that`}},
		{"no name columns", "UPN,Year,DOB\nA820000000001,3,01/01/2018\n", "", []string{
			`people.csv:1: no name columns: expected a forename and a surname column (such as "Legal Forename" and "Legal Surname", or "First Name" and "Last Name") or a "Name" column; found "UPN", "Year", "DOB"`}},
		{"no kind", "Forename,Surname,Email\nAva,Evans,a@example.org\n", "", []string{
			`people.csv:1: cannot tell whether the file lists pupils, staff or parents: it has no year group, role or relationship column (found "Forename", "Surname", "Email"); choose the kind of people to import`}},
		{"no key column", "Forename,Surname,Year\nAva,Evans,3\n", "", []string{
			`people.csv:1: no column identifies people: expected one of "UPN", "Adno", "MIS ID", "Username" or "Email"`}},
		{"pupils without a year column", "UPN,Forename,Surname\nA820000000001,Ava,Evans\n", KindPupil, []string{
			`people.csv:1: no year group column (such as "Year" or "Year Group"): pupils need one`}},
		{"parents without a pupil column", "Forename,Surname,Email\nSam,Evans,s@example.net\n", KindParent, []string{
			`people.csv:1: no column says which pupil each parent belongs to (such as "Pupil UPN" or "Pupil Adno")`}},
		{"two forename columns", "Forename,Legal Forename,Surname,Email\nA,A,B,a@example.org\n", KindStaff, []string{
			`people.csv:1: columns "Forename" and "Legal Forename" both give the legal forename; remove or rename one`}},
		{"bare quote", "UPN,Forename,Surname,Year\nA820000000001,Ava \"Bea,Evans,3\n", "", []string{
			`people.csv:2: stray double quote at column 19: a value holding a comma or a double quote must be enclosed in double quotes, with each double quote inside doubled`}},
		{"unclosed quote", "UPN,Forename,Surname,Year\nA820000000001,\"Ava,Evans,3\nA820000000002,Bea,Evans,3\n", "", []string{
			`people.csv:2: a double-quoted value starting on this line is not closed properly (line 3, column 27): a value holding a comma or a double quote must be enclosed in double quotes, with each double quote inside doubled`}},
		{"person type disagrees", "Person Type,Forename,Surname,Email\nStaff,Ann,Other,ann@example.org\n", KindVisitor, []string{
			`people.csv:2: person type "Staff", but this import is of visitors`}},
		{"unknown person type", "Person Type,Forename,Surname,Email\nGoverner,Ann,Other,ann@example.org\n", "", []string{
			`people.csv:2: person kind "Governer" not recognised (want pupil, staff, visitor or parent)`}},
		{"parent without pupil", "Forename,Surname,Relationship,Email,Pupil UPN\nSam,Evans,Mother,s@example.net,\n", "", []string{
			"people.csv:2: no pupil UPN, admission number or MIS id: a parent row must say which pupil it belongs to"}},
		{"parent twice for one pupil", "Forename,Surname,Relationship,Email,Pupil UPN\nSam,Evans,Mother,s@example.net,A820000000001\nSam,Evans,Mother,s@example.net,A820000000001\n", "", []string{
			"people.csv:3: the same parent and pupil are also on line 2"}},
		{"two parents share an id", "Contact ID,Forename,Surname,Relationship,Pupil UPN\nC1,Sam,Evans,Mother,A820000000001\nC1,Tom,Evans,Father,A820000000001\n", "", []string{
			"people.csv:3: MIS id C1 is also on line 2"}},
		{"username across kinds", "Person Type,Forename,Surname,Username,Year\nPupil,Ava,Evans,aevans,3\nStaff,Ann,Evans,AEvans,\n", "", []string{
			"people.csv:3: username aevans is also on line 2"}},
		{"control character", "UPN,Forename,Surname,Year\nA820000000001,Av\x07a,Evans,3\n", "", []string{
			"people.csv:2: forename contains a control character"}},
		{"several faults in a row", "UPN,Forename,Surname,Year,Email\nA82,,,Y99,x@\n", "", []string{
			`people.csv:2: forename is missing; surname is missing; UPN "A82" should be 13 letters and digits, not 3 characters; email "x@" is not an email address; year group "Y99" out of range (want N, R, or 1 to 13)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseString(t, tt.data, tt.kind)
			if err == nil {
				t.Fatal("no error")
			}
			if got := problemsOf(t, err); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestParseParentsRepeatForSiblings(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "parents.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := ParseCSV(f, "parents.csv", "")
	if err != nil {
		t.Fatal(err)
	}
	var same []int
	for _, r := range s.Records {
		same = append(same, r.SameAs)
	}
	if want := []int{0, 2, 0, 0}; !reflect.DeepEqual(same, want) {
		t.Errorf("SameAs = %v, want %v", same, want)
	}
}

func TestParseManyBadRowsCapped(t *testing.T) {
	var b strings.Builder
	b.WriteString("UPN,Forename,Surname,Year\n")
	for i := 0; i < 30; i++ {
		b.WriteString("A820000000001,Ava,Evans,Y99\n")
	}
	_, err := parseString(t, b.String(), "")
	var ie *ImportError
	if !errors.As(err, &ie) {
		t.Fatalf("err = %v", err)
	}
	if len(ie.Problems) != MaxProblems || ie.Omitted != 10 {
		t.Errorf("%d problems, %d omitted", len(ie.Problems), ie.Omitted)
	}
	if !strings.HasSuffix(err.Error(), "... and 10 more problems") {
		t.Errorf("error does not count the rest: %q", err.Error()[len(err.Error())-60:])
	}
}
