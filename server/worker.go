// The worker role: the process the master execs to run Python when there
// is no zygote (only --mount apps). It follows the worker contract of
// docs/internals.md: inherited descriptors for the control pipe, the
// scoreboard and one socket per slot, one thread per slot, and a one-line
// report to the master once the app is imported.
package server

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
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

// workerModuleListEnv names the master's --py-autoreload module list for an
// exec'd worker, which has no zygote to have written it.
const workerModuleListEnv = "GOWSGI_MODULE_LIST"

// Exit statuses of the worker role.
const (
	workerExitFailed     = 1
	workerExitLoadFailed = 2
)

// RunWorker runs the worker role for the application spec names and
// returns the process's exit status: 0 once every slot socket has reached
// EOF, 2 when the application cannot be imported (after reporting it on the
// control pipe), 1 on any other failure. A worker the zygote forks never
// gets here: it serves the same C loop (pyembed.ServeSlots) without Go.
func RunWorker(spec pyembed.AppSpec) int {
	spec.ModuleList = os.Getenv(workerModuleListEnv)
	num, fds, err := workerEnv()
	// What the master tells its worker is not the app's business: Python
	// copies the environment into os.environ as it starts.
	for _, name := range []string{"GOWSGI_WORKER", "GOWSGI_SLOTS", workerModuleListEnv} {
		os.Unsetenv(name)
	}
	log := slog.Default().With("worker", num, "pid", os.Getpid())
	if err != nil {
		log.Error("worker cannot start", "error", err)
		return workerExitFailed
	}
	// The master owns Ctrl-C, reloads and stops; it retires a worker by
	// closing its slot sockets and kills it only with SIGKILL. SIGTERM is
	// ignored too because systemd (KillMode=control-group) and `kill` of a
	// process group send it to every process at once: a worker dying then
	// would cut the in-flight requests the master is waiting for. SIGPIPE
	// as Python itself would: a write to a closed pipe or socket raises
	// BrokenPipeError in the app instead of killing the worker.
	signal.Ignore(syscall.SIGINT, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGPIPE)

	board, err := mapScoreboard(fds.scoreboard, len(fds.slots))
	if err != nil {
		log.Error("worker cannot start", "error", err)
		return workerExitFailed
	}
	if err := pyembed.Init(spec); err != nil {
		summary := err.Error()
		if le := (*pyembed.LoadError)(nil); errors.As(err, &le) {
			summary = le.Summary
		}
		reportLoadFailure(fds.control, log, summary)
		return workerExitLoadFailed
	}
	status, err := pyembed.ServeSlots(num, fds.control, board, fds.slots)
	if err != nil {
		log.Error("worker cannot start", "error", err)
	}
	return status
}

// workerEnv reads the worker number and the slot count the master set;
// the descriptors are at 3 (control pipe), 4 (scoreboard) and 5 onwards
// (one socket per slot).
func workerEnv() (num int, fds workerFDs, err error) {
	num, err = strconv.Atoi(os.Getenv("GOWSGI_WORKER"))
	if err != nil || num < 1 {
		return 0, fds, fmt.Errorf("server: GOWSGI_WORKER=%q is not a worker number", os.Getenv("GOWSGI_WORKER"))
	}
	slots, err := strconv.Atoi(os.Getenv("GOWSGI_SLOTS"))
	if err != nil || slots < 1 {
		return num, fds, fmt.Errorf("server: GOWSGI_SLOTS=%q is not a slot count", os.Getenv("GOWSGI_SLOTS"))
	}
	fds = workerFDs{control: workerControlFD, scoreboard: workerScoreboardFD, slots: make([]int, slots)}
	for i := range fds.slots {
		fds.slots[i] = workerFirstSlotFD + i
	}
	return num, fds, nil
}

// mapScoreboard maps the inherited scoreboard memfd, slots records long;
// the mapping outlives the descriptor, which is closed.
func mapScoreboard(fd, slots int) ([]byte, error) {
	defer unix.Close(fd)
	mem, err := unix.Mmap(fd, 0, slots*wsgi.SlotRecordLen, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("server: mapping the scoreboard: %w", err)
	}
	return mem, nil
}

// reportLoadFailure writes the one control line of a worker that cannot
// load the app: 'E' and the failure's summary.
func reportLoadFailure(fd int, log *slog.Logger, summary string) {
	control := os.NewFile(uintptr(fd), "control")
	defer control.Close()
	line := "E" + strings.ReplaceAll(summary, "\n", " ") + "\n"
	if _, err := io.WriteString(control, line); err != nil {
		log.Error("worker cannot report to the master", "error", err)
	}
}
