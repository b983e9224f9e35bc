package policy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Schedule is a weekly time window in the school's time zone: on the
// given days, from Start until End (minutes after midnight, local wall
// clock). A window whose End is not after its Start runs past midnight
// into the next day, and belongs to the day it starts on: "Fri 22:00–06:00"
// covers Friday night and early Saturday. Because the window is read off
// the local wall clock, it follows the clocks across daylight-saving
// changes.
type Schedule struct {
	// Days holds the days the window starts on, indexed by time.Weekday.
	Days [7]bool
	// Start and End are minutes after midnight, 0–1440.
	Start, End int
}

// Always reports whether the schedule is empty, meaning "at any time".
func (s Schedule) Always() bool { return s == Schedule{} }

// Active reports whether local time t (already in the school's zone) falls
// in the window.
func (s Schedule) Active(t time.Time) bool {
	if s.Always() {
		return true
	}
	min := t.Hour()*60 + t.Minute()
	day := t.Weekday()
	if s.End > s.Start {
		return s.Days[day] && min >= s.Start && min < s.End
	}
	// Across midnight: the evening part today, or the morning part of a
	// window that started yesterday.
	if s.Days[day] && min >= s.Start {
		return true
	}
	yesterday := (day + 6) % 7
	return s.Days[yesterday] && min < s.End
}

var dayNames = [7]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// ParseDays reads days such as "mon-fri", "mon tue thu", "weekdays",
// "weekends", "school-days" (Monday to Friday) or "every-day".
func ParseDays(s string) ([7]bool, error) {
	var days [7]bool
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return days, errors.New("no days given")
	}
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' }) {
		switch f {
		case "weekdays", "school-days", "schooldays":
			for d := time.Monday; d <= time.Friday; d++ {
				days[d] = true
			}
			continue
		case "weekends", "weekend":
			days[time.Saturday], days[time.Sunday] = true, true
			continue
		case "every-day", "everyday", "daily", "all":
			for d := range days {
				days[d] = true
			}
			continue
		}
		from, to, isRange := strings.Cut(f, "-")
		a, err := parseDay(from)
		if err != nil {
			return days, err
		}
		if !isRange {
			days[a] = true
			continue
		}
		b, err := parseDay(to)
		if err != nil {
			return days, err
		}
		for d := a; ; d = (d + 1) % 7 {
			days[d] = true
			if d == b {
				break
			}
		}
	}
	return days, nil
}

func parseDay(s string) (time.Weekday, error) {
	if len(s) >= 3 {
		for i, n := range dayNames {
			if strings.HasPrefix(s, n) {
				return time.Weekday(i), nil
			}
		}
	}
	return 0, fmt.Errorf("unknown day %q (use mon, tue, wed, thu, fri, sat, sun)", s)
}

// FormatDays writes days compactly: "mon-fri", "sat sun", "every-day".
func FormatDays(days [7]bool) string {
	order := []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday, time.Saturday, time.Sunday}
	all := true
	for _, d := range days {
		all = all && d
	}
	if all {
		return "every-day"
	}
	var parts []string
	for i := 0; i < len(order); {
		if !days[order[i]] {
			i++
			continue
		}
		j := i
		for j+1 < len(order) && days[order[j+1]] {
			j++
		}
		switch {
		case j == i:
			parts = append(parts, dayNames[order[i]])
		case j == i+1:
			parts = append(parts, dayNames[order[i]], dayNames[order[j]])
		default:
			parts = append(parts, dayNames[order[i]]+"-"+dayNames[order[j]])
		}
		i = j + 1
	}
	return strings.Join(parts, " ")
}

// ParseClock reads a wall-clock time "HH:MM" (24-hour; "24:00" is the end
// of the day) as minutes after midnight.
func ParseClock(s string) (int, error) {
	hh, mm, ok := strings.Cut(strings.TrimSpace(s), ":")
	h, err1 := strconv.Atoi(hh)
	m, err2 := strconv.Atoi(mm)
	if !ok || err1 != nil || err2 != nil || len(mm) != 2 || h < 0 || m < 0 || m > 59 || h > 24 || h == 24 && m != 0 {
		return 0, fmt.Errorf("bad time %q (want HH:MM, 24-hour)", s)
	}
	return h*60 + m, nil
}

// FormatClock writes minutes after midnight as "HH:MM".
func FormatClock(min int) string { return fmt.Sprintf("%02d:%02d", min/60, min%60) }

// ParseSchedule builds a schedule from its stored parts. All three empty
// means "at any time".
func ParseSchedule(days, start, end string) (Schedule, error) {
	if strings.TrimSpace(days) == "" && strings.TrimSpace(start) == "" && strings.TrimSpace(end) == "" {
		return Schedule{}, nil
	}
	var s Schedule
	var err error
	if s.Days, err = ParseDays(days); err != nil {
		return s, err
	}
	if strings.TrimSpace(start) == "" && strings.TrimSpace(end) == "" {
		s.Start, s.End = 0, 24*60
		return s, nil
	}
	if s.Start, err = ParseClock(start); err != nil {
		return s, err
	}
	if s.End, err = ParseClock(end); err != nil {
		return s, err
	}
	if s.Start == s.End {
		return s, fmt.Errorf("schedule %s–%s is empty", start, end)
	}
	return s, nil
}

// String describes the schedule: "12:00–13:15 mon-fri".
func (s Schedule) String() string {
	if s.Always() {
		return "any time"
	}
	if s.Start == 0 && s.End == 24*60 {
		return FormatDays(s.Days)
	}
	return FormatClock(s.Start) + "–" + FormatClock(s.End) + " " + FormatDays(s.Days)
}
