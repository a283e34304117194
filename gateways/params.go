// Completing the CGI variables a web server sends over uwsgi, SCGI, FastCGI
// or CGI into the environ PEP 3333 requires, so that the same request gives
// the app the same environ through every gateway.
package gateways

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/gowsgi/gowsgi/wsgi"
)

var (
	errNoMethod       = errors.New("gateways: the web server sent no REQUEST_METHOD")
	errEmptyVarName   = errors.New("gateways: the web server sent a variable with an empty name")
	errLengthConflict = errors.New("gateways: the web server sent two CONTENT_LENGTH values that differ")
)

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
	// scriptFilename is SCRIPT_FILENAME, where Apache's mod_proxy tells
	// the path it maps a request to (apacheProxyPath).
	scriptFilename []byte
	// scriptName and pathInfo are held back until finish, which may
	// repair their split.
	scriptName, pathInfo string
	// scriptIsMount says SCRIPT_NAME is the app's mount point even when no
	// PATH_INFO follows it, as RFC 3875 defines it for a CGI program.
	scriptIsMount bool
	// upgrade and connectionUpgrade say the client sent an Upgrade field
	// and a Connection listing "upgrade" (asksToUpgrade).
	upgrade, connectionUpgrade bool
}

// newParams returns a params that adds to vars, which it resets.
func newParams(vars *wsgi.Vars) params {
	vars.Reset()
	return params{vars: vars, contentLength: -1}
}

// add takes one variable as the web server sent it. A variable's name is
// never empty: CGI meta-variable names are tokens (RFC 3875 section 4.1).
func (p *params) add(key, value []byte) error {
	switch string(key) {
	case "":
		return errEmptyVarName
	case "CONTENT_LENGTH":
		if len(value) == 0 {
			return nil // nginx sends an empty one for a request without a body
		}
		n, err := strconv.ParseInt(string(value), 10, 64)
		if err != nil || value[0] < '0' || value[0] > '9' {
			return fmt.Errorf("gateways: CONTENT_LENGTH %.20q is not a length", value)
		}
		if p.contentLength >= 0 && n != p.contentLength {
			// The body's framing, said twice and two ways: which one a
			// proxy in between went by is anyone's guess.
			return errLengthConflict
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
	case "SCRIPT_FILENAME":
		p.scriptFilename = value
	case "SCRIPT_NAME":
		p.seen |= seenScriptName
		p.scriptName = string(value)
		return nil
	case "PATH_INFO":
		p.seen |= seenPathInfo
		p.pathInfo = string(value)
		return nil
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
	case "HTTP_UPGRADE":
		p.upgrade = len(value) > 0
	case "HTTP_CONNECTION":
		p.connectionUpgrade = hasToken(value, "upgrade")
	case "HTTP_CONTENT_LENGTH", "HTTP_CONTENT_TYPE":
		// Some web servers pass these headers on as HTTP_* too; PEP 3333
		// carries them only as CONTENT_LENGTH and CONTENT_TYPE, and
		// wsgiref.validate refuses an environ that has them.
		return nil
	}
	p.vars.AddBytes(key, value)
	return p.vars.Err()
}

// asksToUpgrade reports whether the web server passed on a client's request
// to upgrade the connection (RFC 9110 section 7.8): an Upgrade field and
// Connection listing "upgrade", as HTTP_* variables.
func (p *params) asksToUpgrade() bool { return p.upgrade && p.connectionUpgrade }

// isOn reads a web server's HTTPS flag: Apache and nginx send "on", some
// servers "1" or "yes".
func isOn(v []byte) bool {
	return bytes.EqualFold(v, []byte("on")) || bytes.Equal(v, []byte("1")) || bytes.EqualFold(v, []byte("yes"))
}

// finish adds what PEP 3333 requires and the web server left out.
func (p *params) finish() error {
	if p.seen&seenRequestMethod == 0 {
		return errNoMethod
	}
	path, query := splitTarget(string(p.requestURI))
	script, pathInfo := p.split(path)
	p.vars.Add("SCRIPT_NAME", script)
	p.vars.Add("PATH_INFO", pathInfo)
	p.addDefault(seenQueryString, "QUERY_STRING", query)
	p.addDefault(seenServerName, "SERVER_NAME", "localhost")
	p.addDefault(seenServerPort, "SERVER_PORT", "80")
	p.addDefault(seenServerProtocol, "SERVER_PROTOCOL", "HTTP/1.0")
	p.vars.Add("wsgi.url_scheme", p.urlScheme())
	return p.vars.Err()
}

// split returns SCRIPT_NAME and PATH_INFO; rawPath is REQUEST_URI's path,
// still percent-encoded.
//
// For a CGI program a missing PATH_INFO is simply empty (RFC 3875 section
// 4.1.5). nginx's stock scgi_params and fastcgi_params, though, send no
// PATH_INFO (and fastcgi_params sets SCRIPT_NAME to the whole path), nor do
// Apache's mod_proxy_fcgi and mod_proxy_scgi unless told to, so for the
// socket protocols the split is found elsewhere: in the path Apache's
// ProxyPass mapped the request to, or else the app is taken to be mounted
// at "/": SCRIPT_NAME is "" and PATH_INFO the request's decoded path, from
// DOCUMENT_URI or else REQUEST_URI. A web server that sends PATH_INFO says
// where the app is mounted itself.
func (p *params) split(rawPath string) (script, pathInfo string) {
	switch {
	case p.seen&seenPathInfo != 0:
		return p.repairSplit(rawPath)
	case p.scriptIsMount:
		return p.scriptName, ""
	}
	if backend, ok := apacheProxyPath(string(p.scriptFilename)); ok {
		return splitAtBackendPath(unescapePath(rawPath), unescapePath(backend))
	}
	if len(p.documentURI) > 0 {
		return "", string(p.documentURI)
	}
	return "", unescapePath(rawPath)
}

// apacheProxyPath returns the path, still percent-encoded, that Apache's
// mod_proxy_fcgi and mod_proxy_scgi map a request to, from the
// SCRIPT_FILENAME they send: "proxy:fcgi://127.0.0.1:9000/rest" for a
// request of /app/rest under "ProxyPass /app/ fcgi://127.0.0.1:9000/". It
// reports false for any other SCRIPT_FILENAME.
func apacheProxyPath(scriptFilename string) (string, bool) {
	rest, ok := strings.CutPrefix(scriptFilename, "proxy:")
	if !ok {
		return "", false
	}
	if _, rest, ok = strings.Cut(rest, "://"); !ok {
		return "", false
	}
	slash := strings.IndexByte(rest, '/')
	if slash < 0 {
		return "/", true
	}
	path, _, _ := strings.Cut(rest[slash:], "?")
	return path, true
}

// splitAtBackendPath splits full, the request's decoded path, where the
// path the backend was asked for begins: what comes before it is the mount
// point the web server took off. backend is PATH_INFO whatever full is; a
// backend path that full does not end with (a ProxyPass that also rewrote
// the path) leaves SCRIPT_NAME empty, as an HTTP proxy that rewrites does.
func splitAtBackendPath(full, backend string) (script, pathInfo string) {
	if backend == "/" && !strings.HasSuffix(full, "/") {
		backend = "" // the mount point itself, asked for without its slash
	}
	if !strings.HasSuffix(full, backend) {
		return "", backend
	}
	return full[:len(full)-len(backend)], backend
}

// repairSplit returns SCRIPT_NAME and PATH_INFO as sent, unless they do
// not add up to the request's path and the path ends in PATH_INFO decoded:
// Apache's mod_proxy_scgi sends the whole path as SCRIPT_NAME and PATH_INFO
// still percent-encoded. The request's path then gives the mount point.
func (p *params) repairSplit(rawPath string) (script, pathInfo string) {
	if len(p.requestURI) == 0 {
		return p.scriptName, p.pathInfo
	}
	full := unescapePath(rawPath)
	if p.scriptName+p.pathInfo == full {
		return p.scriptName, p.pathInfo
	}
	decoded := unescapePath(p.pathInfo)
	if decoded == "" || !strings.HasSuffix(full, decoded) {
		return p.scriptName, p.pathInfo
	}
	return full[:len(full)-len(decoded)], decoded
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
