// A client that reads slowly never holds a worker (issue 11): past what the
// master keeps in memory, the rest of its response waits in a spool file
// with no name, the worker takes the next request, and the client still
// gets every byte, in order.
package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/e2e/internal/harness"
)

const (
	// The stream route sends 16 chunks of streamChunk bytes per "MiB".
	slowStreamMiB  = 20
	streamChunk    = 8 * 8191
	slowStreamSize = slowStreamMiB * 16 * streamChunk
	// The slow client reads 128 KiB a second: slowReadStep bytes every
	// slowReadTick.
	slowReadStep = 16 << 10
	slowReadTick = 125 * time.Millisecond
)

func TestSlowClientNeverHoldsAWorker(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	app := harness.LaunchConfigured(t, t.TempDir(), []string{"TMPDIR=" + tmp},
		"--http-socket", "127.0.0.1:0", "--wsgi-file", harness.TestdataPath(t, "faults.py"),
		"-p", "1", "--threads", "1")

	client := startSlowClient(t, app.Addr, fmt.Sprintf("/stream?mib=%d&tag=slow", slowStreamMiB))

	// The one worker hands over all 20 MiB while the client has read
	// little of it.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(harness.PollInterval) {
		if _, streamed := app.Record("streamed-slow"); streamed {
			break
		}
		if time.Now().After(deadline) {
			require.FailNowf(t, "the worker is still held by the slow client", "after 20s, with %d bytes read", client.read.Load())
		}
	}
	require.Less(t, client.read.Load(), int64(slowStreamSize-10<<20), "the client read too fast for the test to show anything")
	left, err := os.ReadDir(tmp)
	require.NoError(t, err)
	assert.Empty(t, left, "the spool has no name")
	assert.NotEmpty(t, filesUnder(t, app.Cmd.Process.Pid, tmp), "the rest of the response waits in a file, not in the master's memory")

	// Being served at all, with the slot's one thread free: a deadline on
	// each answer, not a speed measure.
	answerer := &http.Client{Timeout: time.Second}
	for i := range 50 {
		resp, err := answerer.Get(app.URL + "/work?ms=0")
		require.NoError(t, err, "request %d was not answered within a second while the slow client holds its connection", i)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, "request %d", i)
	}
	require.Less(t, client.read.Load(), int64(slowStreamSize-10<<20), "the client had over 10 MiB left to read throughout")

	body := client.finish(t)
	assertStreamBody(t, body)
	harness.Eventually(t, 5*time.Second, func() bool { return len(filesUnder(t, app.Cmd.Process.Pid, tmp)) == 0 },
		"the spool file outlived its response")
	assert.NotContains(t, app.Stderr(), "response-spool-limit")
}

// slowClient reads one response on a raw socket at slowReadStep a tick
// until told to read the rest at once.
type slowClient struct {
	read atomic.Int64 // body bytes read so far
	fast chan struct{}
	done chan error
	body []byte
}

// startSlowClient sends GET path and reads its response slowly in the
// background, through a small receive buffer so the kernel does not read
// ahead for it. The connection is closed when the test ends.
func startSlowClient(t *testing.T, addr, path string) *slowClient {
	t.Helper()
	conn := harness.Dial(t, addr)
	t.Cleanup(func() { conn.Close() })
	require.NoError(t, conn.SetReadBuffer(32<<10))
	require.NoError(t, conn.SetDeadline(time.Now().Add(2*time.Minute)))
	_, err := io.WriteString(conn, "GET "+path+" HTTP/1.1\r\nHost: slow\r\n\r\n")
	require.NoError(t, err)
	c := &slowClient{fast: make(chan struct{}), done: make(chan error, 1)}
	go func() { c.done <- c.run(bufio.NewReader(conn)) }()
	return c
}

func (c *slowClient) run(r *bufio.Reader) error {
	resp, err := http.ReadResponse(r, &http.Request{Method: http.MethodGet})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength != slowStreamSize {
		return fmt.Errorf("got %s with Content-Length %d", resp.Status, resp.ContentLength)
	}
	c.body = make([]byte, 0, slowStreamSize)
	tick := time.NewTicker(slowReadTick)
	defer tick.Stop()
	step := make([]byte, slowReadStep)
	for len(c.body) < slowStreamSize {
		select {
		case <-tick.C:
		case <-c.fast:
			rest, err := io.ReadAll(resp.Body)
			c.body = append(c.body, rest...)
			return err
		}
		n, err := io.ReadFull(resp.Body, step[:min(len(step), slowStreamSize-len(c.body))])
		c.body = append(c.body, step[:n]...)
		c.read.Add(int64(n))
		if err != nil {
			return err
		}
	}
	return nil
}

// finish reads the rest at once and returns the whole body.
func (c *slowClient) finish(t *testing.T) []byte {
	t.Helper()
	close(c.fast)
	select {
	case err := <-c.done:
		require.NoError(t, err)
	case <-time.After(time.Minute):
		require.FailNow(t, "the rest of the response did not arrive")
	}
	return c.body
}

// assertStreamBody checks body is the stream route's bytes: chunk i of
// streamChunk bytes is "%07d\n" % i repeated.
func assertStreamBody(t *testing.T, body []byte) {
	t.Helper()
	const chunk = streamChunk
	require.Len(t, body, slowStreamSize)
	for i := 0; i*chunk < len(body); i++ {
		want := bytes.Repeat([]byte(fmt.Sprintf("%07d\n", i)), chunk/8)
		if !bytes.Equal(want, body[i*chunk:(i+1)*chunk]) {
			require.FailNowf(t, "the body is not what the app sent, in order", "chunk %d differs: it starts %q", i, body[i*chunk:i*chunk+16])
		}
	}
}

// filesUnder returns what pid's open descriptors under dir point to.
func filesUnder(t *testing.T, pid int, dir string) []string {
	t.Helper()
	fds := fmt.Sprintf("/proc/%d/fd", pid)
	entries, err := os.ReadDir(fds)
	require.NoError(t, err)
	var open []string
	for _, e := range entries {
		target, err := os.Readlink(filepath.Join(fds, e.Name()))
		if err == nil && strings.HasPrefix(target, dir+"/") {
			open = append(open, target)
		}
	}
	return open
}

// Past --response-spool-limit the master stops reading the worker until the
// client reads more, says so once, and still delivers every byte; the
// option works from the command line and from an ini file.
func TestResponseSpoolLimitHoldsTheWorker(t *testing.T) {
	t.Parallel()
	for _, fromINI := range []bool{false, true} {
		t.Run(fmt.Sprintf("ini=%v", fromINI), func(t *testing.T) {
			dir := t.TempDir()
			args := []string{"--http-socket", "127.0.0.1:0", "--wsgi-file", harness.TestdataPath(t, "faults.py"),
				"-p", "1", "--threads", "1"}
			if fromINI {
				args = append(args, "--ini", harness.WriteFile(t, dir, "app.ini", "[uwsgi]\nresponse-spool-limit = 1048576\n"))
			} else {
				args = append(args, "--response-spool-limit", "1048576")
			}
			app := harness.LaunchConfigured(t, dir, []string{"TMPDIR=" + t.TempDir()}, args...)
			client := startSlowClient(t, app.Addr, fmt.Sprintf("/stream?mib=%d&tag=held", slowStreamMiB))

			app.AwaitLogged(t, "reached --response-spool-limit")
			_, streamed := app.Record("streamed-held")
			assert.False(t, streamed, "the worker went on past the limit")
			assertStreamBody(t, client.finish(t))
			assert.Equal(t, 1, strings.Count(app.Stderr(), "reached --response-spool-limit"), "logged once per response")
		})
	}
}
