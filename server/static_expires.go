// The Expires header of static files (uWSGI's --static-expires* options):
// a rule matches the file's real path, PATH_INFO, REQUEST_URI or its
// content type and gives the seconds the file stays fresh, from now or
// from the file's modification time. uWSGI tries the lists in this order
// and adds one header per kind that matches; gowsgi adds the first match's,
// so a response carries one Expires header.
package server

import (
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gowsgi/gowsgi/wsgi"
)

// ExpiresRule is one --static-expires* value.
type ExpiresRule struct {
	// On is what the rule matches: "file", "path-info", "uri" or "type".
	On      string
	Pattern *regexp.Regexp // for file, path-info and uri
	Type    string         // for type
	Seconds int64
	// FromMtime counts the seconds from the file's modification time (the
	// -mtime options) instead of from now.
	FromMtime bool
}

// expiresOrder is the order uWSGI tries the kinds in.
var expiresOrder = []string{"file", "path-info", "uri", "type"}

// ParseExpiresRule reads the option's value: "REGEXP SECONDS", or for
// --static-expires-type "TYPE=SECONDS". on and fromMtime come from the
// option's name.
func ParseExpiresRule(option, on string, fromMtime bool, value string) (ExpiresRule, error) {
	r := ExpiresRule{On: on, FromMtime: fromMtime}
	sep := " "
	if on == "type" {
		sep = "="
	}
	key, seconds, ok := strings.Cut(value, sep)
	n, err := strconv.ParseInt(strings.TrimSpace(seconds), 10, 64)
	if !ok || err != nil || key == "" {
		return r, fmt.Errorf("--%s %q: not %s", option, value, map[bool]string{true: "TYPE=SECONDS", false: "REGEXP SECONDS"}[on == "type"])
	}
	r.Seconds = n
	if on == "type" {
		r.Type = key
		return r, nil
	}
	if r.Pattern, err = regexp.Compile(key); err != nil {
		return r, fmt.Errorf("--%s %q: %w (gowsgi reads RE2 expressions)", option, value, err)
	}
	return r, nil
}

// expiresHeader returns the Expires value for a file, or "" when no rule
// matches. real is the file's real path, mediaType its content type
// without parameters.
func expiresHeader(rules []ExpiresRule, req *wsgi.Request, real, mediaType string, modified, now time.Time) string {
	pathInfo, _ := req.Vars.Get("PATH_INFO")
	uri, _ := req.Vars.Get("REQUEST_URI")
	subjects := map[string]string{"file": real, "path-info": pathInfo, "uri": uri}
	for _, on := range expiresOrder {
		for _, r := range rules {
			if r.On != on || !r.matches(subjects[on], mediaType) {
				continue
			}
			from := now
			if r.FromMtime {
				from = modified
			}
			return from.Add(time.Duration(r.Seconds) * time.Second).UTC().Format(http.TimeFormat)
		}
	}
	return ""
}

func (r ExpiresRule) matches(subject, mediaType string) bool {
	if r.On == "type" {
		return r.Type == mediaType
	}
	return r.Pattern.MatchString(subject)
}
