package directory

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// schoolCSV returns a SIMS-style export of n pupils.
func schoolCSV(n int) string {
	var b strings.Builder
	b.WriteString("UPN,Adno,Legal Surname,Legal Forename,Preferred Forename,Year,Reg,DOB\r\n")
	years := []string{"N", "R", "1", "2", "3", "4", "5", "6"}
	for i := 0; i < n; i++ {
		y := years[i%len(years)]
		fmt.Fprintf(&b, "A82%010d,%06d,\"Surname%d, Jr\",Forename%d,,%s,%sA,01/01/2015\r\n", i, i, i, i, y, y)
	}
	return b.String()
}

func BenchmarkParseCSV(b *testing.B) {
	data := schoolCSV(2000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseCSV(strings.NewReader(data), "school.csv", ""); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkImportCSV re-imports a 2,000-pupil school whose year groups
// have all moved: every pupil is updated and regrouped.
func BenchmarkImportCSV(b *testing.B) {
	d, _ := newTestDirectory(b)
	withRules(b, d)
	ctx := context.Background()
	first := schoolCSV(2000)
	second := strings.NewReplacer(",R,", ",1,", ",N,", ",R,").Replace(first)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		data := first
		if i%2 == 1 {
			data = second
		}
		if _, err := d.ImportCSV(ctx, strings.NewReader(data), "school.csv", ImportOptions{Actor: "bench"}); err != nil {
			b.Fatal(err)
		}
	}
}
