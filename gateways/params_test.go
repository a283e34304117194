package gateways

import (
	"testing"

	"github.com/gowsgi/gowsgi/wsgi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// paramsFrom runs pairs through params the way a protocol parser does.
func paramsFrom(t *testing.T, pairs ...string) (map[string]string, params, error) {
	t.Helper()
	require.Zero(t, len(pairs)%2, "pairs come as key, value")
	var vars wsgi.Vars
	p := newParams(&vars)
	for i := 0; i < len(pairs); i += 2 {
		if err := p.add([]byte(pairs[i]), []byte(pairs[i+1])); err != nil {
			return nil, p, err
		}
	}
	err := p.finish()
	return vars.Map(), p, err
}

func TestParamsComplete(t *testing.T) {
	cases := []struct {
		name  string
		pairs []string
		want  map[string]string
	}{
		{
			name: "nginx uwsgi_params: everything sent",
			pairs: []string{"REQUEST_METHOD", "GET", "QUERY_STRING", "a=1", "REQUEST_URI", "/x/caf%C3%A9?a=1",
				"PATH_INFO", "/x/caf\xc3\xa9", "SCRIPT_NAME", "", "SERVER_PROTOCOL", "HTTP/1.1", "SERVER_NAME", "example.org",
				"SERVER_PORT", "80", "HTTPS", "", "HTTP_HOST", "example.org"},
			want: map[string]string{"REQUEST_METHOD": "GET", "QUERY_STRING": "a=1", "REQUEST_URI": "/x/caf%C3%A9?a=1",
				"PATH_INFO": "/x/caf\xc3\xa9", "SCRIPT_NAME": "", "SERVER_PROTOCOL": "HTTP/1.1", "SERVER_NAME": "example.org",
				"SERVER_PORT": "80", "HTTPS": "", "HTTP_HOST": "example.org", "wsgi.url_scheme": "http"},
		},
		{
			name:  "no PATH_INFO: mounted at / from the decoded REQUEST_URI",
			pairs: []string{"REQUEST_METHOD", "GET", "REQUEST_URI", "/a%20b?q=1", "SCRIPT_NAME", "/a b"},
			want: map[string]string{"REQUEST_METHOD": "GET", "REQUEST_URI": "/a%20b?q=1", "SCRIPT_NAME": "",
				"PATH_INFO": "/a b", "QUERY_STRING": "q=1", "SERVER_NAME": "localhost", "SERVER_PORT": "80",
				"SERVER_PROTOCOL": "HTTP/1.0", "wsgi.url_scheme": "http"},
		},
		{
			name:  "no PATH_INFO: DOCUMENT_URI preferred",
			pairs: []string{"REQUEST_METHOD", "POST", "REQUEST_URI", "/r?x", "DOCUMENT_URI", "/doc", "QUERY_STRING", "x"},
			want: map[string]string{"REQUEST_METHOD": "POST", "REQUEST_URI": "/r?x", "DOCUMENT_URI": "/doc",
				"QUERY_STRING": "x", "PATH_INFO": "/doc", "SCRIPT_NAME": "", "SERVER_NAME": "localhost",
				"SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.0", "wsgi.url_scheme": "http"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := paramsFrom(t, tc.pairs...)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestParamsRepairSplit(t *testing.T) {
	cases := []struct {
		name             string
		pairs            []string
		script, pathInfo string
	}{
		{"consistent split kept", []string{"SCRIPT_NAME", "/app", "PATH_INFO", "/a b", "REQUEST_URI", "/app/a%20b"}, "/app", "/a b"},
		{"rewritten request kept", []string{"SCRIPT_NAME", "/app", "PATH_INFO", "/x", "REQUEST_URI", "/other"}, "/app", "/x"},
		{"no REQUEST_URI kept", []string{"SCRIPT_NAME", "/app/x", "PATH_INFO", "/x"}, "/app/x", "/x"},
		{
			"Apache mod_proxy_scgi: whole path as SCRIPT_NAME, PATH_INFO encoded",
			[]string{"SCRIPT_NAME", "/app/caf\xc3\xa9", "PATH_INFO", "/caf%C3%A9/rest", "REQUEST_URI", "/app/caf%C3%A9/rest?q=1"},
			"/app", "/caf\xc3\xa9/rest",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := paramsFrom(t, append([]string{"REQUEST_METHOD", "GET"}, tc.pairs...)...)
			require.NoError(t, err)
			assert.Equal(t, tc.script, got["SCRIPT_NAME"])
			assert.Equal(t, tc.pathInfo, got["PATH_INFO"])
		})
	}
}

// Apache's mod_proxy_fcgi and mod_proxy_scgi, under a bare ProxyPass, send
// no PATH_INFO; SCRIPT_FILENAME holds the path the request was mapped to.
func TestParamsApacheProxyPass(t *testing.T) {
	cases := []struct {
		name             string
		pairs            []string
		script, pathInfo string
	}{
		{"ProxyPass /app/ fcgi://127.0.0.1:9000/",
			[]string{"SCRIPT_FILENAME", "proxy:fcgi://127.0.0.1:9000/caf%C3%A9/a%20b", "REQUEST_URI", "/app/caf%C3%A9/a%20b?x=%20y"},
			"/app", "/caf\xc3\xa9/a b"},
		{"ProxyPass /app/ scgi://127.0.0.1:4000/",
			[]string{"SCRIPT_FILENAME", "proxy:scgi://127.0.0.1:4000/rest/", "REQUEST_URI", "/app/rest/"}, "/app", "/rest/"},
		{"ProxyPass / fcgi://127.0.0.1:9000/",
			[]string{"SCRIPT_FILENAME", "proxy:fcgi://127.0.0.1:9000/x/y", "REQUEST_URI", "/x/y?q"}, "", "/x/y"},
		{"a Unix socket",
			[]string{"SCRIPT_FILENAME", "proxy:scgi://localhost/rest", "REQUEST_URI", "/deep/app/rest"}, "/deep/app", "/rest"},
		{"the mount point without its slash",
			[]string{"SCRIPT_FILENAME", "proxy:fcgi://127.0.0.1:9000/", "REQUEST_URI", "/app"}, "/app", ""},
		{"the mount point with its slash",
			[]string{"SCRIPT_FILENAME", "proxy:fcgi://127.0.0.1:9000/", "REQUEST_URI", "/app/"}, "/app", "/"},
		{"a query in SCRIPT_FILENAME is not the path",
			[]string{"SCRIPT_FILENAME", "proxy:fcgi://127.0.0.1:9000/x?y=1", "REQUEST_URI", "/app/x?y=1"}, "/app", "/x"},
		{"a ProxyPass that rewrites the path: the backend's path, no mount point",
			[]string{"SCRIPT_FILENAME", "proxy:fcgi://127.0.0.1:9000/sub/x", "REQUEST_URI", "/app/x"}, "", "/sub/x"},
		{"PATH_INFO sent wins",
			[]string{"SCRIPT_FILENAME", "proxy:fcgi://127.0.0.1:9000/x", "SCRIPT_NAME", "/s", "PATH_INFO", "/p", "REQUEST_URI", "/s/p"}, "/s", "/p"},
		{"a script's file name is no proxy path",
			[]string{"SCRIPT_FILENAME", "/srv/app/index.py", "REQUEST_URI", "/app/x"}, "", "/app/x"},
		{"a file name that only looks like one",
			[]string{"SCRIPT_FILENAME", "proxy:/srv/x", "REQUEST_URI", "/app/x"}, "", "/app/x"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := paramsFrom(t, append([]string{"REQUEST_METHOD", "GET"}, tc.pairs...)...)
			require.NoError(t, err)
			assert.Equal(t, tc.script, got["SCRIPT_NAME"])
			assert.Equal(t, tc.pathInfo, got["PATH_INFO"])
		})
	}
}

func TestParamsDropContentHeadersPassedAsHTTP(t *testing.T) {
	got, _, err := paramsFrom(t, "REQUEST_METHOD", "POST", "PATH_INFO", "/", "CONTENT_LENGTH", "3",
		"HTTP_CONTENT_LENGTH", "3", "CONTENT_TYPE", "text/plain", "HTTP_CONTENT_TYPE", "text/plain")
	require.NoError(t, err)
	assert.Equal(t, "3", got["CONTENT_LENGTH"])
	assert.Equal(t, "text/plain", got["CONTENT_TYPE"])
	assert.NotContains(t, got, "HTTP_CONTENT_LENGTH")
	assert.NotContains(t, got, "HTTP_CONTENT_TYPE")
}

// A CGI program's SCRIPT_NAME is its mount point even when the request is
// for exactly that path and no PATH_INFO follows (RFC 3875 section 4.1.5).
func TestParamsCGIKeepsTheMountPoint(t *testing.T) {
	var vars wsgi.Vars
	p := newParams(&vars)
	p.scriptIsMount = true
	for _, kv := range [][2]string{{"REQUEST_METHOD", "GET"}, {"SCRIPT_NAME", "/app"}, {"REQUEST_URI", "/app"}} {
		require.NoError(t, p.add([]byte(kv[0]), []byte(kv[1])))
	}
	require.NoError(t, p.finish())
	got := vars.Map()
	assert.Equal(t, "/app", got["SCRIPT_NAME"])
	assert.Equal(t, "", got["PATH_INFO"])
}

func TestParamsScheme(t *testing.T) {
	cases := []struct {
		pairs []string
		want  string
	}{
		{nil, "http"},
		{[]string{"HTTPS", "on"}, "https"},
		{[]string{"HTTPS", "ON"}, "https"},
		{[]string{"HTTPS", "1"}, "https"},
		{[]string{"HTTPS", "off"}, "http"},
		{[]string{"REQUEST_SCHEME", "https"}, "https"},
		{[]string{"UWSGI_SCHEME", "https"}, "https"},
		{[]string{"HTTPS", "on", "UWSGI_SCHEME", "http"}, "http"},
	}
	for _, tc := range cases {
		pairs := append([]string{"REQUEST_METHOD", "GET", "PATH_INFO", "/"}, tc.pairs...)
		got, _, err := paramsFrom(t, pairs...)
		require.NoError(t, err)
		assert.Equal(t, tc.want, got["wsgi.url_scheme"], "%q", tc.pairs)
		assert.NotContains(t, got, "UWSGI_SCHEME", "said once, as wsgi.url_scheme")
	}
}

func TestParamsContentLength(t *testing.T) {
	cases := []struct {
		value string
		want  int64
		ok    bool
	}{
		{"", -1, true},
		{"0", 0, true},
		{"5242880", 5242880, true},
		{"-1", 0, false},
		{"12x", 0, false},
		{"+5", 0, false}, // a length is digits only (RFC 9110 section 8.6)
	}
	for _, tc := range cases {
		_, p, err := paramsFrom(t, "REQUEST_METHOD", "POST", "PATH_INFO", "/", "CONTENT_LENGTH", tc.value)
		if !tc.ok {
			assert.Error(t, err, "%q", tc.value)
			continue
		}
		require.NoError(t, err, "%q", tc.value)
		assert.Equal(t, tc.want, p.contentLength, "%q", tc.value)
	}
}

func TestParamsRefuse(t *testing.T) {
	cases := []struct {
		name  string
		pairs []string
		want  error
	}{
		{"empty name", []string{"", "x"}, errEmptyVarName},
		{"empty name and value", []string{"", ""}, errEmptyVarName},
		{"two CONTENT_LENGTHs that differ", []string{"CONTENT_LENGTH", "3", "CONTENT_LENGTH", "4"}, errLengthConflict},
		{"one length written two ways", []string{"CONTENT_LENGTH", "3", "CONTENT_LENGTH", "03"}, nil},
		{"an empty CONTENT_LENGTH is none", []string{"CONTENT_LENGTH", "", "CONTENT_LENGTH", "3", "CONTENT_LENGTH", ""}, nil},
		{"the same CONTENT_LENGTH twice", []string{"CONTENT_LENGTH", "3", "CONTENT_LENGTH", "3"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := paramsFrom(t, append([]string{"REQUEST_METHOD", "POST", "PATH_INFO", "/"}, tc.pairs...)...)
			if tc.want == nil {
				assert.NoError(t, err)
				return
			}
			assert.ErrorIs(t, err, tc.want)
		})
	}
}

func TestParamsNeedAMethod(t *testing.T) {
	_, _, err := paramsFrom(t, "PATH_INFO", "/")
	assert.ErrorIs(t, err, errNoMethod)
}

func TestResponseHeads(t *testing.T) {
	var headers wsgi.Vars
	headers.Add("Content-Type", "text/plain")
	headers.Add("Set-Cookie", "a=1")
	cgi, err := appendCGIHead(nil, "404 Not Found", headers.Block())
	require.NoError(t, err)
	assert.Equal(t, "Status: 404 Not Found\r\nContent-Type: text/plain\r\nSet-Cookie: a=1\r\n\r\n", string(cgi))
	http, err := appendHTTPHead(nil, "200 OK", nil)
	require.NoError(t, err)
	assert.Equal(t, "HTTP/1.1 200 OK\r\n\r\n", string(http))
	_, err = appendCGIHead(nil, "200 OK", []byte{9, 0, 'x'})
	assert.Error(t, err)
}
