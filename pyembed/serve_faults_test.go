// Tests of a slot facing an app that pulls things out from under it: a
// body list emptied by another thread while it is written, a file swapped
// under its descriptor number, a block whose len() raises, a head larger
// than a frame may carry.
package pyembed

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gowsgi/gowsgi/wsgi"
)

// emptiedSize is EMPTIED_SIZE of cases_app.py.
const emptiedSize = 33 << 20

func TestListBodyItemOutlivesAnotherThreadEmptyingTheList(t *testing.T) {
	h := newPausedSlotHarness(t)
	goR, goW, err := os.Pipe()
	require.NoError(t, err)
	defer goR.Close()
	defer goW.Close()
	doneR, doneW, err := os.Pipe()
	require.NoError(t, err)
	defer doneR.Close()
	defer doneW.Close()
	query := fmt.Sprintf("%d&%d", goR.Fd(), doneW.Fd())

	emptied := make(chan error, 1)
	go func() {
		defer h.startReading() // whatever happened, so the slot can finish
		emptied <- emptyListMidWrite(h.masterFD, goW, doneR)
	}()
	id := h.start(newRequest("GET", "/emptied-list", query))
	require.NoError(t, <-emptied)
	r, err := h.collect(id, response{})
	require.NoError(t, err)
	assert.Equal(t, "200 OK", r.status)
	assert.Equal(t, uint8(0), r.endFlags)
	assert.Len(t, r.body, emptiedSize)
	assert.True(t, bytes.Count(r.body, []byte("x")) == len(r.body), "the body is not the app's item")
}

// emptyListMidWrite waits for the slot's first bytes on the master's end of
// its socket: the slot is then inside the write of the app's 33 MiB item,
// which does not fit the socket's buffer, with the GIL released. It then
// lets the app's thread empty the list and waits until it has.
func emptyListMidWrite(masterFD int, goW, doneR *os.File) error {
	deadline := time.Now().Add(frameWait)
	for {
		fds := []unix.PollFd{{Fd: int32(masterFD), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(time.Until(deadline).Milliseconds()))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return errors.New("the slot wrote nothing")
		}
		break
	}
	if _, err := goW.Write([]byte{1}); err != nil {
		return err
	}
	if err := doneR.SetReadDeadline(deadline); err != nil {
		return err
	}
	_, err := doneR.Read(make([]byte, 1))
	return err
}

func TestFileWrapperBlockWhoseLenRaises(t *testing.T) {
	h := newSlotHarness(t)
	r := h.get("/bad-len-block", "")
	assert.Equal(t, "500 Internal Server Error", r.status)
	assert.Equal(t, errorHeaders, r.headers)
	assert.Equal(t, errorResponse, string(r.body))
	assert.Equal(t, "Hello World!\n", string(h.get("/hello", "").body), "the slot serves on")
}

func TestFileWrapperSendsTheFileItWasGiven(t *testing.T) {
	h := newSlotHarness(t)
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	require.NoError(t, os.WriteFile(a, []byte(strings.Repeat("a", 64)), 0o600))
	require.NoError(t, os.WriteFile(b, []byte(strings.Repeat("b", 64)), 0o600))

	// The app's file object swaps file b under a's descriptor number after
	// handing out the number (in tell(), as another thread could while the
	// slot writes with the GIL released).
	r := h.get("/swapped-file", a+"&"+b)
	for _, f := range r.files {
		unix.Close(f.fd)
	}
	assert.Equal(t, "200 OK", r.status)
	assert.Len(t, r.files, 1)
	assert.Equal(t, strings.Repeat("a", 64), string(r.streamed))
}

func TestHeadBoundedByTheFrameLimit(t *testing.T) {
	h := newSlotHarness(t)
	t.Run("at the limit", func(t *testing.T) {
		r := h.get("/head-of", fmt.Sprint(wsgi.MaxFramePayload))
		assert.Equal(t, "200 OK", r.status)
		assert.Len(t, r.headers, 1033)
		assert.Equal(t, "body", string(r.body))
	})
	t.Run("a byte over", func(t *testing.T) {
		r := h.get("/head-of", fmt.Sprint(wsgi.MaxFramePayload+1))
		assert.Equal(t, "500 Internal Server Error", r.status)
		assert.Equal(t, errorHeaders, r.headers)
		assert.Equal(t, errorResponse, string(r.body))
	})
	assert.Equal(t, "Hello World!\n", string(h.get("/hello", "").body), "the slot serves on")
}
