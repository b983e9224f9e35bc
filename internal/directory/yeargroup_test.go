package directory

import (
	"errors"
	"testing"
)

func TestParseYearGroup(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{"N", -1}, {"n", -1}, {"Nursery", -1}, {"NURSERY", -1}, {"N1", -1}, {"N2", -1}, {"FS1", -1},
		{"R", 0}, {"YR", 0}, {"Yr R", 0}, {"Rec", 0}, {"rec.", 0}, {"Reception", 0}, {"Year R", 0}, {"FS2", 0}, {"0", 0},
		{"3", 3}, {"03", 3}, {"Y3", 3}, {"y3", 3}, {"Yr 3", 3}, {"Yr3", 3}, {"Yr. 3", 3}, {"Year 3", 3},
		{"Year3", 3}, {"YEAR 3", 3}, {"Y 3", 3}, {" Year 3 ", 3}, {"Year-3", 3}, {"Y03", 3},
		{"1", 1}, {"Year 6", 6}, {"Y7", 7}, {"Year 11", 11}, {"12", 12}, {"Y13", 13}, {"Year 13", 13},
	}
	for _, tt := range tests {
		got, err := ParseYearGroup(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseYearGroup(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestParseYearGroupErrors(t *testing.T) {
	tests := []struct{ in, msg string }{
		{"", "year group is empty"},
		{"  ", "year group is empty"},
		{"Y14", `year group "Y14" out of range (want N, R, or 1 to 13)`},
		{"Year 20", `year group "Year 20" out of range (want N, R, or 1 to 13)`},
		{"-1", `year group "-1" not recognised (want N, R, or 1 to 13, as in "Y3" or "Year 3")`},
		{"Year", `year group "Year" not recognised (want N, R, or 1 to 13, as in "Y3" or "Year 3")`},
		{"Sixth form", `year group "Sixth form" not recognised (want N, R, or 1 to 13, as in "Y3" or "Year 3")`},
		{"Y3A", `year group "Y3A" not recognised (want N, R, or 1 to 13, as in "Y3" or "Year 3")`},
		{"100", `year group "100" not recognised (want N, R, or 1 to 13, as in "Y3" or "Year 3")`},
		{"X", `year group "X" not recognised (want N, R, or 1 to 13, as in "Y3" or "Year 3")`},
	}
	for _, tt := range tests {
		_, err := ParseYearGroup(tt.in)
		if err == nil || err.Error() != tt.msg || !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseYearGroup(%q) error = %v; want %q", tt.in, err, tt.msg)
		}
	}
}

func TestYearGroupNameAndKeyStage(t *testing.T) {
	tests := []struct {
		year       int
		name, ks   string
		roundTrips bool
	}{
		{-1, "Nursery", "EYFS", true},
		{0, "Reception", "EYFS", true},
		{1, "Year 1", "KS1", true},
		{2, "Year 2", "KS1", true},
		{3, "Year 3", "KS2", true},
		{6, "Year 6", "KS2", true},
		{7, "Year 7", "KS3", true},
		{9, "Year 9", "KS3", true},
		{10, "Year 10", "KS4", true},
		{11, "Year 11", "KS4", true},
		{12, "Year 12", "KS5", true},
		{13, "Year 13", "KS5", true},
		{14, "Year 14", "", false},
		{-2, "Year -2", "", false},
	}
	for _, tt := range tests {
		if got := YearGroupName(tt.year); got != tt.name {
			t.Errorf("YearGroupName(%d) = %q, want %q", tt.year, got, tt.name)
		}
		if got := KeyStage(tt.year); got != tt.ks {
			t.Errorf("KeyStage(%d) = %q, want %q", tt.year, got, tt.ks)
		}
		if y, err := ParseYearGroup(tt.name); tt.roundTrips && (err != nil || y != tt.year) {
			t.Errorf("ParseYearGroup(YearGroupName(%d)) = %d, %v", tt.year, y, err)
		}
	}
}
