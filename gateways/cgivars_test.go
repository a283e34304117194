package gateways

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestUnescapePath(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/plain", "/plain"},
		{"/a%20b", "/a b"},
		{"/%C3%A9%e9", "/\xc3\xa9\xe9"},
		{"/%2f%2F", "///"},
		{"/bad%zz%4", "/bad%zz%4"},
		{"/end%", "/end%"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, unescapePath(tt.in), tt.in)
	}
}

func TestSplitTarget(t *testing.T) {
	tests := []struct{ in, path, query string }{
		{"/p?q=1", "/p", "q=1"},
		{"/p", "/p", ""},
		{"/p?q#frag", "/p", "q"},
		{"http://h:8/x/y?z", "/x/y", "z"},
		{"http://h?z", "/", "z"},
		{"https://h", "/", ""},
		{"*", "*", ""},
		{"h:443", "h:443", ""},
	}
	for _, tt := range tests {
		path, query := splitTarget(tt.in)
		assert.Equal(t, tt.path, path, tt.in)
		assert.Equal(t, tt.query, query, tt.in)
	}
}

func TestHeaderVarName(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"X-Real-Ip", "HTTP_X_REAL_IP", true},
		{"accept", "HTTP_ACCEPT", true},
		{"X_Forwarded_For", "", false},
	}
	for _, tt := range tests {
		got, ok := headerVarName(nil, tt.in)
		assert.Equal(t, tt.ok, ok, tt.in)
		assert.Equal(t, tt.want, string(got), tt.in)
	}
}
