// The direct response through the real binary: behind uwsgi and SCGI the
// worker writes the response to the client's connection itself, and the
// master, which keeps its own descriptor, still answers for a worker that
// dies before any byte of its head left (502, 504 under harakiri), closes
// the connection when one had, queues again a request no worker began,
// and finishes what a worker hands back when the client reads slowly.
package e2e

import (
	"bytes"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/e2e/internal/harness"
)

// directGateways are the gateways whose responses the worker writes itself.
var directGateways = []answerGateway{answerGateways[1], answerGateways[2]}

// startDirect runs testdata/direct.py with the uwsgi and SCGI gateways on
// loopback TCP ports and returns each one's address.
func startDirect(t *testing.T, args ...string) (*harness.Instance, map[string]string) {
	t.Helper()
	args = append([]string{"--wsgi-file", harness.TestdataPath(t, "direct.py")}, args...)
	for _, gw := range directGateways {
		args = append(args, gw.flag, "127.0.0.1:0")
	}
	inst := harness.Start(t, args...)
	addrs := bannerSockets(t, inst.Stderr())
	for _, gw := range directGateways {
		require.Contains(t, addrs, gw.name, "banner: %s", inst.Stderr())
	}
	return inst, addrs
}

// carried is what a connection carried until it ended.
type carried struct {
	gw  answerGateway
	raw []byte
	err error // nil at a clean end
}

// fetchLater fetches target in the background; what the connection carried
// arrives on the channel, for receive to read in the test's goroutine.
func fetchLater(t *testing.T, gw answerGateway, addr, target string) <-chan carried {
	got := make(chan carried, 1)
	conn := harness.Dial(t, addr)
	_, err := conn.Write(gw.request(target))
	require.NoError(t, err)
	go func() {
		defer conn.Close()
		var raw bytes.Buffer
		_, err := io.Copy(&raw, conn)
		got <- carried{gw: gw, raw: raw.Bytes(), err: err}
	}()
	return got
}

// awaitStarted waits for the record started-<tag> and returns the pid of
// the worker that wrote it.
func awaitStarted(t *testing.T, inst *harness.Instance, tag string) int {
	t.Helper()
	var content string
	harness.Eventually(t, 10*time.Second, func() bool {
		var ok bool
		content, ok = inst.Record("started-" + tag)
		return ok && content != ""
	}, "the app never started %s; stderr:\n%s", tag, inst.Stderr())
	pid, err := strconv.Atoi(content)
	require.NoError(t, err)
	return pid
}

// receive waits for an answer.
func receive(t *testing.T, got <-chan carried) answer {
	t.Helper()
	select {
	case c := <-got:
		reset := errors.Is(c.err, syscall.ECONNRESET)
		require.True(t, c.err == nil || reset, "reading until the connection ends: %v; got %q", c.err, c.raw)
		return c.gw.read(t, c.raw, reset)
	case <-time.After(15 * time.Second):
		require.FailNow(t, "no answer within 15 s")
		return answer{}
	}
}

// TestDirectWorkerKilled: kill -9 of a worker before any byte of its head
// left gives the client a whole 502 from the master; after, the client gets
// what the worker wrote and a connection that ends as incomplete.
func TestDirectWorkerKilled(t *testing.T) {
	t.Parallel()
	inst, addrs := startDirect(t, "-p", "1", "--threads", "2")
	cases := []struct {
		route string
		want  answer
	}{
		{"/hold", answer{status: "502 Bad Gateway", body: "502 Bad Gateway\n", whole: true}},
		{"/stream-hold", answer{status: "200 OK", body: "streamed;", whole: false}},
	}
	for _, gw := range directGateways {
		for i, c := range cases {
			tag := gw.name + strconv.Itoa(i)
			got := fetchLater(t, gw, addrs[gw.name], c.route+"?tag="+tag)
			pid := awaitStarted(t, inst, tag)
			require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
			a := receive(t, got)
			assert.Equal(t, c.want.String(), a.String(), "%s %s", gw.name, c.route)
		}
	}
}

// TestDirectHarakiri: a worker harakiri kills before its head left gives
// the client 504 from the master.
func TestDirectHarakiri(t *testing.T) {
	t.Parallel()
	inst, addrs := startDirect(t, "-p", "1", "--threads", "2", "--harakiri", "1")
	for _, gw := range directGateways {
		got := fetchLater(t, gw, addrs[gw.name], "/hold?tag=harakiri"+gw.name)
		awaitStarted(t, inst, "harakiri"+gw.name)
		a := receive(t, got)
		assert.Equal(t, "504 Gateway Timeout", a.status, "%s: %s", gw.name, a)
		assert.True(t, a.whole, gw.name)
	}
}

// TestDirectRequestNotBegunIsQueuedAgain: with one slot busy, a request
// that waits for it while its worker is killed goes to the next worker and
// is answered; the one that ran gets 502 and is not run again.
func TestDirectRequestNotBegunIsQueuedAgain(t *testing.T) {
	t.Parallel()
	inst, addrs := startDirect(t, "-p", "1", "--threads", "1")
	for _, gw := range directGateways {
		tag := "retry" + gw.name
		held := fetchLater(t, gw, addrs[gw.name], "/hold?tag="+tag)
		pid := awaitStarted(t, inst, tag)
		waiting := fetchLater(t, gw, addrs[gw.name], "/hello")
		require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
		assert.Equal(t, "502 Bad Gateway", receive(t, held).status, gw.name)
		a := receive(t, waiting)
		assert.Equal(t, `"200 OK" "hello" whole=true`, a.String(), gw.name)
		content, _ := inst.Record("started-" + tag)
		assert.Equal(t, strconv.Itoa(pid), content, "%s: the request that ran was run again", gw.name)
	}
}

// TestDirectClientLeavesMidResponse: a client that goes away while the
// worker streams to it stops the response, and the app's iterable is
// closed (PEP 3333).
func TestDirectClientLeavesMidResponse(t *testing.T) {
	t.Parallel()
	inst, addrs := startDirect(t, "-p", "1", "--threads", "2")
	for _, gw := range directGateways {
		tag := "gone" + gw.name
		conn := harness.Dial(t, addrs[gw.name])
		_, err := conn.Write(gw.request("/endless?tag=" + tag))
		require.NoError(t, err)
		buf := make([]byte, 64<<10)
		_, err = conn.Read(buf)
		require.NoError(t, err)
		require.NoError(t, conn.SetLinger(0))
		require.NoError(t, conn.Close())
		harness.Eventually(t, 10*time.Second, func() bool {
			_, ok := inst.Record("closed-" + tag)
			return ok
		}, "%s: close() was not called after the client left; stderr:\n%s", gw.name, inst.Stderr())
	}
}

// TestDirectSlowReaderGetsTheHandoff: a response far larger than a Unix
// socket's buffer, to a client that does not read, is handed to the master
// when the socket fills; one worker with one thread then answers other
// requests, each within a second, and the slow client gets every byte.
func TestDirectSlowReaderGetsTheHandoff(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sock := filepath.Join(dir, "uwsgi.sock")
	inst := harness.Start(t, "--wsgi-file", harness.TestdataPath(t, "direct.py"), "-p", "1", "--threads", "1",
		"--uwsgi-socket", sock)
	gw := directGateways[0]
	const mib = 3
	slow, err := net.Dial("unix", sock)
	require.NoError(t, err)
	defer slow.Close()
	_, err = slow.Write(gw.request("/big?mib=" + strconv.Itoa(mib)))
	require.NoError(t, err)

	for i := range 20 {
		conn, err := net.Dial("unix", sock)
		require.NoError(t, err)
		require.NoError(t, conn.SetDeadline(time.Now().Add(time.Second)))
		_, err = conn.Write(gw.request("/hello"))
		require.NoError(t, err)
		a := readAnswer(t, gw, conn)
		conn.Close()
		require.Equal(t, `"200 OK" "hello" whole=true`, a.String(), "request %d behind the slow reader", i)
	}

	require.NoError(t, slow.SetDeadline(time.Now().Add(20*time.Second)))
	a := readAnswer(t, gw, slow)
	assert.True(t, a.whole)
	assert.Equal(t, mib<<20, len(a.body))
	assert.True(t, bytes.Equal([]byte(a.body), bytes.Repeat([]byte("0123456789abcdef"), mib<<16)), "the body's bytes")
	_ = inst
}
