package directory

import (
	"fmt"
	"sort"
	"strings"
)

// MaxProblems is how many problems an ImportError lists; the rest are
// only counted.
const MaxProblems = 20

// Problem is one thing wrong with a people file, at a line of it.
type Problem struct {
	File string
	// Line is the physical line in the file (the header is line 1); 0
	// means the file as a whole.
	Line int
	Msg  string
}

// Error formats the problem as "file:line: what is wrong", or "file: what
// is wrong" for the file as a whole.
func (p Problem) Error() string {
	if p.Line == 0 {
		return fmt.Sprintf("%s: %s", p.File, p.Msg)
	}
	return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg)
}

// ImportError is a people file that cannot be imported: up to MaxProblems
// problems in line order and a count of the rest. Nothing was changed.
// errors.Is(err, ErrInvalid) holds for it.
type ImportError struct {
	Problems []Problem
	// Omitted counts problems beyond MaxProblems.
	Omitted int
}

// Error lists the problems, one a line.
func (e *ImportError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(p.Error())
	}
	if e.Omitted > 0 {
		fmt.Fprintf(&b, "\n... and %d more problems", e.Omitted)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrInvalid) true: the file, not the system, is
// at fault.
func (e *ImportError) Is(target error) bool { return target == ErrInvalid }

// problems collects the problems of one file.
type problems struct {
	file string
	list []Problem
}

// add records a problem at a line.
func (ps *problems) add(line int, format string, args ...any) {
	ps.list = append(ps.list, Problem{File: ps.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// err returns nil or an *ImportError with the problems in line order.
func (ps *problems) err() error {
	if len(ps.list) == 0 {
		return nil
	}
	list := append([]Problem(nil), ps.list...)
	sort.SliceStable(list, func(i, j int) bool { return list[i].Line < list[j].Line })
	e := &ImportError{Problems: list}
	if len(list) > MaxProblems {
		e.Problems, e.Omitted = list[:MaxProblems], len(list)-MaxProblems
	}
	return e
}
