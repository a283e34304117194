// Fuzz targets for the HTTP→CGI variable translation every gateway shares:
// header names, percent-decoded paths and request targets.
package gateways

import (
	"bytes"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// FuzzHeaderVarName checks that a name with "_" is dropped, that any other
// becomes HTTP_ and its upper-cased self with dashes as underscores, and
// that two names give the same variable only when they are the same header
// (equal but for ASCII case): no "X_Forwarded_For" posing as
// "X-Forwarded-For" (CVE-2015-0219).
func FuzzHeaderVarName(f *testing.F) {
	f.Add("X-Forwarded-For", "X_Forwarded_For")
	f.Add("x-real-ip", "X-Real-IP")
	f.Add("Content-Type", "content-type")
	f.Add("a-b", "A_B")
	f.Add("\xff\x00-", "")
	f.Fuzz(func(t *testing.T, a, b string) {
		prefix := []byte("SCRATCH")
		outA, okA := headerVarName(bytes.Clone(prefix), a)
		require.True(t, bytes.HasPrefix(outA, prefix), "the caller's bytes were changed")
		if strings.Contains(a, "_") {
			assert.False(t, okA)
			assert.Equal(t, prefix, outA)
			return
		}
		require.True(t, okA)
		name := outA[len(prefix):]
		require.Equal(t, len("HTTP_")+len(a), len(name))
		assert.True(t, bytes.HasPrefix(name, []byte("HTTP_")))
		assert.Equal(t, asciiUpper(strings.ReplaceAll(a, "-", "_")), string(name[len("HTTP_"):]))

		outB, okB := headerVarName(nil, b)
		if okB {
			sameHeader := asciiUpper(a) == asciiUpper(b)
			assert.Equal(t, sameHeader, bytes.Equal(name, outB), "%q and %q", a, b)
		}
	})
}

// asciiUpper upper-cases ASCII letters only, as header names compare
// (RFC 9110 section 5.1); other bytes are left alone.
func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - ('a' - 'A')
		}
	}
	return string(b)
}

// FuzzUnescapePath checks unescapePath against net/url where net/url
// accepts the path, that decoding never lengthens a path, and that a path
// with every byte percent-encoded decodes back to itself.
func FuzzUnescapePath(f *testing.F) {
	f.Add("/caf%C3%A9/a%20b")
	f.Add("/100%/x%2")
	f.Add("/%zz%2F%2f")
	f.Add("/plain+path")
	f.Add("%")
	f.Fuzz(func(t *testing.T, path string) {
		out := unescapePath(path)
		assert.LessOrEqual(t, len(out), len(path))
		if !strings.Contains(path, "%") {
			assert.Equal(t, path, out)
		}
		if want, err := url.PathUnescape(path); err == nil {
			assert.Equal(t, want, out, "net/url decodes %q differently", path)
		}
		var encoded strings.Builder
		for i := 0; i < len(path); i++ {
			fmt.Fprintf(&encoded, "%%%02X", path[i])
		}
		assert.Equal(t, path, unescapePath(encoded.String()))
	})
}

// FuzzSplitTarget checks that a target's path and query come from the
// target, that the path carries neither "?" nor "#", and that an
// origin-form target (RFC 9112 section 3.2.1) splits at its first "?".
func FuzzSplitTarget(f *testing.F) {
	f.Add("/a/b?x=1&y=2")
	f.Add("http://example.org:8080/p?q#frag")
	f.Add("https://example.org?q")
	f.Add("*")
	f.Add("example.org:443")
	f.Add("/a#b?c")
	f.Fuzz(func(t *testing.T, target string) {
		path, query := splitTarget(target)
		assert.NotContains(t, path, "?")
		assert.NotContains(t, path, "#")
		assert.NotContains(t, query, "#")
		assert.Contains(t, target, query)
		beforeFragment, _, _ := strings.Cut(target, "#")
		if strings.HasPrefix(target, "/") {
			want := path
			if strings.Contains(beforeFragment, "?") {
				want += "?" + query
			}
			assert.Equal(t, beforeFragment, want)
			return
		}
		if strings.Contains(beforeFragment, "://") {
			assert.True(t, strings.HasPrefix(path, "/"), "an absolute-form target gives the path %q", path)
		}
	})
}
