package e2e

// A graceful stop (SIGTERM) owes an answer to the connections a client
// opened to send a request: those the master accepted just before and
// those the kernel still held in the listener's accept queue. Closing them
// unanswered is what a load balancer sees as a reset after sending a
// POST, which it may not retry elsewhere, and answers 502.

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/e2e/internal/harness"
)

// queuePOST is the request each connection sends.
const queuePOST = "POST /order HTTP/1.1\r\nHost: shop\r\nContent-Length: 5\r\n\r\nhello"

// acceptQueueLen is how many connections wait in the accept queue of the
// TCP socket listening on 127.0.0.1:port: for a listening socket
// /proc/net/tcp's rx_queue is that count (proc(5)).
func acceptQueueLen(t *testing.T, port int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/net/tcp")
	require.NoError(t, err)
	local := fmt.Sprintf("0100007F:%04X", port)
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 4 && f[1] == local && f[3] == "0A" { // 0A: LISTEN
			queues := strings.SplitN(f[4], ":", 2)
			n, err := strconv.ParseInt(queues[1], 16, 64)
			require.NoError(t, err, line)
			return int(n)
		}
	}
	require.FailNow(t, "no socket listens on 127.0.0.1", "port %d", port)
	return 0
}

// listeningPort is the port of inst's HTTP socket.
func listeningPort(t *testing.T, inst *harness.Instance) int {
	t.Helper()
	_, port, err := net.SplitHostPort(inst.Addr)
	require.NoError(t, err)
	n, err := strconv.Atoi(port)
	require.NoError(t, err)
	return n
}

// awaitStopAccepting waits until a new connection to addr is no longer
// taken: the stop has begun in the master.
func awaitStopAccepting(t *testing.T, addr string) {
	t.Helper()
	harness.Eventually(t, 10*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err != nil
	}, "gowsgi still accepts on %s after SIGTERM", addr)
}

// readQueuedAnswer reads the response to queuePOST on conn.
func readQueuedAnswer(conn net.Conn) (*http.Response, string, error) {
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	var body strings.Builder
	_, err = bufio.NewReader(resp.Body).WriteTo(&body)
	return resp, body.String(), err
}

// TestStopAnswersTheFirstRequestOfANewConnection: a connection the master
// accepted before SIGTERM, whose request arrives after, is answered and
// then closed, not closed unanswered as an idle keep-alive one is.
func TestStopAnswersTheFirstRequestOfANewConnection(t *testing.T) {
	inst := harness.Start(t, "--chdir", harness.ExamplesDir(t), "--module", "hello_world_app")
	port := listeningPort(t, inst)
	conn := harness.Dial(t, inst.Addr)
	defer conn.Close()
	harness.Eventually(t, 10*time.Second, func() bool { return acceptQueueLen(t, port) == 0 },
		"the master did not accept the connection")
	inst.Signal(t, syscall.SIGTERM)
	awaitStopAccepting(t, inst.Addr)
	_, err := conn.Write([]byte(queuePOST))
	require.NoError(t, err)
	resp, body, err := readQueuedAnswer(conn)
	require.NoError(t, err, "the request sent on the new connection got no answer")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "Hello World!\n", body)
	assert.True(t, resp.Close, "the connection closes after the answer: the server is stopping")
	assert.Equal(t, 0, inst.Wait(t, 30*time.Second))
	assert.NotContains(t, inst.Stderr(), "accept failed", "stopping to accept is no failure")
}

// TestStopAnswersTheConnectionsInTheAcceptQueue: connections the kernel
// completed but the master had not accepted when SIGTERM came (here: the
// master had run out of descriptors, --max-fd) each get their answer. The
// idle keep-alive connections the stop closes give back the descriptors.
func TestStopAnswersTheConnectionsInTheAcceptQueue(t *testing.T) {
	const maxFD, queued = 48, 4
	inst := harness.Start(t, "--chdir", harness.ExamplesDir(t), "--module", "hello_world_app", "--max-fd", strconv.Itoa(maxFD))
	port := listeningPort(t, inst)
	// Idle keep-alive connections, each answered once, until the master
	// cannot accept one more.
	var idle, waiting []net.Conn
	full := func() bool { return strings.Contains(inst.Stderr(), "accept failed, retrying") }
	for len(idle) < maxFD && !full() {
		conn := harness.Dial(t, inst.Addr)
		defer conn.Close()
		harness.Eventually(t, 10*time.Second, func() bool { return acceptQueueLen(t, port) == 0 || full() },
			"the master neither accepted connection %d nor ran out of descriptors", len(idle)+1)
		if full() {
			// Waiting in the queue, or taken on a descriptor given back
			// since: it sends its request and is answered either way.
			_, err := conn.Write([]byte(queuePOST))
			require.NoError(t, err)
			waiting = append(waiting, conn)
			break
		}
		_, err := conn.Write([]byte("GET / HTTP/1.1\r\nHost: shop\r\n\r\n"))
		require.NoError(t, err)
		resp, _, err := readQueuedAnswer(conn)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		idle = append(idle, conn)
	}
	require.True(t, full(), "the master took %d connections under --max-fd %d", len(idle), maxFD)
	require.Greater(t, len(idle), queued, "enough idle connections to give back the descriptors the queued ones need")
	// More wait in the queue with their requests sent.
	for i := 0; i < queued; i++ {
		conn := harness.Dial(t, inst.Addr)
		defer conn.Close()
		_, err := conn.Write([]byte(queuePOST))
		require.NoError(t, err)
		waiting = append(waiting, conn)
	}
	harness.Eventually(t, 10*time.Second, func() bool { return acceptQueueLen(t, port) >= queued },
		"%d connections wait in the accept queue", queued)
	inst.Signal(t, syscall.SIGTERM)
	for i, conn := range waiting {
		resp, body, err := readQueuedAnswer(conn)
		if assert.NoError(t, err, "queued connection %d got no answer", i+1) {
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, "Hello World!\n", body)
		}
	}
	assert.Equal(t, 0, inst.Wait(t, 30*time.Second))
}
