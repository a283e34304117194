package server

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/wsgi"
)

func routingRequest(pairs ...string) *wsgi.Request {
	req := &wsgi.Request{}
	for i := 0; i+1 < len(pairs); i += 2 {
		req.Vars.Add(pairs[i], pairs[i+1])
	}
	return req
}

func TestExpandVars(t *testing.T) {
	req := routingRequest("HTTP_HOST", "example.com", "PATH_INFO", "/a")
	tests := []struct{ in, want string }{
		{"/new/$1", "/new/x"},
		{"https://${HTTP_HOST}${PATH_INFO}", "https://example.com/a"},
		{"${MISSING}-$9-$", "--$"},
		{"$$1", "$x"},
		{"${unclosed", "${unclosed"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, expandVars(tt.in, []string{"all", "x"}, req), tt.in)
	}
}

func TestRewrite(t *testing.T) {
	tests := []struct {
		target, query, wantPath, wantQuery string
	}{
		{"/modern?b=2", "a=1", "/modern", "b=2&a=1"},
		{"/modern", "a=1", "/modern", "a=1"},
		{"/with%20space?x", "", "/with space", "x"},
	}
	for _, tt := range tests {
		req := routingRequest("PATH_INFO", "/old", "QUERY_STRING", tt.query, "REQUEST_METHOD", "GET")
		rewrite(req, tt.target)
		path, _ := req.Vars.Get("PATH_INFO")
		query, _ := req.Vars.Get("QUERY_STRING")
		method, _ := req.Vars.Get("REQUEST_METHOD")
		assert.Equal(t, tt.wantPath, path, tt.target)
		assert.Equal(t, tt.wantQuery, query, tt.target)
		assert.Equal(t, "GET", method, "the other variables stay")
	}
}

func TestParseRoute(t *testing.T) {
	tests := []struct {
		option, value string
		wantErr       string
	}{
		{"route", "^/admin break:403 Forbidden", ""},
		{"route", "^/x break", ""},
		{"route-if", "equal:${PATH_INFO};/x return:410", ""},
		{"route-run", "addheader:X-A: b", ""},
		{"route", "^/x", `--route ^/x: not "MATCH ACTION:ARG"`},
		{"route", "^/x return:999", "--route ^/x return:999: return needs a known HTTP status code, not \"999\""},
		{"route", "^/x break:40", "--route ^/x break:40: break:40 is not a status such as 403 Forbidden"},
		{"route", "^/x addheader:nocolon", "--route ^/x addheader:nocolon: addheader:nocolon is not Name: value"},
	}
	for _, tt := range tests {
		_, err := ParseRoute(tt.option, tt.value)
		if tt.wantErr == "" {
			require.NoError(t, err, tt.value)
			continue
		}
		assert.EqualError(t, err, tt.wantErr)
	}
}
