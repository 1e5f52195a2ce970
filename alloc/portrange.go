package alloc

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxPort is the largest TCP/UDP port number (ports are 16-bit).
const MaxPort = 65535

// NumPorts is the number of distinct port numbers, 0..MaxPort.
const NumPorts = MaxPort + 1

// Range is an inclusive range of ports [Low, High], the shape of Linux's
// net.ipv4.ip_local_port_range (two numbers, both ends usable) and of BSD's
// net.inet.ip.portrange.first/last.
//
// A valid Range has 1 <= Low <= High <= 65535 (see Validate). The zero Range
// is invalid: port 0 means "pick a port for me" in bind() and can never be
// handed out.
type Range struct{ Low, High uint16 }

// RangeError is the error of ParseRange and Range.Validate. Error names the
// range, "alloc: port range 61000-32768: low 61000 is above high 32768"; Err
// alone, "low 61000 is above high 32768", suits a caller that already shows
// the setting and its value (a scenario's file:line:column: field: error).
type RangeError struct {
	Range string // LOW-HIGH, or the quoted text ParseRange could not read
	Err   error  // what is wrong with it
}

// Error returns "alloc: port range RANGE: ERR".
func (e *RangeError) Error() string { return "alloc: port range " + e.Range + ": " + e.Err.Error() }

// Unwrap returns Err.
func (e *RangeError) Unwrap() error { return e.Err }

// ParseRange parses the kernel's text form of ip_local_port_range: two decimal
// numbers "LOW HIGH" separated by any run of whitespace (the kernel prints a
// tab, e.g. "32768\t60999\n"; leading and trailing whitespace, including the
// trailing newline of a /proc read, is ignored). The result is validated with
// Validate.
//
// Only plain decimal digits are accepted. The kernel parses the sysctl with
// base 0 (proc_get_long -> strtoul), so "010" would mean 8 there; rather than
// silently disagree with the kernel, numbers with a leading zero, a sign or a
// 0x prefix are rejected with an error naming the bad field.
//
// Errors: wrong number of fields, a field that is not a decimal number, a
// value above 65535, or any Validate failure.
func ParseRange(s string) (Range, error) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return Range{}, &RangeError{Range: strconv.Quote(s), Err: fmt.Errorf("want two numbers \"LOW HIGH\", got %d field(s)", len(f))}
	}
	low, err := parsePort(f[0])
	if err != nil {
		return Range{}, &RangeError{Range: strconv.Quote(s), Err: fmt.Errorf("low: %w", err)}
	}
	high, err := parsePort(f[1])
	if err != nil {
		return Range{}, &RangeError{Range: strconv.Quote(s), Err: fmt.Errorf("high: %w", err)}
	}
	r := Range{Low: uint16(low), High: uint16(high)}
	if err := r.Validate(); err != nil {
		return Range{}, err
	}
	return r, nil
}

// Validate reports whether r is usable as an ephemeral range: 1 <= Low <=
// High <= 65535 (High <= 65535 holds by type). The kernel's
// ipv4_local_port_range handler enforces the same shape (low <= high; low at
// least 1, and in fact at least ip_unprivileged_port_start, which is policy
// left to the OS models). Low == High, a one-port range, is allowed as it is in
// the kernel.
//
// The error says what is wrong, e.g. "low 61000 is above high 32768".
func (r Range) Validate() error {
	if r.Low == 0 {
		return &RangeError{Range: r.String(), Err: errors.New("low 0 is below 1 (port 0 means \"any port\" and cannot be allocated)")}
	}
	if r.Low > r.High {
		return &RangeError{Range: r.String(), Err: fmt.Errorf("low %d is above high %d", r.Low, r.High)}
	}
	return nil
}

// Size is the number of ports in r, High-Low+1, computed in int so that the
// full range 1-65535 does not overflow. It is not meaningful for an invalid
// Range with Low > High (it is then <= 0).
func (r Range) Size() int { return int(r.High) - int(r.Low) + 1 }

// Contains reports whether port p lies in [Low, High]. p is an int so that
// callers can ask about p+1 or p-1 without wrapping.
func (r Range) Contains(p int) bool { return int(r.Low) <= p && p <= int(r.High) }

// String formats r as "LOW-HIGH", e.g. "32768-60999" (the dash form used in
// ip_local_reserved_ports and in reports, not the tab form of /proc).
func (r Range) String() string {
	b := make([]byte, 0, 11)
	b = strconv.AppendUint(b, uint64(r.Low), 10)
	b = append(b, '-')
	b = strconv.AppendUint(b, uint64(r.High), 10)
	return string(b)
}

// parsePort parses one port number in strict decimal: digits only, no sign,
// no leading zero (except "0" itself), value <= MaxPort. It is shared by
// ParseRange and ParsePortList so both sysctl formats agree on what a number
// is.
func parsePort(s string) (int, error) {
	if s == "" {
		return 0, fmt.Errorf("empty number")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%q is not a decimal port number", s)
		}
	}
	if len(s) > 1 && s[0] == '0' {
		// The kernel reads a leading 0 as octal (strtoul base 0); refuse
		// instead of guessing which meaning the user had in mind.
		return 0, fmt.Errorf("%q has a leading zero (the kernel would read it as octal)", s)
	}
	if len(s) > len("65535") {
		return 0, fmt.Errorf("port %s is above %d", s, MaxPort)
	}
	v, _ := strconv.Atoi(s) // cannot fail: at most 5 ASCII digits
	if v > MaxPort {
		return 0, fmt.Errorf("port %d is above %d", v, MaxPort)
	}
	return v, nil
}
