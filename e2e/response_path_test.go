// The response path's guarantees through the real binary. On plain HTTP
// and on uwsgi and SCGI over TCP the worker writes the response to the
// client's connection itself; on a unix socket the response travels through
// the master. Either way the master, which keeps its own descriptor, still
// answers for a worker that dies before any byte of its head left (502, 504
// under harakiri), closes the connection when one had, queues again a
// request no worker began, has close() called when the client leaves, and
// finishes what a worker hands back when the client reads slowly.
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

// pathTarget is a socket a guarantee is tested on, and how its response
// travels.
type pathTarget struct {
	gw      answerGateway
	network string // "tcp" or "unix"
	addr    string
}

func (p pathTarget) String() string { return p.gw.name + " over " + p.network }

// startPaths runs testdata/response_path.py with the HTTP socket and the
// uwsgi and SCGI gateways on loopback TCP ports (the worker writes the
// response) and uwsgi on a unix socket (the response goes through the
// master), and returns the sockets.
func startPaths(t *testing.T, args ...string) (*harness.Instance, []pathTarget) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "uwsgi.sock")
	args = append([]string{"--wsgi-file", harness.TestdataPath(t, "response_path.py"),
		"--uwsgi-socket", "127.0.0.1:0", "--scgi-socket", "127.0.0.1:0", "--uwsgi-socket", sock}, args...)
	inst := harness.Start(t, args...)
	addrs := bannerSockets(t, inst.Stderr())
	targets := []pathTarget{{answerGateways[0], "tcp", inst.Addr}}
	for _, gw := range answerGateways[1:3] {
		require.Contains(t, addrs, gw.name, "banner: %s", inst.Stderr())
		targets = append(targets, pathTarget{gw, "tcp", addrs[gw.name]})
	}
	return inst, append(targets, pathTarget{answerGateways[1], "unix", sock})
}

// dial connects to p with a deadline for the whole test.
func (p pathTarget) dial(t *testing.T) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout(p.network, p.addr, 10*time.Second)
	require.NoError(t, err)
	require.NoError(t, conn.SetDeadline(time.Now().Add(30*time.Second)))
	t.Cleanup(func() { conn.Close() })
	return conn
}

// carried is what a connection carried until it ended.
type carried struct {
	gw  answerGateway
	raw []byte
	err error // nil at a clean end
}

// fetchLater fetches target in the background; what the connection carried
// arrives on the channel, for receive to read in the test's goroutine.
func fetchLater(t *testing.T, p pathTarget, target string) <-chan carried {
	got := make(chan carried, 1)
	gw := p.gw
	conn := p.dial(t)
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

// tagFor names a request's records after its case and its target.
func tagFor(what string, p pathTarget) string { return what + p.gw.name + p.network }

// TestWorkerKilledMidResponse: kill -9 of a worker before any byte of its
// head left gives the client a whole 502 from the master; after, the client
// gets what the worker wrote and a connection that ends as incomplete.
func TestWorkerKilledMidResponse(t *testing.T) {
	t.Parallel()
	cases := []struct {
		route string
		want  answer
	}{
		{"/hold", answer{status: "502 Bad Gateway", body: "502 Bad Gateway\n", whole: true}},
		{"/stream-hold", answer{status: "200 OK", body: "streamed;", whole: false}},
	}
	// One server per target: each kill lengthens the pause before the
	// worker is started again.
	eachTarget(t, []string{"-p", "1", "--threads", "2"}, func(t *testing.T, inst *harness.Instance, p pathTarget) {
		for i, c := range cases {
			tag := tagFor(strconv.Itoa(i), p)
			got := fetchLater(t, p, c.route+"?tag="+tag)
			pid := awaitStarted(t, inst, tag)
			require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
			a := receive(t, got)
			if p.network == "unix" {
				// A unix socket has no reset: its close is the only end
				// uwsgi has, so a cut body cannot be told from a whole one.
				a.whole = c.want.whole
			}
			assert.Equal(t, c.want.String(), a.String(), "%s %s", p, c.route)
		}
	})
}

// eachTarget runs test on each target of its own server, in parallel.
func eachTarget(t *testing.T, args []string, test func(t *testing.T, inst *harness.Instance, p pathTarget)) {
	_, targets := startPaths(t, args...)
	for i, p := range targets {
		t.Run(p.String(), func(t *testing.T) {
			t.Parallel()
			inst, own := startPaths(t, args...)
			test(t, inst, own[i])
		})
	}
}

// TestHarakiriBeforeTheHeadAnswers504: a worker harakiri kills before its
// head left gives the client 504 from the master.
func TestHarakiriBeforeTheHeadAnswers504(t *testing.T) {
	t.Parallel()
	inst, targets := startPaths(t, "-p", "1", "--threads", "2", "--harakiri", "1")
	for _, p := range targets {
		tag := tagFor("harakiri", p)
		got := fetchLater(t, p, "/hold?tag="+tag)
		awaitStarted(t, inst, tag)
		a := receive(t, got)
		assert.Equal(t, "504 Gateway Timeout", a.status, "%s: %s", p, a)
		assert.True(t, a.whole, p.String())
	}
}

// TestRequestNotBegunIsQueuedAgain: with one slot busy, a request that
// waits for it while its worker is killed goes to the next worker and is
// answered; the one that ran gets 502 and is not run again.
func TestRequestNotBegunIsQueuedAgain(t *testing.T) {
	t.Parallel()
	eachTarget(t, []string{"-p", "1", "--threads", "1"}, func(t *testing.T, inst *harness.Instance, p pathTarget) {
		tag := tagFor("retry", p)
		held := fetchLater(t, p, "/hold?tag="+tag)
		pid := awaitStarted(t, inst, tag)
		waiting := fetchLater(t, p, "/hello")
		require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
		assert.Equal(t, "502 Bad Gateway", receive(t, held).status, p.String())
		a := receive(t, waiting)
		assert.Equal(t, `"200 OK" "hello" whole=true`, a.String(), p.String())
		content, _ := inst.Record("started-" + tag)
		assert.Equal(t, strconv.Itoa(pid), content, "%s: the request that ran was run again", p)
	})
}

// TestClientLeavesMidResponseClosesTheIterable: a client that goes away
// while the worker streams to it stops the response, and the app's
// iterable is closed (PEP 3333).
func TestClientLeavesMidResponseClosesTheIterable(t *testing.T) {
	t.Parallel()
	inst, targets := startPaths(t, "-p", "1", "--threads", "2")
	for _, p := range targets {
		tag := tagFor("gone", p)
		conn := p.dial(t)
		_, err := conn.Write(p.gw.request("/endless?tag=" + tag))
		require.NoError(t, err)
		buf := make([]byte, 64<<10)
		_, err = conn.Read(buf)
		require.NoError(t, err)
		if tc, ok := conn.(*net.TCPConn); ok {
			require.NoError(t, tc.SetLinger(0))
		}
		require.NoError(t, conn.Close())
		harness.Eventually(t, 10*time.Second, func() bool {
			_, ok := inst.Record("closed-" + tag)
			return ok
		}, "%s: close() was not called after the client left; stderr:\n%s", p, inst.Stderr())
	}
}

// TestSlowReaderDoesNotHoldTheWorker: a response far larger than the
// socket buffers, to a client that does not read, goes to the master when
// the socket fills (the worker hands over what it has not written); one
// worker with one thread then answers other requests, each within a
// second, and the slow client gets every byte.
func TestSlowReaderDoesNotHoldTheWorker(t *testing.T) {
	t.Parallel()
	inst, targets := startPaths(t, "-p", "1", "--threads", "1")
	const mib = 48
	for _, p := range targets {
		slow := p.dial(t)
		_, err := slow.Write(p.gw.request("/big?mib=" + strconv.Itoa(mib)))
		require.NoError(t, err)
		for i := range 20 {
			conn := p.dial(t)
			require.NoError(t, conn.SetDeadline(time.Now().Add(time.Second)))
			_, err = conn.Write(p.gw.request("/hello"))
			require.NoError(t, err)
			a := readAnswer(t, p.gw, conn)
			conn.Close()
			require.Equal(t, `"200 OK" "hello" whole=true`, a.String(), "%s: request %d behind the slow reader", p, i)
		}
		require.NoError(t, slow.SetDeadline(time.Now().Add(20*time.Second)))
		a := readAnswer(t, p.gw, slow)
		assert.True(t, a.whole, p.String())
		assert.Equal(t, mib<<20, len(a.body), p.String())
		assert.True(t, bytes.Equal([]byte(a.body), bytes.Repeat([]byte("0123456789abcdef"), mib<<16)), "%s: the body's bytes", p)
	}
	_ = inst
}
