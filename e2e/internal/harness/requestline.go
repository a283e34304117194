package harness

import (
	"regexp"
	"strconv"
	"strings"
)

// requestLinePattern is uWSGI's request line, gowsgi's default access
// line; --memory-report's prefix may come before it. The client may hold
// spaces: with --log-x-forwarded-for it is the header's whole value.
var requestLinePattern = regexp.MustCompile(`\[pid: (\d+)\|app: (-?\d+)\|req: (\d+)/(\d+)\] (.*?) \(([^)]*)\) ` +
	`\{(\d+) vars in (\d+) bytes\} \[(.{24})\] (\S+) (\S+) => generated (\d+) bytes in (\d+) (msecs|micros) ` +
	`\((\S+) (\d+)\) (\d+) headers in (\d+) bytes \((\d+) switches on core (\d+)\)$`)

// RequestLine is one request line, field by field.
type RequestLine struct {
	PID, App                    int
	WorkerRequests, AllRequests int
	Addr, User                  string
	Vars, VarBytes              int
	Date                        string // ctime's, as uWSGI writes it
	Method, URI                 string
	Bytes                       int
	Time                        int
	Unit                        string // msecs, or micros with --log-micros
	Proto                       string
	Status                      int
	Headers, HeadBytes          int
	Switches, Core              int
	Line                        string // the whole line
}

// ParseRequestLine reads line as a request line; ok is false when it is
// not one.
func ParseRequestLine(line string) (RequestLine, bool) {
	m := requestLinePattern.FindStringSubmatch(line)
	if m == nil {
		return RequestLine{}, false
	}
	n := func(i int) int { v, _ := strconv.Atoi(m[i]); return v }
	return RequestLine{PID: n(1), App: n(2), WorkerRequests: n(3), AllRequests: n(4), Addr: m[5], User: m[6],
		Vars: n(7), VarBytes: n(8), Date: m[9], Method: m[10], URI: m[11], Bytes: n(12), Time: n(13), Unit: m[14],
		Proto: m[15], Status: n(16), Headers: n(17), HeadBytes: n(18), Switches: n(19), Core: n(20), Line: line}, true
}

// RequestLines returns the request lines in logs, in order.
func RequestLines(logs string) []RequestLine {
	var lines []RequestLine
	for _, line := range strings.Split(logs, "\n") {
		if l, ok := ParseRequestLine(line); ok {
			lines = append(lines, l)
		}
	}
	return lines
}

// RequestLinesFor returns the request lines in logs for method and uri.
func RequestLinesFor(logs, method, uri string) []RequestLine {
	var lines []RequestLine
	for _, l := range RequestLines(logs) {
		if l.Method == method && l.URI == uri {
			lines = append(lines, l)
		}
	}
	return lines
}
