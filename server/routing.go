// uWSGI's internal routing, the part real configs use, and --add-header:
// the master applies the rules to each request before the static files
// and the app see it, in order, as uWSGI's worker does
// (https://uwsgi-docs.readthedocs.io/en/latest/InternalRouting.html).
// A rule is a regular expression on one request variable (route on
// PATH_INFO, route-uri, route-qs, route-host, …) or a condition
// (route-if, route-if-not), and an action: answer at once (break,
// return, redirect), change the request (rewrite), add or remove response
// headers, or stop routing (continue). $1… in the action are the groups
// the expression matched and ${VAR} the request's variables. Go's regexp
// (RE2) reads the expressions: what PCRE alone has (look-around, back
// references) is an error at start, never a rule that silently never
// matches.
package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/gowsgi/gowsgi/wsgi"
)

// Route is one routing rule, as ParseRoute reads it.
type Route struct {
	option  string // "route", "route-if", …, for errors
	subject string // the variable a regexp rule matches; "" for conditions and route-run
	pattern *regexp.Regexp
	cond    string // route-if's condition ("equal", "regexp", …)
	args    string // the condition's arguments, before substitution
	negate  bool
	action  string
	arg     string
}

// routeSubjects are the variables each regexp rule matches.
var routeSubjects = map[string]string{
	"route": "PATH_INFO", "route-uri": "REQUEST_URI", "route-qs": "QUERY_STRING",
	"route-host": "HTTP_HOST", "route-remote-addr": "REMOTE_ADDR", "route-user-agent": "HTTP_USER_AGENT",
	"route-referer": "HTTP_REFERER", "route-remote-user": "REMOTE_USER",
}

// RouteSubject is the request variable the regexp rule option matches.
func RouteSubject(option string) string { return routeSubjects[option] }

// RouteOptions are the routing options ParseRoute reads.
var RouteOptions = []string{"route", "route-uri", "route-qs", "route-host", "route-remote-addr",
	"route-user-agent", "route-referer", "route-remote-user", "route-if", "route-if-not", "route-run"}

// routeActions are the actions gowsgi runs, with what they take.
var routeActions = map[string]bool{
	"break": true, "return": true, "break-with-status": true, "continue": true, "last": true,
	"redirect": true, "redirect-302": true, "redirect-permanent": true, "redirect-301": true,
	"rewrite": true, "rewrite-last": true, "addheader": true, "delheader": true, "remheader": true,
}

// routeConditions are route-if's conditions gowsgi evaluates.
var routeConditions = map[string]bool{
	"equal": true, "isequal": true, "eq": true, "==": true, "startswith": true, "endswith": true,
	"contains": true, "contain": true, "regexp": true, "re": true, "empty": true,
	"exists": true, "isfile": true, "isdir": true,
}

// routingAlternative ends every refusal: what to do instead.
const routingAlternative = "route it in the web server in front (nginx location, HAProxy acl) or in the app"

// ParseRoute reads one routing option's value: "REGEXP ACTION:ARG" (route,
// route-uri, …), "CONDITION:ARGS ACTION:ARG" (route-if, route-if-not) or
// "ACTION:ARG" (route-run). Like uWSGI it splits at the first space, so
// neither the expression nor the condition holds one.
func ParseRoute(option, value string) (Route, error) {
	r := Route{option: option}
	command := value
	if option != "route-run" {
		head, rest, ok := strings.Cut(value, " ")
		if !ok {
			return r, fmt.Errorf("--%s %s: not %q", option, value, "MATCH ACTION:ARG")
		}
		command = rest
		switch {
		case option == "route-if" || option == "route-if-not":
			cond, args, ok := strings.Cut(head, ":")
			if !ok || !routeConditions[cond] {
				return r, fmt.Errorf("--%s %s: gowsgi evaluates the conditions equal, startswith, endswith, contains, regexp, empty, exists, isfile and isdir, not %q; %s", option, value, cond, routingAlternative)
			}
			r.cond, r.args, r.negate = cond, args, option == "route-if-not"
		default:
			r.subject = routeSubjects[option]
			re, err := regexp.Compile(head)
			if err != nil {
				return r, fmt.Errorf("--%s %s: %w (gowsgi reads RE2 expressions: no look-around or back references)", option, value, err)
			}
			r.pattern = re
		}
	}
	action, arg, ok := strings.Cut(command, ":")
	if !ok && action != "break" && action != "continue" && action != "last" {
		return r, fmt.Errorf("--%s %s: the action %q has no \":\"", option, value, command)
	}
	if !routeActions[action] {
		return r, fmt.Errorf("--%s %s: gowsgi runs the actions break, return, continue, redirect, redirect-permanent, rewrite, rewrite-last, addheader and delheader, not %q; %s", option, value, action, routingAlternative)
	}
	r.action, r.arg = action, arg
	if err := r.checkArg(); err != nil {
		return r, fmt.Errorf("--%s %s: %w", option, value, err)
	}
	return r, nil
}

// checkArg refuses at start what the action could never send.
func (r Route) checkArg() error {
	switch r.action {
	case "return", "break-with-status":
		if code, err := strconv.Atoi(r.arg); err != nil || http.StatusText(code) == "" {
			return fmt.Errorf("return needs a known HTTP status code, not %q", r.arg)
		}
	case "break":
		if r.arg != "" && wsgi.CheckStatus(breakStatus(r.arg)) != nil {
			return fmt.Errorf("break:%s is not a status such as 403 Forbidden", r.arg)
		}
	case "addheader":
		if name, _, ok := strings.Cut(r.arg, ":"); !ok || !validHeaderName(name) {
			return fmt.Errorf("addheader:%s is not Name: value", r.arg)
		}
	}
	return nil
}

// breakStatus is the status line break:ARG sends: ARG, with the code's
// reason phrase when it gives none.
func breakStatus(arg string) string {
	if code, err := strconv.Atoi(arg); err == nil {
		return arg + " " + http.StatusText(code)
	}
	return arg
}

// validHeaderName says whether name may be sent as a response header.
func validHeaderName(name string) bool {
	return wsgi.CheckHeader(name, "") == nil
}

// ParseAddHeader reads --add-header's "Name: value".
func ParseAddHeader(value string) (name, headerValue string, err error) {
	name, headerValue, ok := strings.Cut(value, ":")
	headerValue = strings.TrimSpace(headerValue)
	if !ok || wsgi.CheckHeader(name, headerValue) != nil {
		return "", "", fmt.Errorf("--add-header %q: not \"Name: value\" with a header an app may send", value)
	}
	return name, headerValue, nil
}

// routeOutcome is what applying a rule's action leaves to do.
type routeOutcome int

const (
	routeNext     routeOutcome = iota // go on with the next rule
	routeContinue                     // stop routing; the request goes on
	routeAnswered                     // the request is answered
)

// errRouteBreak ends a request "break" stopped without an answer: the
// connection is closed, as uWSGI closes it.
var errRouteBreak = errors.New("server: a routing rule broke off the request")

// routingHandler applies the rules, and adds the headers, to the requests
// it passes to next.
type routingHandler struct {
	routes  []Route
	headers [][2]string // --add-header, on every response
	next    wsgi.Handler
}

// routeRequest is one request's routing state: the header changes its
// rules asked for.
type routeRequest struct {
	add    [][2]string
	remove []string
}

func (h *routingHandler) ServeWSGI(ctx context.Context, w wsgi.ResponseWriter, req *wsgi.Request) error {
	var state routeRequest
	hw := &headerWriter{ResponseWriter: w, add: h.headers, state: &state}
	for _, r := range h.routes {
		groups, matched := r.match(req)
		if !matched {
			continue
		}
		outcome, err := r.apply(hw, req, &state, groups)
		if outcome == routeAnswered || err != nil {
			return err
		}
		if outcome == routeContinue {
			break
		}
	}
	return h.next.ServeWSGI(ctx, hw, req)
}

// match evaluates the rule's expression or condition; groups are what $1…
// stand for.
func (r Route) match(req *wsgi.Request) (groups []string, ok bool) {
	switch {
	case r.pattern != nil:
		subject, _ := req.Vars.Get(r.subject)
		groups = r.pattern.FindStringSubmatch(subject)
		return groups, groups != nil
	case r.cond != "":
		groups, ok = r.condition(req)
		return groups, ok != r.negate
	}
	return nil, true // route-run
}

// condition evaluates route-if's condition "LEFT;RIGHT" (or "VALUE").
func (r Route) condition(req *wsgi.Request) ([]string, bool) {
	left, right, _ := strings.Cut(r.args, ";")
	left = expandVars(left, nil, req)
	switch r.cond {
	case "regexp", "re":
		re, err := regexp.Compile(right)
		if err != nil {
			return nil, false
		}
		groups := re.FindStringSubmatch(left)
		return groups, groups != nil
	case "empty":
		return nil, expandVars(r.args, nil, req) == ""
	case "exists", "isfile", "isdir":
		info, err := os.Stat(expandVars(r.args, nil, req))
		switch {
		case err != nil:
			return nil, false
		case r.cond == "isfile":
			return nil, info.Mode().IsRegular()
		case r.cond == "isdir":
			return nil, info.IsDir()
		}
		return nil, true
	}
	right = expandVars(right, nil, req)
	switch r.cond {
	case "startswith":
		return nil, strings.HasPrefix(left, right)
	case "endswith":
		return nil, strings.HasSuffix(left, right)
	case "contains", "contain":
		return nil, strings.Contains(left, right)
	}
	return nil, left == right // equal and its aliases
}

// apply runs the rule's action.
func (r Route) apply(w wsgi.ResponseWriter, req *wsgi.Request, state *routeRequest, groups []string) (routeOutcome, error) {
	arg := expandVars(r.arg, groups, req)
	switch r.action {
	case "continue", "last":
		return routeContinue, nil
	case "break":
		if arg == "" {
			return routeAnswered, errRouteBreak
		}
		return routeAnswered, answerStatus(w, breakStatus(arg), "")
	case "return", "break-with-status":
		code, _ := strconv.Atoi(arg)
		return routeAnswered, answerStatus(w, arg+" "+http.StatusText(code), http.StatusText(code))
	case "redirect", "redirect-302":
		return routeAnswered, answerStatus(w, "302 Found", "Moved", "Location", arg)
	case "redirect-permanent", "redirect-301":
		return routeAnswered, answerStatus(w, "301 Moved Permanently", "Moved Permanently", "Location", arg)
	case "rewrite", "rewrite-last":
		rewrite(req, arg)
		if r.action == "rewrite-last" {
			return routeContinue, nil
		}
	case "addheader":
		name, value, _ := strings.Cut(arg, ":")
		state.add = append(state.add, [2]string{name, strings.TrimSpace(value)})
	case "delheader", "remheader":
		state.remove = append(state.remove, arg)
	}
	return routeNext, nil
}

// answerStatus answers with status, a text/plain body and header pairs.
func answerStatus(w wsgi.ResponseWriter, status, body string, extra ...string) error {
	var headers wsgi.Vars
	headers.Add("Content-Type", "text/plain")
	headers.Add("Content-Length", strconv.Itoa(len(body)))
	for i := 0; i+1 < len(extra); i += 2 {
		headers.Add(extra[i], extra[i+1])
	}
	if err := w.WriteHead(status, headers.Block()); err != nil || body == "" {
		return err
	}
	return w.WriteBody([]byte(body))
}

// rewrite sets PATH_INFO (percent-decoded) and QUERY_STRING from target,
// "PATH[?QUERY]"; a query in target goes before the request's own, as
// uWSGI joins them.
func rewrite(req *wsgi.Request, target string) {
	path, query, hasQuery := strings.Cut(target, "?")
	oldQuery, _ := req.Vars.Get("QUERY_STRING")
	switch {
	case hasQuery && oldQuery != "":
		query += "&" + oldQuery
	case !hasQuery:
		query = oldQuery
	}
	if decoded, err := url.PathUnescape(path); err == nil {
		path = decoded
	}
	setVars(req, map[string]string{"PATH_INFO": path, "QUERY_STRING": query})
}

// setVars replaces (or adds) the variables of req named in set.
func setVars(req *wsgi.Request, set map[string]string) {
	var out wsgi.Vars
	_ = wsgi.EachVar(req.Vars.Block(), func(key, value []byte) bool {
		if v, ok := set[string(key)]; ok {
			out.Add(string(key), v)
			delete(set, string(key))
		} else {
			out.AddBytes(key, value)
		}
		return true
	})
	for key, value := range set {
		out.Add(key, value)
	}
	req.Vars = out
}

// expandVars replaces $1… with groups and ${NAME} with the request's
// variable NAME (empty when it has none), as uWSGI's routing does.
func expandVars(s string, groups []string, req *wsgi.Request) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		next := s[i+1]
		switch {
		case next >= '0' && next <= '9':
			if n := int(next - '0'); n < len(groups) {
				b.WriteString(groups[n])
			}
			i++
		case next == '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			value, _ := req.Vars.Get(s[i+2 : i+2+end])
			b.WriteString(value)
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// headerWriter adds the --add-header headers and those the rules added to
// the head, and drops those the rules removed.
type headerWriter struct {
	wsgi.ResponseWriter
	add   [][2]string
	state *routeRequest
}

func (hw *headerWriter) WriteHead(status string, headers []byte) error {
	if len(hw.add) == 0 && len(hw.state.add) == 0 && len(hw.state.remove) == 0 {
		return hw.ResponseWriter.WriteHead(status, headers)
	}
	var out wsgi.Vars
	removed := func(name string) bool {
		for _, r := range hw.state.remove {
			if strings.EqualFold(r, name) {
				return true
			}
		}
		return false
	}
	_ = wsgi.EachVar(headers, func(name, value []byte) bool {
		if !removed(string(name)) {
			out.AddBytes(name, value)
		}
		return true
	})
	for _, list := range [][][2]string{hw.add, hw.state.add} {
		for _, h := range list {
			if !removed(h[0]) {
				out.Add(h[0], h[1])
			}
		}
	}
	return hw.ResponseWriter.WriteHead(status, out.Block())
}
