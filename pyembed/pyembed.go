// Package pyembed embeds CPython in a worker process: it starts the
// interpreter once, imports the WSGI application and serves requests on
// slots, each an OS thread with its own Python thread state. It is the only
// package that imports "C"; no PyObject pointer leaves it.
package pyembed

/*
#cgo pkg-config: python3-embed
#include <stdlib.h>
#include "gw.h"
*/
import "C"

import (
	"cmp"
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"unsafe"
)

// AppSpec says which WSGI application a worker imports and how it runs.
type AppSpec struct {
	// Module is "pkg.mod" or "pkg.mod:callable"; a callable named here wins
	// over Callable. Unused when WSGIFile is set.
	Module string
	// WSGIFile is a Python file loaded as a module, with its directory
	// importable (uWSGI's --wsgi-file).
	WSGIFile string
	// Paste, when set, is a PasteDeploy URI ("config:/path/app.ini") the
	// default app is loaded from with paste.deploy.loadapp (uWSGI's
	// --paste); Module and WSGIFile are then unused.
	Paste string
	// NoFileWrapper leaves wsgi.file_wrapper out of the environ (uWSGI's
	// --wsgi-disable-file-wrapper).
	NoFileWrapper bool
	// Callable is the application's name in the module; empty means
	// "application".
	Callable string
	// PythonPath entries go to the front of sys.path, after the current
	// directory.
	PythonPath []string
	// Multiprocess and Multithread become environ's wsgi.multiprocess and
	// wsgi.multithread.
	Multiprocess, Multithread bool
	// RunOnce becomes environ's wsgi.run_once: true when the process serves
	// one request and exits, as a CGI program does (PEP 3333, "environ
	// Variables").
	RunOnce bool
	// Mounts are more apps, each chosen by the request's SCRIPT_NAME; a
	// request no mount takes goes to the app Module or WSGIFile names, or
	// gets 404 when neither is set.
	Mounts []Mount
	// ManageScriptName moves the longest mount point that prefixes
	// PATH_INFO into SCRIPT_NAME before the app is chosen, as uWSGI's
	// --manage-script-name does.
	ManageScriptName bool
	// Home is a virtualenv (or a Python installation prefix) whose
	// site-packages the interpreter uses, as uWSGI's --home; it must be of
	// BuiltVersion (see HomeVersion). Empty means the system's.
	Home string
	// ModuleList, when set, names the file --py-autoreload's master
	// watches: after the import it holds the source file of every imported
	// module, one a line after the file's modification time as the import
	// read it, and workers append the modules they import later
	// (gw_worker_modules.c).
	ModuleList string
	// ProcNames are the process titles ps shows (uWSGI's procname
	// options); the zero value leaves every process its command line.
	ProcNames ProcNames
	// Lazy makes each worker the zygote forks import the app itself
	// (uWSGI's --lazy-apps) instead of inheriting the zygote's import.
	Lazy bool
	// UWSGI is what uWSGI's Python API, the uwsgi module, tells the app
	// of the server (gw_uwsgi.c); the zero value describes one worker of
	// one thread and no options.
	UWSGI UWSGIInfo
	// Shared is what each generation's shared area holds (shared.go): the
	// user locks, caches and metrics of uWSGI's Python API.
	Shared SharedSpec
	// Spooler and Mules are the processes the zygote forks beside the
	// workers (gw_uwsgi_spooler.c, gw_uwsgi_mule.c); the zero values run none.
	Spooler Spooler
	Mules   Mules
}

// Spooler is uWSGI's spooler: processes that run the jobs queued as files
// in its folders.
type Spooler struct {
	// Dirs are the folders, absolute; none runs no spooler.
	Dirs []string
	// Processes is how many spoolers serve each folder; at least 1.
	Processes int
	// Frequency is how often a spooler scans its folder, in seconds
	// (uwsgi.spool wakes it at once); 30 when 0, as in uWSGI.
	Frequency int
	// Ordered scans in version order, priority subfolders included.
	Ordered bool
	// Quiet leaves out the log lines of each job written, run and done.
	Quiet bool
	// Chdir is where a spooler runs each job; empty: in its folder.
	Chdir string
}

// Count is the number of spooler processes, numbered from 1: folder i
// (from 0) has numbers i*processes+1 to (i+1)*processes.
func (s Spooler) Count() int { return len(s.Dirs) * max(s.Processes, 1) }

// Mules are uWSGI's mules: processes that run the app's code in the
// background.
type Mules struct {
	// Programs has one entry per mule: a Python file it runs, or "" for a
	// mule that waits for messages.
	Programs []string
	// Farms are named groups of mules that share a queue.
	Farms []Farm
}

// Farm is a named group of mules, by number from 1.
type Farm struct {
	Name  string
	Mules []int
}

// UWSGIInfo is what the uwsgi module tells of the server.
type UWSGIInfo struct {
	// Options are the options as given, in order: uwsgi.opt.
	Options []Option
	// Processes, Threads and BufferSize are uwsgi.numproc, uwsgi.cores
	// and uwsgi.buffer_size.
	Processes, Threads, BufferSize int
	// StartedOn is when the master started, in Unix seconds:
	// uwsgi.started_on.
	StartedOn int64
	// WebSocketsMaxSize is the largest message websocket_recv takes, in
	// KiB; WebSocketsPingFreq and WebSocketsPongTolerance, in seconds, when
	// it pings a quiet client and how late the pong may be. 0 for uWSGI's
	// defaults: 1024, 30 and 3.
	WebSocketsMaxSize, WebSocketsPingFreq, WebSocketsPongTolerance int
}

// Option is one option as uWSGI's module shows it in uwsgi.opt: its key
// without dashes, and its value, or none for a flag given bare on the
// command line (uWSGI shows True).
type Option struct {
	Key, Value string
	Bare       bool
}

// optionsJSON encodes options as gw_uwsgi_source.h reads them: a list of
// [key, value], with true for the value of a bare flag.
func optionsJSON(options []Option) string {
	entries := make([][2]any, len(options))
	for i, o := range options {
		entries[i] = [2]any{o.Key, o.Value}
		if o.Bare {
			entries[i][1] = true
		}
	}
	b, _ := json.Marshal(entries) // strings and bools cannot fail
	return string(b)
}

// processes, threads are the counts the uwsgi module shows; at least 1.
func (u UWSGIInfo) processes() int { return max(u.Processes, 1) }
func (u UWSGIInfo) threads() int   { return max(u.Threads, 1) }

// hasApp reports whether spec names any app.
func (spec AppSpec) hasApp() bool {
	return spec.Module != "" || spec.WSGIFile != "" || spec.Paste != "" || len(spec.Mounts) > 0
}

// LoadError reports an application that could not be imported. The
// traceback, if any, has already been printed to stderr.
type LoadError struct {
	// Summary is one line naming the module, file or callable and the fix.
	Summary string
}

func (e *LoadError) Error() string { return "pyembed: " + e.Summary }

var (
	initOnce sync.Once
	initErr  error
	errInit  = errors.New("pyembed: the interpreter can be initialised only once per process")
)

// summaryCap bounds a load failure's summary line.
const summaryCap = 1024

// Init starts the interpreter, puts the current directory and then
// spec.PythonPath at the front of sys.path and imports the application. It
// returns a *LoadError when the application cannot be loaded. Python can be
// started once per process; a second call returns an error.
func Init(spec AppSpec) error {
	called := false
	initOnce.Do(func() {
		called = true
		initErr = initInterpreter(spec)
	})
	if !called {
		return errInit
	}
	return initErr
}

func initInterpreter(spec AppSpec) error {
	module, callable := splitModule(spec.Module, spec.Callable)
	if !spec.hasApp() {
		return &LoadError{Summary: "no application given (use --module, --wsgi-file or --mount)"}
	}
	cstrings := []*C.char{}
	cstr := func(s string) *C.char {
		p := C.CString(s)
		cstrings = append(cstrings, p)
		return p
	}
	defer func() {
		for _, p := range cstrings {
			C.free(unsafe.Pointer(p))
		}
	}()

	paths := make([]*C.char, len(spec.PythonPath)+1) // +1: never a zero-length array to index
	for i, p := range spec.PythonPath {
		paths[i] = cstr(p)
	}
	// The array of pointers lives in C memory: a Go slice holding C pointers
	// may be passed, but C memory keeps the rules simple.
	cpaths := (**C.char)(C.malloc(C.size_t(len(paths)) * C.size_t(unsafe.Sizeof(paths[0]))))
	defer C.free(unsafe.Pointer(cpaths))
	copy(unsafe.Slice(cpaths, len(paths)), paths)

	summary := (*C.char)(C.malloc(summaryCap))
	defer C.free(unsafe.Pointer(summary))
	cspec := C.gw_spec{
		module: cstr(module), wsgi_file: cstr(spec.WSGIFile), callable: cstr(callable),
		paths: cpaths, npaths: C.int(len(spec.PythonPath)),
		mounts: cstr(mountLines(spec.Mounts)), home: cstr(spec.Home), module_list: cstr(spec.ModuleList),
		paste: cstr(spec.Paste), no_file_wrapper: cBool(spec.NoFileWrapper),
		manage_script_name: cBool(spec.ManageScriptName),
		multithread:        cBool(spec.Multithread), multiprocess: cBool(spec.Multiprocess), run_once: cBool(spec.RunOnce),
	}
	configureUWSGI(spec.UWSGI)
	if err := sharePrivately(spec.Shared); err != nil {
		return err
	}
	rc := C.gw_init(cstr(os.Args[0]), &cspec, summary, summaryCap)
	if rc != 0 {
		return &LoadError{Summary: C.GoString(summary)}
	}
	return nil
}

// configureUWSGI tells the uwsgi module of a process that has no master
// (CGI mode, tests): masterpid() is 0. Its strings are kept for the life
// of the process, as the module may read them at any time.
func configureUWSGI(u UWSGIInfo) {
	C.gw_uwsgi_configure(&C.gw_uwsgi_info{
		opt_json: C.CString(optionsJSON(u.Options)),
		numproc:  C.int(u.processes()), cores: C.int(u.threads()), buffer_size: C.int(u.BufferSize),
		started_on: C.long(u.StartedOn), websockets_max_size: C.long(u.WebSocketsMaxSize),
		websockets_ping_freq: C.long(u.WebSocketsPingFreq), websockets_pong_tolerance: C.long(u.WebSocketsPongTolerance),
	})
}

// splitModule separates "pkg.mod:callable" and applies the default
// callable name.
func splitModule(module, callable string) (string, string) {
	if m, c, ok := strings.Cut(module, ":"); ok && c != "" {
		return m, c
	}
	module, _, _ = strings.Cut(module, ":")
	if callable == "" {
		callable = "application"
	}
	return module, callable
}

func cBool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// Version returns the running interpreter's version, such as "3.11.2". It
// is meaningful after Init.
func Version() string {
	v := C.GoString(C.gw_version())
	v, _, _ = strings.Cut(v, " ")
	return v
}

// ZygoteEnv returns the environment that makes this binary, when exec'd, a
// zygote for spec (gw_zygote.c): before the Go runtime starts it imports the
// app, then forks workers on the master's request over fd 3.
func ZygoteEnv(spec AppSpec) []string {
	module, callable := splitModule(spec.Module, spec.Callable)
	flag := func(b bool) string {
		if b {
			return "1"
		}
		return "0"
	}
	return []string{
		"GOWSGI_ZYGOTE=1",
		"GOWSGI_APP_MODULE=" + module,
		"GOWSGI_APP_WSGI_FILE=" + spec.WSGIFile,
		"GOWSGI_APP_CALLABLE=" + callable,
		"GOWSGI_APP_PYTHONPATH=" + strings.Join(spec.PythonPath, "\n"),
		"GOWSGI_APP_MULTIPROCESS=" + flag(spec.Multiprocess),
		"GOWSGI_APP_MULTITHREAD=" + flag(spec.Multithread),
		"GOWSGI_APP_MOUNTS=" + mountLines(spec.Mounts),
		"GOWSGI_APP_MANAGE_SCRIPT_NAME=" + flag(spec.ManageScriptName),
		"GOWSGI_APP_HOME=" + spec.Home,
		"GOWSGI_APP_MODULE_LIST=" + spec.ModuleList,
		"GOWSGI_APP_PASTE=" + spec.Paste,
		"GOWSGI_APP_NO_FILE_WRAPPER=" + flag(spec.NoFileWrapper),
		"GOWSGI_APP_LAZY=" + flag(spec.Lazy),
		"GOWSGI_APP_PROCNAME_AUTO=" + flag(spec.ProcNames.Auto),
		"GOWSGI_APP_PROCNAME_PREFIX=" + spec.ProcNames.Prefix,
		"GOWSGI_APP_PROCNAME=" + spec.ProcNames.Name,
		"GOWSGI_APP_PROCNAME_APPEND=" + spec.ProcNames.Append,
		"GOWSGI_APP_UWSGI_OPT=" + optionsJSON(spec.UWSGI.Options),
		"GOWSGI_APP_PROCESSES=" + strconv.Itoa(spec.UWSGI.processes()),
		"GOWSGI_APP_THREADS=" + strconv.Itoa(spec.UWSGI.threads()),
		"GOWSGI_APP_BUFFER_SIZE=" + strconv.Itoa(spec.UWSGI.BufferSize),
		"GOWSGI_APP_WEBSOCKETS_MAX_SIZE=" + strconv.Itoa(spec.UWSGI.WebSocketsMaxSize),
		"GOWSGI_APP_WEBSOCKETS_PING_FREQ=" + strconv.Itoa(spec.UWSGI.WebSocketsPingFreq),
		"GOWSGI_APP_WEBSOCKETS_PONG_TOLERANCE=" + strconv.Itoa(spec.UWSGI.WebSocketsPongTolerance),
		"GOWSGI_APP_STARTED_ON=" + strconv.FormatInt(spec.UWSGI.StartedOn, 10),
		"GOWSGI_APP_SPOOLERS=" + strings.Join(spec.Spooler.Dirs, "\n"),
		"GOWSGI_APP_SPOOLER_PROCESSES=" + strconv.Itoa(max(spec.Spooler.Processes, 1)),
		"GOWSGI_APP_SPOOLER_FREQUENCY=" + strconv.Itoa(cmp.Or(spec.Spooler.Frequency, 30)),
		"GOWSGI_APP_SPOOLER_ORDERED=" + flag(spec.Spooler.Ordered),
		"GOWSGI_APP_SPOOLER_QUIET=" + flag(spec.Spooler.Quiet),
		"GOWSGI_APP_SPOOLER_CHDIR=" + spec.Spooler.Chdir,
		"GOWSGI_APP_MULES=" + strconv.Itoa(len(spec.Mules.Programs)),
		"GOWSGI_APP_MULE_PROGRAMS=" + strings.Join(spec.Mules.Programs, "\n"),
		"GOWSGI_APP_FARMS=" + farmLines(spec.Mules.Farms),
	}
}

// farmLines encodes farms as gw_uwsgi_mule.c reads them: "NAME:ID,ID" lines.
func farmLines(farms []Farm) string {
	var b strings.Builder
	for _, f := range farms {
		ids := make([]string, len(f.Mules))
		for i, id := range f.Mules {
			ids[i] = strconv.Itoa(id)
		}
		b.WriteString(f.Name + ":" + strings.Join(ids, ",") + "\n")
	}
	return b.String()
}

// ZygoteReloadEnv is the variable that tells a zygote it starts the workers
// of a reload (uwsgi.is_a_reload), added to ZygoteEnv's.
const ZygoteReloadEnv = "GOWSGI_APP_RELOAD=1"

// ZygoteSignalFDEnv names the descriptor a zygote inherits as the socket
// its processes share with the master for uWSGI's signals (the second of
// its ExtraFiles, after the zygote socket on fd 3).
const ZygoteSignalFDEnv = "GOWSGI_APP_SIGNAL_FD=4"
