// The worker role: the process the master execs to run Python. It follows
// the worker contract of docs/internals.md: inherited descriptors for the
// control pipe, the scoreboard and one socket per slot, one OS-locked
// goroutine per slot, and a one-line report to the master once the app is
// imported.
package server

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/gowsgi/gowsgi/pyembed"
	"github.com/gowsgi/gowsgi/wsgi"
)

// workerFDs are the descriptors a worker serves with (docs/internals.md,
// "Worker process contract").
type workerFDs struct {
	control, scoreboard int
	slots               []int
}

// The layout an exec'd worker inherits: control pipe, scoreboard, then one
// socket per slot.
const (
	workerControlFD    = 3
	workerScoreboardFD = 4
	workerFirstSlotFD  = 5
)

// Exit statuses of the worker role.
const (
	workerExitOK         = 0
	workerExitFailed     = 1
	workerExitLoadFailed = 2
)

// RunWorker runs the worker role for the application spec names and
// returns the process's exit status: 0 once every slot socket has reached
// EOF, 2 when the application cannot be imported (after reporting it on the
// control pipe), 1 on any other failure.
func RunWorker(spec pyembed.AppSpec) int {
	num, fds, err := workerEnv()
	slots := len(fds.slots)
	log := slog.Default().With("worker", num, "pid", os.Getpid())
	if err != nil {
		log.Error("worker cannot start", "error", err)
		return workerExitFailed
	}
	// The master owns Ctrl-C, reloads and stops; it retires a worker by
	// closing its slot sockets and kills it only with SIGKILL. SIGTERM is
	// ignored too because systemd (KillMode=control-group) and `kill` of a
	// process group send it to every process at once: a worker dying then
	// would cut the in-flight requests the master is waiting for.
	signal.Ignore(syscall.SIGINT, syscall.SIGHUP, syscall.SIGTERM)
	control := os.NewFile(uintptr(fds.control), "control")
	defer control.Close()

	board, err := mapScoreboard(fds.scoreboard, slots)
	if err != nil {
		log.Error("worker cannot start", "error", err)
		return workerExitFailed
	}
	if err := pyembed.Init(spec); err != nil {
		summary := err.Error()
		if le := (*pyembed.LoadError)(nil); errors.As(err, &le) {
			summary = le.Summary
		}
		report(control, log, 'E', summary)
		return workerExitLoadFailed
	}

	ready := make(chan error, slots)
	var wg sync.WaitGroup
	for i := range slots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			serveSlot(i, fds.slots[i], board.Record(i), ready, log)
		}()
	}
	for range slots {
		if err := <-ready; err != nil {
			log.Error("worker cannot start", "error", err)
			return workerExitFailed
		}
	}
	report(control, log, 'R', pyembed.Version())
	wg.Wait()
	return workerExitOK
}

// workerEnv reads the worker number, the slot count and the descriptors
// the master set up. A worker forked by the zygote finds its descriptors
// listed in GOWSGI_WORKER_FDS; an exec'd one has them at 3, 4, 5 and on.
func workerEnv() (num int, fds workerFDs, err error) {
	num, err = strconv.Atoi(os.Getenv("GOWSGI_WORKER"))
	if err != nil || num < 1 {
		return 0, fds, fmt.Errorf("server: GOWSGI_WORKER=%q is not a worker number", os.Getenv("GOWSGI_WORKER"))
	}
	slots, err := strconv.Atoi(os.Getenv("GOWSGI_SLOTS"))
	if err != nil || slots < 1 {
		return num, fds, fmt.Errorf("server: GOWSGI_SLOTS=%q is not a slot count", os.Getenv("GOWSGI_SLOTS"))
	}
	listed := os.Getenv("GOWSGI_WORKER_FDS")
	if listed == "" {
		fds = workerFDs{control: workerControlFD, scoreboard: workerScoreboardFD, slots: make([]int, slots)}
		for i := range fds.slots {
			fds.slots[i] = workerFirstSlotFD + i
		}
		return num, fds, nil
	}
	fds, err = parseWorkerFDs(listed)
	if err == nil && len(fds.slots) != slots {
		err = fmt.Errorf("server: GOWSGI_WORKER_FDS lists %d slot sockets for %d slots", len(fds.slots), slots)
	}
	return num, fds, err
}

// parseWorkerFDs reads "control,scoreboard,slot,slot…".
func parseWorkerFDs(listed string) (workerFDs, error) {
	var numbers []int
	for _, field := range strings.Split(listed, ",") {
		fd, err := strconv.Atoi(field)
		if err != nil || fd < 0 {
			return workerFDs{}, fmt.Errorf("server: GOWSGI_WORKER_FDS=%q is not a list of descriptors", listed)
		}
		numbers = append(numbers, fd)
	}
	if len(numbers) < 3 {
		return workerFDs{}, fmt.Errorf("server: GOWSGI_WORKER_FDS=%q lists no slot socket", listed)
	}
	return workerFDs{control: numbers[0], scoreboard: numbers[1], slots: numbers[2:]}, nil
}

// mapScoreboard maps the inherited scoreboard memfd; the mapping outlives
// the descriptor, which is closed.
func mapScoreboard(fd, slots int) (wsgi.Scoreboard, error) {
	defer unix.Close(fd)
	mem, err := unix.Mmap(fd, 0, slots*wsgi.SlotRecordLen, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return wsgi.Scoreboard{}, fmt.Errorf("server: mapping the scoreboard: %w", err)
	}
	return wsgi.NewScoreboard(mem)
}

// report writes the one control line: kind 'R' with the Python version, or
// 'E' with a load failure's summary.
func report(control *os.File, log *slog.Logger, kind byte, text string) {
	line := string(kind) + strings.ReplaceAll(text, "\n", " ") + "\n"
	if _, err := io.WriteString(control, line); err != nil {
		log.Error("worker cannot report to the master", "error", err)
	}
}

// serveSlot serves slot i's socket until the master closes it. The
// goroutine stays locked to its OS thread: the slot's Python thread state
// belongs to that thread, and the thread ends with the goroutine.
func serveSlot(i, fd int, record []byte, ready chan<- error, log *slog.Logger) {
	runtime.LockOSThread()
	conn := os.NewFile(uintptr(fd), "slot"+strconv.Itoa(i))
	defer conn.Close() // after slot.Close, which writes what is still buffered
	slot, err := pyembed.NewSlot(fd, record)
	ready <- err
	if err != nil {
		return
	}
	defer slot.Close()

	reader := wsgi.NewFrameReader(conn)
	for {
		f, err := reader.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err == nil && f.Kind != wsgi.FrameRequest {
			err = fmt.Errorf("server: worker got a %q frame, want a request", f.Kind)
		}
		if err == nil {
			// Every response leaves as its request ends: the master sends a
			// busy slot its next request early (server/slot.go), and holding
			// a finished response back until that one is done too would make
			// a fast request wait for a slow one.
			err = slot.Serve(f.ID, f.Flags, f.Payload, true)
		}
		if err != nil {
			log.Error("worker slot failed", "slot", i, "error", err)
			return
		}
	}
}
