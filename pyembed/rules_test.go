// The rules for what an app hands start_response exist twice: in the
// worker's C, which enforces them as the app calls it, and in the wsgi
// package, which the master uses to re-check every head a worker sends. One
// table runs through both, so they cannot drift apart.
package pyembed

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/gowsgi/gowsgi/wsgi"
)

// headCase is one start_response call: a status and at most one header
// (none when name is nil), and whether the rules accept it.
type headCase struct {
	what   string
	status string
	name   *string
	value  string
	ok     bool
}

func header(what, name, value string, ok bool) headCase {
	return headCase{what: what, status: "200 OK", name: &name, value: value, ok: ok}
}

func statusCase(what, status string, ok bool) headCase {
	return headCase{what: what, status: status, ok: ok}
}

// headRuleCases follows RFC 9112 section 4 (status-code is 3DIGIT, then SP,
// then a reason phrase of HTAB, SP, VCHAR and obs-text, possibly empty),
// RFC 9110 sections 5.1 (a field name is a token) and 5.5 (a field value
// has no control character but HTAB), and PEP 3333 ("a status code and a
// reason phrase, separated by a single space"; no hop-by-hop header).
func headRuleCases() []headCase {
	cases := []headCase{
		statusCase("plain", "200 OK", true),
		statusCase("reason of several words", "404 Not Found", true),
		statusCase("empty reason phrase", "204 ", true),
		statusCase("reason starting with a space", "200  OK", true),
		statusCase("tab in the reason", "200 OK\tfine", true),
		statusCase("obs-text in the reason", "200 Caf\xe9 \x80\xff", true),
		statusCase("lowest code", "100 Continue", true),
		statusCase("code past 599", "600 Custom", true),
		statusCase("highest code", "999 Custom", true),
		statusCase("empty", "", false),
		statusCase("no space, no reason", "200", false),
		statusCase("no space", "200OK", false),
		statusCase("tab for the space", "200\tOK", false),
		statusCase("two digits", "20 OK", false),
		statusCase("four digits", "2000 OK", false),
		statusCase("leading zero", "099 Low", false),
		statusCase("zero", "000 Zero", false),
		statusCase("letters", "abc OK", false),
		statusCase("leading space", " 200 OK", false),
		statusCase("DEL in the reason", "200 OK\x7f", false),
		statusCase("NUL in the reason", "200 O\x00K", false),
		statusCase("SOH in the reason", "200 O\x01K", false),
		statusCase("ESC in the reason", "200 O\x1bK", false),
		statusCase("CR LF in the reason", "200 OK\r\nX-Injected: 1", false),
		statusCase("LF in the reason", "200 OK\n", false),

		header("plain", "Content-Type", "text/plain; charset=utf-8", true),
		header("every token character", "!#$%&'*+-.^_`|~09azAZ", "v", true),
		header("tab in the value", "X-Tab", "a\tb", true),
		header("spaces around the value", "X-Space", " a ", true),
		header("empty value", "X-Empty", "", true),
		header("obs-text in the value", "X-Obs", "caf\xe9\x80\xff", true),
		header("DEL in the value", "X-Del", "a\x7fb", false),
		header("NUL in the value", "X-Nul", "a\x00b", false),
		header("SOH in the value", "X-Ctl", "a\x01b", false),
		header("CR in the value", "X-CR", "a\rb", false),
		header("LF in the value", "X-LF", "a\nb", false),
		header("CR LF in the value", "X-Split", "a\r\nInjected: 1", false),
		header("empty name", "", "v", false),
		header("space in the name", "Bad Name", "v", false),
		header("tab in the name", "X\tTab", "v", false),
		header("DEL in the name", "X\x7f", "v", false),
		header("NUL in the name", "X\x00", "v", false),
		header("obs-text in the name", "X-\xe9", "v", false),
		header("a name that only starts like a hop-by-hop one", "Connection-Extra", "v", true),
		// Trailer announces trailer fields end to end; PEP 3333's list
		// (RFC 2616 section 13.5.1) has "Trailers", kept as it is.
		header("Trailer", "Trailer", "X-Checksum", true),
	}
	for _, c := range `"(),/:;<=>?@[\]{}` {
		cases = append(cases, header("delimiter "+string(c)+" in the name", "X"+string(c)+"Y", "v", false))
	}
	for _, name := range []string{
		"Connection", "keep-alive", "PROXY-AUTHENTICATE", "Proxy-Authorization",
		"te", "Trailers", "Transfer-Encoding", "upgrade",
	} {
		cases = append(cases, header("hop-by-hop "+name, name, "x", false))
	}
	return cases
}

func TestStatusAndHeaderRulesMatchWSGI(t *testing.T) {
	h := newSlotHarness(t)
	for _, tc := range headRuleCases() {
		t.Run(tc.what, func(t *testing.T) {
			goErr := wsgi.CheckStatus(tc.status)
			if tc.name != nil && goErr == nil {
				goErr = wsgi.CheckHeader(*tc.name, tc.value)
			}
			assert.Equal(t, tc.ok, goErr == nil, "wsgi: %v", goErr)

			req := newRequest("GET", "/check-head", "")
			req.Vars.Add("CHECK_STATUS", tc.status)
			var wantHeaders [][2]string
			if tc.name != nil {
				req.Vars.Add("CHECK_NAME", *tc.name)
				req.Vars.Add("CHECK_VALUE", tc.value)
				wantHeaders = [][2]string{{*tc.name, tc.value}}
			}
			r := h.roundTrip(req)
			if tc.ok {
				assert.Equal(t, "accepted", string(r.body), "C refused it")
				assert.Equal(t, tc.status, r.status, "the status goes out as the app gave it")
				assert.Equal(t, wantHeaders, r.headers, "the header goes out as the app gave it")
			} else {
				assert.True(t, strings.HasPrefix(string(r.body), "ValueError: "), "C accepted it: %q", r.body)
			}
		})
	}
}
