package server

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseStaticMap(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want StaticMap
		ok   bool
	}{
		{"/static=/srv/static", StaticMap{Mount: "/static", Dir: "/srv/static"}, true},
		{"/static/=files", StaticMap{Mount: "/static", Dir: "files"}, true},
		{"/=files", StaticMap{Mount: "", Dir: "files"}, true},
		{"static=/srv", StaticMap{}, false},
		{"/static", StaticMap{}, false},
		{"/static=", StaticMap{}, false},
	} {
		got, err := ParseStaticMap(tc.spec)
		if !tc.ok {
			assert.Error(t, err, tc.spec)
			continue
		}
		require.NoError(t, err, tc.spec)
		assert.Equal(t, tc.want, got, tc.spec)
	}
}

func TestUnderMount(t *testing.T) {
	for _, tc := range []struct {
		path, mount, rest string
		ok                bool
	}{
		{"/static/a.css", "/static", "/a.css", true},
		{"/static", "/static", "", true},
		{"/staticx/a.css", "/static", "", false},
		{"/other", "/static", "", false},
		{"/a.css", "", "/a.css", true},
	} {
		rest, ok := underMount(tc.path, tc.mount)
		assert.Equal(t, tc.ok, ok, tc.path)
		assert.Equal(t, tc.rest, rest, tc.path)
	}
}

func TestStaticOpenStaysInside(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "secret"), []byte("x"), 0o644))
	static := filepath.Join(dir, "static")
	require.NoError(t, os.MkdirAll(filepath.Join(static, "sub"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(static, "a.txt"), []byte("a"), 0o644))
	require.NoError(t, os.Symlink(filepath.Join(dir, "secret"), filepath.Join(static, "out")))
	require.NoError(t, os.Symlink(dir, filepath.Join(static, "outdir")))
	require.NoError(t, os.Symlink("a.txt", filepath.Join(static, "in")))
	h, err := newStaticHandler([]StaticMap{{Mount: "/s", Dir: static}}, nil)
	require.NoError(t, err)
	root := h.roots[0]
	for _, tc := range []struct {
		rest     string
		outside  bool
		notFound bool
	}{
		{rest: "/a.txt"},
		{rest: "/in"},
		{rest: "/sub/../a.txt", outside: true},
		{rest: "/../secret", outside: true},
		{rest: "/out", outside: true},
		{rest: "/outdir/secret", outside: true},
		{rest: "/a\x00.txt", outside: true},
		{rest: "/sub", notFound: true},
		{rest: "", notFound: true},
		{rest: "/missing", notFound: true},
	} {
		f, _, err := root.open(tc.rest)
		switch {
		case tc.outside:
			assert.ErrorIs(t, err, errOutside, "%q", tc.rest)
		case tc.notFound:
			assert.ErrorIs(t, err, os.ErrNotExist, "%q", tc.rest)
		default:
			if assert.NoError(t, err, "%q", tc.rest) {
				f.Close()
			}
		}
	}
}
