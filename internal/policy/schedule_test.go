package policy

import (
	"testing"
	"time"
)

func TestParseDays(t *testing.T) {
	tests := []struct {
		in   string
		want string
		err  bool
	}{
		{in: "mon-fri", want: "mon-fri"},
		{in: "weekdays", want: "mon-fri"},
		{in: "school-days", want: "mon-fri"},
		{in: "Mon, Wed, Fri", want: "mon wed fri"},
		{in: "monday tuesday", want: "mon tue"},
		{in: "sat-sun", want: "sat sun"},
		{in: "fri-mon", want: "mon fri-sun"},
		{in: "every-day", want: "every-day"},
		{in: "weekends", want: "sat sun"},
		{in: "", err: true},
		{in: "funday", err: true},
		{in: "mo", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			days, err := ParseDays(tt.in)
			if tt.err {
				if err == nil {
					t.Fatalf("ParseDays(%q) succeeded", tt.in)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := FormatDays(days); got != tt.want {
				t.Errorf("FormatDays = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseClock(t *testing.T) {
	for in, want := range map[string]int{"00:00": 0, "12:00": 720, "13:15": 795, "24:00": 1440, "9:05": 545} {
		got, err := ParseClock(in)
		if err != nil || got != want {
			t.Errorf("ParseClock(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "12", "12:5", "25:00", "24:01", "-1:00", "12:60", "noon"} {
		if _, err := ParseClock(bad); err == nil {
			t.Errorf("ParseClock(%q) succeeded", bad)
		}
	}
}

func TestParseSchedule(t *testing.T) {
	s, err := ParseSchedule("mon-fri", "12:00", "13:15")
	if err != nil {
		t.Fatal(err)
	}
	if s.String() != "12:00–13:15 mon-fri" {
		t.Errorf("String = %q", s.String())
	}
	if s, err := ParseSchedule("", "", ""); err != nil || !s.Always() {
		t.Errorf("empty schedule = %v, %v", s, err)
	}
	if s, err := ParseSchedule("sat", "", ""); err != nil || s.Start != 0 || s.End != 1440 {
		t.Errorf("whole-day schedule = %+v, %v", s, err)
	}
	if _, err := ParseSchedule("mon", "10:00", "10:00"); err == nil {
		t.Error("empty window accepted")
	}
}

func TestScheduleActive(t *testing.T) {
	loc := london(t)
	lunch, _ := ParseSchedule("mon-fri", "12:00", "13:15")
	night, _ := ParseSchedule("fri sat", "22:00", "06:00")
	utc := func(y int, m time.Month, d, h, min int) time.Time { return time.Date(y, m, d, h, min, 0, 0, time.UTC) }
	tests := []struct {
		name string
		s    Schedule
		at   time.Time // converted to London before checking
		want bool
	}{
		{"lunch start", lunch, utc(2026, 3, 4, 12, 0), true},
		{"lunch last minute", lunch, utc(2026, 3, 4, 13, 14), true},
		{"lunch end is exclusive", lunch, utc(2026, 3, 4, 13, 15), false},
		{"before lunch", lunch, utc(2026, 3, 4, 11, 59), false},
		{"Saturday lunch", lunch, utc(2026, 3, 7, 12, 30), false},
		// British Summer Time starts 29 March 2026 at 01:00 UTC: 12:30
		// in London is then 11:30 UTC.
		{"GMT Friday 12:30 UTC", lunch, utc(2026, 3, 27, 12, 30), true},
		{"BST Monday 11:30 UTC is 12:30 local", lunch, utc(2026, 3, 30, 11, 30), true},
		{"BST Monday 12:30 UTC is 13:30 local", lunch, utc(2026, 3, 30, 12, 30), false},
		// Clocks go back 25 October 2026 at 01:00 UTC.
		{"BST Friday 23 Oct 11:10 UTC is 12:10 local", lunch, utc(2026, 10, 23, 11, 10), true},
		{"GMT Monday 26 Oct 11:10 UTC is 11:10 local", lunch, utc(2026, 10, 26, 11, 10), false},
		{"GMT Monday 26 Oct 12:10 UTC", lunch, utc(2026, 10, 26, 12, 10), true},
		// Across midnight: Friday and Saturday nights.
		{"Friday 23:00", night, utc(2026, 3, 6, 23, 0), true},
		{"Saturday 05:59 (Friday's window)", night, utc(2026, 3, 7, 5, 59), true},
		{"Saturday 06:00", night, utc(2026, 3, 7, 6, 0), false},
		{"Saturday 21:59", night, utc(2026, 3, 7, 21, 59), false},
		{"Sunday 03:00 (Saturday's window)", night, utc(2026, 3, 8, 3, 0), true},
		{"Monday 03:00 (no Sunday window)", night, utc(2026, 3, 9, 3, 0), false},
		{"Thursday 23:00", night, utc(2026, 3, 5, 23, 0), false},
		// The night the clocks go forward: 01:30 UTC is 02:30 BST.
		{"Sunday 29 March 02:30 BST", night, utc(2026, 3, 29, 1, 30), true},
		{"Sunday 29 March 06:30 BST", night, utc(2026, 3, 29, 5, 30), false},
		{"always", Schedule{}, utc(2026, 3, 8, 3, 0), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s.Active(tt.at.In(loc)); got != tt.want {
				t.Errorf("Active(%s) = %v, want %v", tt.at.In(loc).Format("Mon 2006-01-02 15:04 MST"), got, tt.want)
			}
		})
	}
}
