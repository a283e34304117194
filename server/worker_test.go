// Tests of a worker as the zygote forks it: the test plays master, starting
// a zygote (this test binary, whose cgo constructor is the zygote:
// pyembed/gw_zygote.c), asking it for one worker and talking to that worker
// over the descriptors the master would hand it.
package server

import (
	"bufio"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gowsgi/gowsgi/pyembed"
	"github.com/gowsgi/gowsgi/wsgi"
)

// workerWait bounds every wait on the child worker.
const workerWait = 15 * time.Second

// childWorker is a worker process forked the way the master has one forked.
type childWorker struct {
	proc    *zygoteWorker
	control *bufio.Reader
	slots   []*net.UnixConn // the master's ends
	board   wsgi.Scoreboard
}

func startWorker(t *testing.T, spec pyembed.AppSpec, slots int) *childWorker {
	z, err := startZygote(os.Args[0], []string{"-test.run=^$"}, append(os.Environ(), pyembed.ZygoteEnv(spec)...), nil,
		nil, nil, childOutput{}, nil, slog.Default())
	require.NoError(t, err)
	t.Cleanup(func() { z.proc.Kill() }) // its worker dies with it
	files, err := newWorkerFiles(slots)
	require.NoError(t, err)
	proc, err := z.fork(1, slots, files.child)
	files.closeChild()
	require.NoError(t, err)
	t.Cleanup(files.closeMaster)
	return &childWorker{proc: proc, control: bufio.NewReader(files.control), slots: files.conns, board: files.board.sb}
}

func (w *childWorker) closeSlots() {
	for _, s := range w.slots {
		s.Close()
	}
}

// controlLine reads the worker's one control line, bounded in time.
func (w *childWorker) controlLine(t *testing.T) string {
	line := make(chan string, 1)
	go func() {
		s, _ := w.control.ReadString('\n')
		line <- s
	}()
	select {
	case s := <-line:
		return s
	case <-time.After(workerWait):
		require.FailNow(t, "no control line from the worker")
		return ""
	}
}

// exitCode waits a bounded time for the worker to exit.
func (w *childWorker) exitCode(t *testing.T) int {
	select {
	case <-w.proc.exited:
		status, err := w.proc.wait()
		require.NoError(t, err)
		require.False(t, status.Signaled(), "killed by %v", status.Signal())
		return status.ExitStatus()
	case <-time.After(workerWait):
		require.FailNow(t, "the worker did not exit")
		return -1
	}
}

type workerResponse struct {
	id      uint32
	status  string
	headers map[string]string
	body    string
	end     uint8
}

// readResponse reads one response's frames from a slot socket.
func readResponse(t *testing.T, slot *net.UnixConn, fr *wsgi.FrameReader) workerResponse {
	require.NoError(t, slot.SetReadDeadline(time.Now().Add(workerWait)))
	r := workerResponse{headers: map[string]string{}}
	for {
		f, err := fr.Next()
		require.NoError(t, err)
		r.id = f.ID
		switch f.Kind {
		case wsgi.FrameHead:
			status, headers, err := wsgi.ParseHead(f.Payload)
			require.NoError(t, err)
			r.status = status
			require.NoError(t, wsgi.EachVar(headers, func(k, v []byte) bool {
				r.headers[string(k)] = string(v)
				return true
			}))
		case wsgi.FrameBody:
			r.body += string(f.Payload)
		case wsgi.FrameEnd:
			r.end = f.Flags
			return r
		default:
			t.Fatalf("unexpected frame %q", f.Kind)
		}
	}
}

func request(id uint32, path string) []byte {
	req := &wsgi.Request{}
	req.Vars.Add("REQUEST_METHOD", "GET")
	req.Vars.Add("PATH_INFO", path)
	return wsgi.AppendRequest(nil, id, req)
}

// workerSpec is the app spec of the worker tests: module from testdata,
// imported by the zygote or, lazy, by the worker itself.
func workerSpec(t *testing.T, module string, lazy bool) pyembed.AppSpec {
	spec := zygoteSpec(t, module)
	spec.Lazy = lazy
	return spec
}

func TestWorkerServesSlots(t *testing.T) {
	for _, lazy := range []bool{false, true} {
		t.Run(map[bool]string{false: "forked after the import", true: "lazy"}[lazy], func(t *testing.T) {
			w := startWorker(t, workerSpec(t, "worker_app", lazy), 2)
			assert.Regexp(t, `^R3\.\d+\.\d+\n$`, w.controlLine(t))

			// Two requests in one write on slot 0: the second is already
			// buffered when the first is served, and both come back in order.
			pipelined := append(request(1, "/one"), request(2, "/two")...)
			_, err := w.slots[0].Write(pipelined)
			require.NoError(t, err)
			_, err = w.slots[1].Write(request(3, "/three"))
			require.NoError(t, err)

			fr0, fr1 := wsgi.NewFrameReader(w.slots[0]), wsgi.NewFrameReader(w.slots[1])
			tests := []struct {
				fr   *wsgi.FrameReader
				slot *net.UnixConn
				id   uint32
				body string
			}{
				{fr0, w.slots[0], 1, "hello /one"},
				{fr0, w.slots[0], 2, "hello /two"},
				{fr1, w.slots[1], 3, "hello /three"},
			}
			for _, tt := range tests {
				r := readResponse(t, tt.slot, tt.fr)
				assert.Equal(t, tt.id, r.id)
				assert.Equal(t, "200 OK", r.status)
				assert.Equal(t, map[string]string{"Content-Type": "text/plain", "X-Multiprocess": "True"}, r.headers)
				assert.Equal(t, tt.body, r.body)
				assert.Equal(t, uint8(0), r.end)
			}
			assert.Equal(t, uint64(2), w.board.Served(0))
			assert.Equal(t, uint64(1), w.board.Served(1))

			// SIGINT belongs to the master: the worker keeps serving.
			require.NoError(t, unix.Kill(w.proc.pid(), unix.SIGINT))
			_, err = w.slots[1].Write(request(4, "/after-sigint"))
			require.NoError(t, err)
			assert.Equal(t, "hello /after-sigint", readResponse(t, w.slots[1], fr1).body)

			w.closeSlots()
			assert.Equal(t, 0, w.exitCode(t))
		})
	}
}

// A lazy worker imports the app itself, so it is the one to report that
// the import failed: on its control pipe, as the worker contract says.
func TestLazyWorkerReportsLoadFailure(t *testing.T) {
	w := startWorker(t, workerSpec(t, "no_such_module", true), 1)
	assert.Equal(t, "Ecannot import module \"no_such_module\": ModuleNotFoundError: No module named 'no_such_module'\n",
		w.controlLine(t))
	assert.Equal(t, 2, w.exitCode(t))
}
