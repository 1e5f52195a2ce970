package scenarios

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Error is the only error type Parse and Load return: one problem, one line.
// Callers tell scenario errors from other failures with errors.As (the CLI
// exits with status 2 on them).
//
// File is the file name given to Parse, "builtin:NAME" for a built-in
// scenario, or "--set" for a problem in a command-line override. Line and
// Column are 1-based and point at the offending key or value; they are 0
// when no position applies (a missing file, an override). Field is the path
// of the field in the scenario, e.g. "workloads[0].arrival.rate" or
// "hosts[0].sysctls.net.ipv4.ip_local_port_range" (sysctl keys keep their
// dots), and is empty for problems that belong to no field (a YAML syntax
// error, an unreadable file). For an override, Field is the path as the
// override spells it, e.g. "workloads.3.stop". Msg says what is wrong.
type Error struct {
	File         string
	Line, Column int
	Field        string
	Msg          string
}

// Error formats e as a single line, "FILE:LINE:COLUMN: FIELD: MSG", leaving
// out the position when Line is 0 and the field when Field is empty, e.g.
//
//	linux-burst.yaml:9:39: hosts[0].sysctls.net.ipv4.ip_local_port_range: ...
//	--set: workloads.3.stop: index 3 is out of range: workloads has 1 entry
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(printable(e.File))
	if e.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
		if e.Column > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(e.Column))
		}
	}
	if e.Field != "" {
		b.WriteString(": ")
		b.WriteString(printable(e.Field))
	}
	b.WriteString(": ")
	b.WriteString(printable(oneLine(e.Msg)))
	return b.String()
}

// printable escapes runes that are not printable (control characters,
// line and paragraph separators, invalid UTF-8) the way %q would, so that
// names taken from the input cannot break the line.
func printable(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) || r == utf8.RuneError }) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unicode.IsPrint(r) && r != utf8.RuneError {
			b.WriteRune(r)
			continue
		}
		q := strconv.QuoteRune(r)
		b.WriteString(q[1 : len(q)-1])
	}
	return b.String()
}

// oneLine folds line breaks (and the spaces around them) into single spaces
// so that messages taken from other packages keep Error to one line.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.Join(strings.Fields(s), " ")
}
