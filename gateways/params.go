// Completing the CGI variables a web server sends over uwsgi, SCGI, FastCGI
// or CGI into the environ PEP 3333 requires, so that the same request gives
// the app the same environ through every gateway.
package gateways

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"

	"github.com/gowsgi/gowsgi/wsgi"
)

var errNoMethod = errors.New("gateways: the web server sent no REQUEST_METHOD")

// The variables params tracks, as bits of params.seen.
const (
	seenScriptName = 1 << iota
	seenPathInfo
	seenQueryString
	seenServerName
	seenServerPort
	seenServerProtocol
	seenRequestMethod
)

// params collects a web server's variables into vars, in the order they
// came, and notes what finish needs to complete them. The zero params is
// not usable; call newParams.
type params struct {
	vars          *wsgi.Vars
	seen          uint
	contentLength int64 // -1 when absent or empty
	https         bool
	scheme        []byte // UWSGI_SCHEME or wsgi.url_scheme, when sent
	requestURI    []byte
	documentURI   []byte
}

// newParams returns a params that adds to vars, which it resets.
func newParams(vars *wsgi.Vars) params {
	vars.Reset()
	return params{vars: vars, contentLength: -1}
}

// add takes one variable as the web server sent it.
func (p *params) add(key, value []byte) error {
	switch string(key) {
	case "CONTENT_LENGTH":
		if len(value) == 0 {
			return nil // nginx sends an empty one for a request without a body
		}
		n, err := strconv.ParseInt(string(value), 10, 64)
		if err != nil || value[0] < '0' || value[0] > '9' {
			return fmt.Errorf("gateways: CONTENT_LENGTH %.20q is not a length", value)
		}
		p.contentLength = n
	case "UWSGI_SCHEME", "wsgi.url_scheme":
		// Said once, as wsgi.url_scheme, by finish.
		p.scheme = value
		return nil
	case "HTTPS":
		p.https = isOn(value)
	case "REQUEST_SCHEME":
		p.https = p.https || string(value) == "https"
	case "REQUEST_URI":
		p.requestURI = value
	case "DOCUMENT_URI":
		p.documentURI = value
	case "SCRIPT_NAME":
		p.seen |= seenScriptName
	case "PATH_INFO":
		p.seen |= seenPathInfo
	case "QUERY_STRING":
		p.seen |= seenQueryString
	case "SERVER_NAME":
		p.seen |= seenServerName
	case "SERVER_PORT":
		p.seen |= seenServerPort
	case "SERVER_PROTOCOL":
		p.seen |= seenServerProtocol
	case "REQUEST_METHOD":
		p.seen |= seenRequestMethod
	}
	p.vars.AddBytes(key, value)
	return p.vars.Err()
}

// isOn reads a web server's HTTPS flag: Apache and nginx send "on", some
// servers "1" or "yes".
func isOn(v []byte) bool {
	return bytes.EqualFold(v, []byte("on")) || bytes.Equal(v, []byte("1")) || bytes.EqualFold(v, []byte("yes"))
}

// finish adds what PEP 3333 requires and the web server left out.
//
// nginx's stock scgi_params and fastcgi_params send no PATH_INFO (and
// fastcgi_params sets SCRIPT_NAME to the whole path). With no PATH_INFO the
// app is taken to be mounted at "/": SCRIPT_NAME is "" and PATH_INFO the
// request's decoded path, from DOCUMENT_URI or else REQUEST_URI. A web
// server that mounts the app elsewhere sends both variables.
func (p *params) finish() error {
	if p.seen&seenRequestMethod == 0 {
		return errNoMethod
	}
	path, query := splitTarget(string(p.requestURI))
	if p.seen&seenPathInfo == 0 {
		if len(p.documentURI) > 0 {
			path = string(p.documentURI)
		} else {
			path = unescapePath(path)
		}
		p.vars.Add("PATH_INFO", path)
		p.vars.Add("SCRIPT_NAME", "")
		p.seen |= seenScriptName
	}
	p.addDefault(seenScriptName, "SCRIPT_NAME", "")
	p.addDefault(seenQueryString, "QUERY_STRING", query)
	p.addDefault(seenServerName, "SERVER_NAME", "localhost")
	p.addDefault(seenServerPort, "SERVER_PORT", "80")
	p.addDefault(seenServerProtocol, "SERVER_PROTOCOL", "HTTP/1.0")
	p.vars.Add("wsgi.url_scheme", p.urlScheme())
	return p.vars.Err()
}

func (p *params) addDefault(bit uint, key, value string) {
	if p.seen&bit == 0 {
		p.vars.Add(key, value)
	}
}

func (p *params) urlScheme() string {
	switch {
	case len(p.scheme) > 0:
		return string(p.scheme)
	case p.https:
		return "https"
	}
	return "http"
}
