package gateways

import (
	"io"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// spooledBody is what a handler saw of a spooled body while it ran.
type spooledBody struct {
	content  string
	nameless bool  // no link to the file is left in any folder
	offset   int64 // where the file was positioned
}

// inspectSpooled reads f, a request's BodyFile, without moving it.
func inspectSpooled(f *os.File) (spooledBody, error) {
	data, err := io.ReadAll(io.NewSectionReader(f, 0, 1<<40))
	if err != nil {
		return spooledBody{}, err
	}
	info, err := f.Stat()
	if err != nil {
		return spooledBody{}, err
	}
	offset, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return spooledBody{}, err
	}
	return spooledBody{content: string(data), nameless: info.Sys().(*syscall.Stat_t).Nlink == 0, offset: offset}, nil
}

// assertClosed checks that the gateway closed a spool file once the
// response ended.
func assertClosed(t *testing.T, f *os.File) {
	t.Helper()
	require.NotNil(t, f, "the body was not spooled")
	_, err := f.Stat()
	assert.ErrorIs(t, err, os.ErrClosed, "the spool file outlived its response")
}

func TestSpoolFilesHaveNoName(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	for _, tc := range []struct {
		name string
		open func() (*os.File, error)
	}{
		{"O_TMPFILE", OpenSpoolFile},
		{"created and unlinked", func() (*os.File, error) { return createUnlinked(os.TempDir()) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := tc.open()
			require.NoError(t, err)
			defer f.Close()
			_, err = f.WriteString("spooled")
			require.NoError(t, err)
			got, err := inspectSpooled(f)
			require.NoError(t, err)
			assert.True(t, got.nameless)
			assert.Equal(t, "spooled", got.content)
			left, err := os.ReadDir(os.TempDir())
			require.NoError(t, err)
			assert.Empty(t, left, "nothing named in the temporary folder")
		})
	}
}

func TestReadBodySpools(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	for _, declared := range []int64{11, -1} {
		b, err := readBody(strings.NewReader("0123456789a"), declared, 10, nil)
		require.NoError(t, err)
		require.NotNil(t, b.file)
		got, err := inspectSpooled(b.file)
		require.NoError(t, err)
		assert.Equal(t, spooledBody{content: "0123456789a", nameless: true, offset: 0}, got, "declared %d", declared)
		assert.Equal(t, int64(11), b.size)
		b.close()
		assertClosed(t, b.file)
	}
}
