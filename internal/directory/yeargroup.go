package directory

import (
	"fmt"
	"strconv"
	"strings"
)

// Year groups as stored: Nursery is -1, Reception 0, then National
// Curriculum years 1 to 13.
const (
	YearNursery   = -1
	YearReception = 0
	// MaxYear is the last year group (Year 13, the upper sixth).
	MaxYear = 13
)

// ParseYearGroup reads a year group as school MIS exports write it:
// "N", "Nursery", "N1", "N2", "FS1" are Nursery (-1); "R", "YR", "Rec",
// "Reception", "Year R", "FS2", "0" are Reception (0); "3", "Y3", "Yr 3",
// "Year 3", "Year3", "Y 3", "Y03" are Year 3, up to Year 13. Case, spaces,
// dots, hyphens and underscores are ignored.
func ParseYearGroup(s string) (int, error) {
	orig := strings.TrimSpace(s)
	if orig == "" {
		return 0, invalidf("year group is empty")
	}
	if orig[0] == '-' || orig[0] == '+' {
		return 0, invalidf("year group %q not recognised (want N, R, or 1 to 13, as in \"Y3\" or \"Year 3\")", orig)
	}
	k := strings.Map(func(r rune) rune {
		switch {
		case r >= 'A' && r <= 'Z':
			return r + ('a' - 'A')
		case r == ' ' || r == '\t' || r == '.' || r == '-' || r == '_':
			return -1
		}
		return r
	}, orig)
	switch k {
	case "n", "nur", "nursery", "n1", "n2", "fs1", "yearn", "yn":
		return YearNursery, nil
	case "r", "yr", "rec", "reception", "yearr", "yearrec", "yearreception", "fs2", "yrr":
		return YearReception, nil
	}
	num := k
	for _, prefix := range []string{"year", "yr", "y"} {
		if strings.HasPrefix(num, prefix) {
			num = num[len(prefix):]
			break
		}
	}
	if num == "" || len(num) > 2 || strings.Trim(num, "0123456789") != "" {
		return 0, invalidf("year group %q not recognised (want N, R, or 1 to 13, as in \"Y3\" or \"Year 3\")", orig)
	}
	y, err := strconv.Atoi(num)
	if err != nil || y > MaxYear {
		return 0, invalidf("year group %q out of range (want N, R, or 1 to 13)", orig)
	}
	return y, nil
}

// YearGroupName names a year group for people: "Nursery", "Reception",
// "Year 3".
func YearGroupName(y int) string {
	switch y {
	case YearNursery:
		return "Nursery"
	case YearReception:
		return "Reception"
	}
	return fmt.Sprintf("Year %d", y)
}

// KeyStage returns the key stage of a year group: "EYFS" (Nursery and
// Reception), "KS1" (Years 1-2), "KS2" (3-6), "KS3" (7-9), "KS4" (10-11),
// "KS5" (12-13), or "" for a value outside those.
func KeyStage(y int) string {
	switch {
	case y == YearNursery || y == YearReception:
		return "EYFS"
	case y >= 1 && y <= 2:
		return "KS1"
	case y >= 3 && y <= 6:
		return "KS2"
	case y >= 7 && y <= 9:
		return "KS3"
	case y >= 10 && y <= 11:
		return "KS4"
	case y >= 12 && y <= 13:
		return "KS5"
	}
	return ""
}

// validYear reports whether y is a year group Warden stores.
func validYear(y int) bool { return y >= YearNursery && y <= MaxYear }
