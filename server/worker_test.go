// Tests of the worker role: the test binary re-executes itself as a worker
// with the descriptors the master would hand it, and the test plays master.
package server

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gowsgi/gowsgi/pyembed"
	"github.com/gowsgi/gowsgi/wsgi"
)

// workerModuleEnv names the module a re-executed worker imports.
const workerModuleEnv = "SERVER_TEST_WORKER_MODULE"

// workerWait bounds every wait on the child worker.
const workerWait = 15 * time.Second

func TestMain(m *testing.M) {
	if os.Getenv("GOWSGI_WORKER") != "" {
		testdata, _ := filepath.Abs("testdata")
		os.Exit(RunWorker(pyembed.AppSpec{
			Module:       os.Getenv(workerModuleEnv),
			PythonPath:   []string{testdata},
			Multiprocess: true,
		}))
	}
	os.Exit(m.Run())
}

// childWorker is a worker process started the way the master starts one.
type childWorker struct {
	cmd     *exec.Cmd
	control *bufio.Reader
	slots   []*os.File // the master's ends, with deadlines
	board   wsgi.Scoreboard
	stderr  *strings.Builder
	exited  chan error
}

func startWorker(t *testing.T, module string, slots int) *childWorker {
	controlR, controlW, err := os.Pipe()
	require.NoError(t, err)
	t.Cleanup(func() { controlR.Close() })
	boardFD, err := unix.MemfdCreate("scoreboard", unix.MFD_CLOEXEC)
	require.NoError(t, err)
	boardFile := os.NewFile(uintptr(boardFD), "scoreboard")
	require.NoError(t, unix.Ftruncate(boardFD, int64(slots*wsgi.SlotRecordLen)))
	mem, err := unix.Mmap(boardFD, 0, slots*wsgi.SlotRecordLen, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Munmap(mem) })
	board, err := wsgi.NewScoreboard(mem)
	require.NoError(t, err)

	w := &childWorker{control: bufio.NewReader(controlR), board: board, stderr: &strings.Builder{}, exited: make(chan error, 1)}
	childEnds := []*os.File{controlW, boardFile}
	for range slots {
		// Non-blocking, so the master's end supports deadlines; the child's
		// end is made blocking when it is handed over.
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
		require.NoError(t, err)
		w.slots = append(w.slots, os.NewFile(uintptr(fds[0]), "master-slot"))
		childEnds = append(childEnds, os.NewFile(uintptr(fds[1]), "worker-slot"))
	}
	w.cmd = exec.Command(os.Args[0], "-test.run=^$")
	w.cmd.Env = append(os.Environ(), "GOWSGI_WORKER=1", "GOWSGI_SLOTS="+strconv.Itoa(slots), workerModuleEnv+"="+module)
	w.cmd.ExtraFiles = childEnds
	w.cmd.Stderr = w.stderr
	require.NoError(t, w.cmd.Start())
	for _, f := range childEnds {
		f.Close()
	}
	go func() { w.exited <- w.cmd.Wait() }()
	t.Cleanup(func() {
		w.closeSlots()
		select {
		case <-w.exited:
		case <-time.After(workerWait):
			w.cmd.Process.Kill()
			<-w.exited
		}
	})
	return w
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
		t.Fatalf("no control line from the worker; stderr:\n%s", w.stderr.String())
		return ""
	}
}

// exitCode waits a bounded time for the worker to exit.
func (w *childWorker) exitCode(t *testing.T) int {
	select {
	case err := <-w.exited:
		w.exited <- err // for the cleanup
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode()
		}
		require.NoError(t, err)
		return 0
	case <-time.After(workerWait):
		t.Fatal("the worker did not exit")
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
func readResponse(t *testing.T, slot *os.File, fr *wsgi.FrameReader) workerResponse {
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

func TestWorkerServesSlots(t *testing.T) {
	w := startWorker(t, "worker_app", 2)
	assert.Regexp(t, `^R3\.\d+\.\d+\n$`, w.controlLine(t))

	// Two requests in one write on slot 0: the second is already buffered
	// when the first is served, and both come back in order.
	pipelined := append(request(1, "/one"), request(2, "/two")...)
	_, err := w.slots[0].Write(pipelined)
	require.NoError(t, err)
	_, err = w.slots[1].Write(request(3, "/three"))
	require.NoError(t, err)

	fr0, fr1 := wsgi.NewFrameReader(w.slots[0]), wsgi.NewFrameReader(w.slots[1])
	tests := []struct {
		fr   *wsgi.FrameReader
		slot *os.File
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
	require.NoError(t, w.cmd.Process.Signal(os.Interrupt))
	_, err = w.slots[1].Write(request(4, "/after-sigint"))
	require.NoError(t, err)
	assert.Equal(t, "hello /after-sigint", readResponse(t, w.slots[1], fr1).body)

	w.closeSlots()
	assert.Equal(t, 0, w.exitCode(t), w.stderr.String())
}

func TestWorkerReportsLoadFailure(t *testing.T) {
	w := startWorker(t, "no_such_module", 1)
	assert.Equal(t, "Ecannot import module \"no_such_module\": ModuleNotFoundError: No module named 'no_such_module'\n",
		w.controlLine(t))
	assert.Equal(t, 2, w.exitCode(t))
	assert.Contains(t, w.stderr.String(), "Traceback (most recent call last)")
}
