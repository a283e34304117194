// The options: one table, shared by the command line, the UWSGI_*
// environment and ini files (config.go reads those). gowsgi takes uWSGI's
// option names so a uWSGI configuration keeps working, which is why this is
// not the flag package: uWSGI spells options "--opt value" and
// "--opt=value", has short forms, repeats list options, lets the last scalar
// win and reads booleans its own way. What the parsed options become for
// the master and the workers is in options_server.go.
package main

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gowsgi/gowsgi/gateways"
	"github.com/gowsgi/gowsgi/pyembed"
	"github.com/gowsgi/gowsgi/server"
	"github.com/gowsgi/gowsgi/wsgi"
)

// optionKind says how an option's value is read.
type optionKind int

const (
	kindString  optionKind = iota
	kindInt                // a whole number within [min, max]
	kindBool               // a bare flag; "--flag=false" also works
	kindList               // each use appends
	kindSeconds            // a whole number of seconds
	kindMode               // an octal file mode; the value is optional
	kindINI                // an ini file to read where the option appears
)

// option is one row of the option table.
type option struct {
	names    []string // long names first; the first is the one --help shows
	kind     optionKind
	arg      string // the value's name in --help
	help     string
	min, max int64 // for kindInt and kindSeconds
	target   any   // *string, *int, *bool, *[]string, *time.Duration or *fs.FileMode
	bare     any   // for kindMode: the value when none is given
	// check, when set, vets the value of an option that has no target.
	check func(name, value string) error
	// refusal, when set, is why gowsgi refuses the option.
	refusal string
}

// options are the parsed command line.
type options struct {
	HTTPSockets  []string
	HTTPSSockets []string // "ADDR,CERT,KEY"
	UWSGISockets []string
	// Sockets are --socket's, served as SocketProtocol (uwsgi by default).
	Sockets        []string
	SocketProtocol server.Protocol
	SCGISockets    []string
	FastCGISockets []string
	ChmodSocket    fs.FileMode
	// Umask, when UmaskSet, is the umask the master sets first (--umask).
	Umask         int
	UmaskSet      bool
	Vacuum        bool
	Module        string
	WSGIFile      string
	Paste         string // a PasteDeploy URI (--paste)
	NoFileWrapper bool
	Callable      string
	PythonPath    []string
	Chdir         string
	Processes     int
	// The cheaper subsystem (--cheaper and its options); CheaperMin 0 is off.
	CheaperMin, CheaperInitial, CheaperStep, CheaperOverload int
	CheaperAlgo                                              string
	BusynessMax, BusynessMin                                 int
	// ProcessesFrom says where --processes auto took its count from.
	ProcessesFrom   string
	ShutdownDelay   time.Duration
	HealthSockets   []string
	Threads         int
	GracefulTimeout time.Duration
	DisableLogging  bool
	SpoolThreshold  int
	// ResponseSpoolLimit bounds the spool of a response waiting for a slow
	// client (--response-spool-limit).
	ResponseSpoolLimit int
	BufferSize         int
	// WebSocketsMaxSize is the largest WebSocket message, in KiB
	// (--websockets-max-size); WebSocketsPingFreq and
	// WebSocketsPongTolerance, in seconds, when websocket_recv pings a
	// quiet client and how late its pong may be.
	WebSocketsMaxSize       int
	WebSocketsPingFreq      int
	WebSocketsPongTolerance int
	Help                    bool
	Version                 bool
	// The process options (process.go).
	PidFile        string
	UID, GID       string
	MasterAsRoot   bool
	Env            []string // KEY=VALUE
	LogTo          string
	Daemonize      string // the log file of the detached master
	TouchReload    []string
	TouchLogReopen []string
	PyAutoReload   time.Duration
	Listen         int
	HTTPTimeout    time.Duration
	// HTTPKeepalive, when not 0, is how long a keep-alive HTTP connection
	// may wait for its next request (--http-keepalive SECONDS).
	HTTPKeepalive time.Duration
	// ProxyProtocol: the plain HTTP sockets expect a PROXY header;
	// ProxyProtocolSockets are HTTP sockets that expect one.
	ProxyProtocol        bool
	ProxyProtocolSockets []string
	// ForwardedAllowIPs are the proxies whose X-Forwarded-* are believed.
	ForwardedAllowIPs []string
	// LogJSON writes every log line as one JSON object.
	LogJSON       bool
	SocketTimeout time.Duration
	Reload, Stop  string // pidfiles to signal instead of serving
	// The apps under mount points and the virtualenv (apps.go).
	Mounts           []string // MOUNTPOINT=APP
	ManageScriptName bool
	Home             string
	LazyApps         bool // each worker imports the app (uWSGI's --lazy-apps)
	// FSReload are the paths --fs-reload watches.
	FSReload []string
	// HonourStdin keeps the standard input (--honour-stdin), and
	// DaemonsHonourStdin passes it to the daemons.
	HonourStdin, DaemonsHonourStdin bool
	// ProcNames are the titles ps shows (--procname and its kin).
	ProcNames pyembed.ProcNames
	// Strict makes the Unknown keys an error (not the Unimplemented ones).
	Strict bool
	// Unknown lists, as spelled, the keys no option has and no %(name)
	// used; uWSGI accepts those silently, gowsgi warns.
	Unknown []string
	// Unimplemented lists, as spelled, the uWSGI options gowsgi does not
	// implement; gowsgi warns, and --strict lets them be, as uWSGI's would.
	Unimplemented []string

	// The worker limits: kill (harakiri) or recycle a worker.
	Harakiri          time.Duration
	MaxRequests       int
	MaxWorkerLifetime time.Duration
	ReloadOnRSS       int // MiB
	WorkerReloadMercy time.Duration

	// Static files, the access log's shape and the stats server.
	StaticMaps  []string // MOUNT=DIR
	CheckStatic []string // DIR, tried after the StaticMaps
	// StaticGzipAll and StaticGzipDirs send FILE.gz to clients that
	// accept gzip (--static-gzip-all, --static-gzip-dir).
	StaticGzipAll  bool
	StaticGzipDirs []string
	StaticExpires  []server.ExpiresRule // --static-expires*
	LogFormat      string
	Log4xx         bool
	// LogMaxSize, LogBackupName, LogReopen and LogXForwardedFor are
	// uWSGI's --log-maxsize, --log-backupname, --log-reopen and
	// --log-x-forwarded-for.
	LogMaxSize       int
	LogBackupName    string
	LogDate          bool
	LogDateFormat    string
	LogReopen        bool
	LogXForwardedFor bool
	Log5xx           bool
	// LogRouting and the rest are uWSGI's loggers, encoders and
	// conditional request lines (options_logging.go).
	LogRouting        server.LogRouting
	LogSlow           int
	LogZero           bool
	LogBig            int
	LogMicros         bool
	LogFormatStrftime bool
	MemoryReport      bool
	Stats             string
	StatsHTTP         bool
	Metrics           string // the Prometheus metrics address
	ChownSocket       string // USER[:GROUP] of the Unix socket files
	// Notices are the uWSGI options accepted with a warning
	// (config_compat.go); the master prints one line per kind.
	Notices []notice

	// LimitPost is the largest request body accepted (--limit-post).
	LimitPost int
	// MaxFD, when not 0, is the open-file limit to run with (--max-fd).
	MaxFD int

	// The shared state of uWSGI's Python API (options_shared.go).
	Caches         []pyembed.CacheSpec // --cache2's
	CacheItems     int                 // --cache
	CacheBlockSize int
	Locks          int
	MetricSpecs    []pyembed.MetricSpec // --metric's

	// Routes and AddHeaders change requests and responses; Hooks and
	// Daemons run beside the app (options_side.go).
	Routes     []server.Route
	AddHeaders [][2]string
	Hooks      []server.Hook
	Daemons    []server.Daemon
	// Crons are the command crons; CronHarakiri bounds their runs.
	Crons        []server.CronJob
	CronHarakiri int

	// The spooler and the mules (options_aux.go).
	Spoolers         []string
	SpoolerProcesses int
	SpoolerFrequency int
	SpoolerOrdered   bool
	SpoolerQuiet     bool
	SpoolerChdir     string
	Mules            []string // per mule: a .py program, or "" for a message loop
	Farms            []string // NAME:ID[,ID...]

	// Given is every option as given, in order, as uWSGI's Python module
	// shows them in uwsgi.opt (config.go records them).
	Given []pyembed.Option
}

// addrHelp says what a socket address may be.
const addrHelp = "HOST:PORT, :PORT, [::1]:PORT or a Unix socket path; repeatable"

// defaultChmodSocket is --chmod-socket's mode when it is given no value, as
// in uWSGI.
const defaultChmodSocket fs.FileMode = 0o666

// maxSeconds bounds the options in seconds where uWSGI does: it reads them
// into a C int, so "harakiri = 172800" or "http-timeout = 3600000" are
// taken as given.
const maxSeconds = math.MaxInt32

// maxSpoolThreshold keeps an inline body well inside one frame.
const maxSpoolThreshold = wsgi.MaxFramePayload / 2

// optionTable lists every option, bound to o's fields.
func optionTable(o *options) []option {
	table := []option{
		{names: []string{"--http-socket"}, kind: kindList, arg: "ADDR", target: &o.HTTPSockets,
			help: "serve HTTP on ADDR (" + addrHelp + "); " + server.DefaultSocket.Address + " when no socket is given"},
		{names: []string{"--http"}, kind: kindList, arg: "ADDR", target: &o.HTTPSockets,
			help: "as --http-socket: the master serves HTTP itself, where uWSGI starts its HTTP router"},
		{names: []string{"--https-socket"}, kind: kindList, arg: "ADDR,CERT,KEY", target: &o.HTTPSSockets,
			help: "serve HTTPS and HTTP/2 on ADDR with the PEM certificate CERT and key KEY; repeatable"},
		{names: []string{"--http11-socket"}, kind: kindList, arg: "ADDR", target: &o.HTTPSockets,
			help: "as --http-socket, which keeps HTTP/1.1 connections alive"},
		{names: []string{"--uwsgi-socket"}, kind: kindList, arg: "ADDR", target: &o.UWSGISockets,
			help: "serve the uwsgi protocol on ADDR (" + addrHelp + ")"},
		{names: []string{"--socket", "-s"}, kind: kindList, arg: "ADDR", target: &o.Sockets,
			help: "serve the --protocol (uwsgi by default) on ADDR (" + addrHelp + ")"},
		{names: []string{"--protocol", "--socket-protocol"}, kind: kindString, arg: "PROTO", check: o.protocol,
			help: "the protocol of the --socket sockets: uwsgi (the default), http, http11, fastcgi or scgi"},
		{names: []string{"--scgi-socket"}, kind: kindList, arg: "ADDR", target: &o.SCGISockets,
			help: "serve SCGI on ADDR (" + addrHelp + ")"},
		{names: []string{"--fastcgi-socket"}, kind: kindList, arg: "ADDR", target: &o.FastCGISockets,
			help: "serve FastCGI on ADDR (" + addrHelp + "); with no socket given, a listening socket on fd 0 is served as FastCGI"},
		{names: []string{"--chmod-socket", "--chmod", "-C"}, kind: kindMode, arg: "[MODE]", target: &o.ChmodSocket, bare: defaultChmodSocket,
			help: "set the mode of Unix socket files to octal MODE; 666 when bare"},
		{names: []string{"--umask"}, kind: kindString, arg: "MODE", check: o.umask,
			help: "set the umask (octal, such as 022) before the sockets are bound and the app starts"},
		{names: []string{"--chown-socket"}, kind: kindString, arg: "USER[:GROUP]", target: &o.ChownSocket,
			help: "give the Unix socket files to USER (and GROUP), names or numbers"},
		{names: []string{"--vacuum"}, kind: kindBool, target: &o.Vacuum,
			help: "remove Unix socket files on exit"},
		{names: []string{"--module", "--wsgi", "-w"}, kind: kindString, arg: "MOD[:CALLABLE]", target: &o.Module,
			help: "import the WSGI application from module MOD"},
		{names: []string{"--wsgi-file", "--file"}, kind: kindString, arg: "PATH", target: &o.WSGIFile,
			help: "load the WSGI application from the Python file PATH"},
		{names: []string{"--paste"}, kind: kindString, arg: "config:PATH", target: &o.Paste,
			help: "load the application with PasteDeploy's loadapp from the URI (config:/path/app.ini; a relative path starts at --chdir); needs PasteDeploy"},
		{names: []string{"--wsgi-disable-file-wrapper"}, kind: kindBool, target: &o.NoFileWrapper,
			help: "leave wsgi.file_wrapper out of the environ"},
		{names: []string{"--callable"}, kind: kindString, arg: "NAME", target: &o.Callable,
			help: "the application's name in its module; default application"},
		{names: []string{"--pythonpath", "--python-path", "--pp"}, kind: kindList, arg: "DIR", target: &o.PythonPath,
			help: "add DIR to the front of sys.path; repeatable"},
		{names: []string{"--chdir"}, kind: kindString, arg: "DIR", target: &o.Chdir,
			help: "change to DIR before starting the workers"},
		{names: []string{"--processes", "--workers", "-p"}, kind: kindString, arg: "N|auto", check: o.processes,
			help: "run N worker processes; auto: one per CPU the cgroup's CPU limit (cpu.max) and the affinity mask allow; default 1"},
		{names: []string{"--cheaper"}, kind: kindInt, arg: "N", min: 0, max: maxProcesses, target: &o.CheaperMin,
			help: "start and stop workers by load, keeping at least N and at most --processes (uWSGI's cheaper); 0 is off"},
		{names: []string{"--cheaper-initial"}, kind: kindInt, arg: "N", min: 0, max: maxProcesses, target: &o.CheaperInitial,
			help: "with --cheaper, the workers started first; default --cheaper"},
		{names: []string{"--cheaper-step"}, kind: kindInt, arg: "N", min: 1, max: maxProcesses, target: &o.CheaperStep,
			help: "with --cheaper, the workers started at once when more are needed; default 1"},
		{names: []string{"--cheaper-overload"}, kind: kindInt, arg: "SECONDS", min: 1, max: 86400, target: &o.CheaperOverload,
			help: "with --cheaper, how long a load must last before workers are started or stopped; default 3"},
		{names: []string{"--cheaper-algo"}, kind: kindString, arg: "spare|busyness", check: o.cheaperAlgo,
			help: "spare (default): more workers when all are busy, fewer when more than one is idle; busyness: by the share of busy slots"},
		{names: []string{"--cheaper-busyness-max"}, kind: kindInt, arg: "PERCENT", min: 0, max: 100, target: &o.BusynessMax,
			help: "busyness: start workers above this average share of busy slots; default 50"},
		{names: []string{"--cheaper-busyness-min"}, kind: kindInt, arg: "PERCENT", min: 0, max: 100, target: &o.BusynessMin,
			help: "busyness: stop a worker below this average share of busy slots; default 25"},
		{names: []string{"--threads"}, kind: kindInt, arg: "N", min: 1, max: 1024, target: &o.Threads,
			help: "serve N requests at once in each worker; default 1"},
		{names: []string{"--graceful-timeout"}, kind: kindSeconds, arg: "SECONDS", min: 0, max: maxSeconds, target: &o.GracefulTimeout,
			help: "on stop, wait this long for requests in flight; default 30"},
		{names: []string{"--shutdown-delay"}, kind: kindSeconds, arg: "SECONDS", min: 0, max: 86400, target: &o.ShutdownDelay,
			help: "on SIGTERM, fail /readyz at once but go on accepting and serving for SECONDS (load balancers stop sending), then stop as usual; a second SIGTERM or SIGINT stops at once; default 0"},
		{names: []string{"--health-socket"}, kind: kindList, arg: "ADDR", target: &o.HealthSockets,
			help: "answer GET /livez and GET /readyz over HTTP on ADDR (HOST:PORT or a Unix socket path), from the master, with 200 or 503 and a reason; repeatable"},
		{names: []string{"--disable-logging", "-L"}, kind: kindBool, target: &o.DisableLogging,
			help: "do not log each request (the line is uWSGI's: [pid: N|app: 0|req: N/M] ADDR () {N vars in N bytes} [DATE] METHOD URI => generated N bytes in N msecs (PROTO STATUS) N headers in N bytes (1 switches on core 0))"},
		{names: []string{"--spool-threshold"}, kind: kindInt, arg: "BYTES", min: 0, max: maxSpoolThreshold, target: &o.SpoolThreshold,
			help: "keep request bodies up to BYTES in memory, spool larger ones to a file; default 1048576"},
		{names: []string{"--response-spool-limit"}, kind: kindInt, arg: "BYTES", min: 0, max: 1 << 50, target: &o.ResponseSpoolLimit,
			help: "past 4 MiB of a response waiting for a slow client, spool up to BYTES more to a temporary file before its worker waits; 0: the worker waits at 4 MiB; default 1073741824"},
		{names: []string{"--buffer-size", "-b"}, kind: kindInt, arg: "BYTES", min: 1024, max: 1 << 24, target: &o.BufferSize,
			help: "refuse request headers larger than BYTES with 431; default 65536"},
		{names: []string{"--websockets-max-size", "--websocket-max-size"}, kind: kindInt, arg: "KIB", min: 1, max: 1 << 30, target: &o.WebSocketsMaxSize,
			help: "end a WebSocket whose client sends a message over KIB kibibytes (uwsgi.websocket_recv raises, the client gets close 1009); default 1024"},
		{names: []string{"--websockets-ping-freq", "--websocket-ping-freq"}, kind: kindInt, arg: "SECONDS", min: 1, max: 1 << 20, target: &o.WebSocketsPingFreq,
			help: "uwsgi.websocket_recv pings a WebSocket client quiet for SECONDS; default 30"},
		{names: []string{"--websockets-pong-tolerance", "--websocket-pong-tolerance"}, kind: kindInt, arg: "SECONDS", min: 1, max: 1 << 20, target: &o.WebSocketsPongTolerance,
			help: "end a WebSocket whose client answers a ping more than SECONDS late (uwsgi.websocket_recv raises); default 3"},
		{names: []string{"--harakiri", "-t"}, kind: kindSeconds, arg: "SECONDS", min: 0, max: maxSeconds, target: &o.Harakiri,
			help: "kill a worker whose request runs longer than SECONDS, answer 504 and start a new worker; 0 never"},
		{names: []string{"--max-requests", "-R"}, kind: kindInt, arg: "N", min: 0, max: 1 << 40, target: &o.MaxRequests,
			help: "replace a worker once it has served N requests; 0 never"},
		{names: []string{"--max-worker-lifetime"}, kind: kindSeconds, arg: "SECONDS", min: 0, max: maxSeconds, target: &o.MaxWorkerLifetime,
			help: "replace a worker once it has run for SECONDS; 0 never"},
		{names: []string{"--reload-on-rss"}, kind: kindInt, arg: "MB", min: 0, max: 1 << 30, target: &o.ReloadOnRSS,
			help: "replace a worker whose resident memory exceeds MB mebibytes; 0 never"},
		{names: []string{"--worker-reload-mercy"}, kind: kindSeconds, arg: "SECONDS", min: 0, max: maxSeconds, target: &o.WorkerReloadMercy,
			help: "kill a replaced or reloaded worker still busy after SECONDS; default 60, 0 waits"},
		{names: []string{"--pidfile", "--pidfile2", "--safe-pidfile", "--safe-pidfile2"}, kind: kindString, arg: "PATH", target: &o.PidFile,
			help: "write the master's pid to PATH once the sockets are bound; removed on exit"},
		{names: []string{"--uid"}, kind: kindString, arg: "USER", target: &o.UID,
			help: "run as USER (a name or a uid) once the sockets are bound"},
		{names: []string{"--master-as-root"}, kind: kindBool, target: &o.MasterAsRoot,
			help: "with --uid/--gid, keep the master as it was started (root) and run the workers as USER and GROUP"},
		{names: []string{"--gid"}, kind: kindString, arg: "GROUP", target: &o.GID,
			help: "run as GROUP (a name or a gid) once the sockets are bound; it becomes the only group"},
		{names: []string{"--env"}, kind: kindList, arg: "KEY=VALUE", target: &o.Env,
			help: "set the environment variable KEY for the application; repeatable"},
		{names: []string{"--logto", "--logto2"}, kind: kindString, arg: "PATH", target: &o.LogTo,
			help: "append every log line (the master's and the workers' output) to PATH; SIGUSR1 reopens it"},
		{names: []string{"--daemonize", "--daemonize2", "-d"}, kind: kindString, arg: "PATH", target: &o.Daemonize,
			help: "detach from the terminal and log to PATH; returns once the app is serving"},
		{names: []string{"--touch-reload", "--touch-workers-reload", "--touch-chain-reload"}, kind: kindList, arg: "FILE", target: &o.TouchReload,
			help: "reload the workers gracefully, as SIGHUP does, when FILE's modification time changes; repeatable"},
		{names: []string{"--fs-reload"}, kind: kindList, arg: "PATH", target: &o.FSReload,
			help: "reload the workers gracefully, as SIGHUP does, on any change to the file or directory PATH (a file in it created, written, renamed or removed); repeatable"},
		{names: []string{"--touch-logreopen"}, kind: kindList, arg: "FILE", target: &o.TouchLogReopen,
			help: "reopen the --logto file, as SIGUSR1 does, when FILE's modification time changes (after logrotate); repeatable"},
		{names: []string{"--py-autoreload", "--py-auto-reload", "--python-autoreload", "--python-auto-reload"}, kind: kindSeconds, arg: "SECONDS", min: 0, max: maxSeconds, target: &o.PyAutoReload,
			help: "every SECONDS, reload the workers gracefully if a Python module the app imported has changed; 0 is off"},
		{names: []string{"--listen", "-l"}, kind: kindInt, arg: "N", min: 0, max: 65535, target: &o.Listen,
			help: "listen backlog of the sockets; requests waiting for a worker beyond N get 503 at once; default: the system's, no bound"},
		{names: []string{"--http-timeout"}, kind: kindSeconds, arg: "SECONDS", min: 0, max: maxSeconds, target: &o.HTTPTimeout,
			help: "close an HTTP connection idle, or slow to send a request head, for SECONDS; default 30 (90 between keep-alive requests)"},
		{names: []string{"--http-keepalive"}, kind: kindBool, arg: "[=SECONDS]", check: o.httpKeepalive,
			help: "keep an idle HTTP connection open SECONDS for its next request (uWSGI's: a number above 1); default 90, above the 60 s load balancers keep one, so the balancer closes it first; bare, HTTP/1.1 connections are kept alive as always"},
		{names: []string{"--enable-proxy-protocol", "--http-enable-proxy-protocol"}, kind: kindBool, target: &o.ProxyProtocol,
			help: "every connection to an HTTP or HTTPS socket opens with a PROXY protocol header (v1 or v2, as HAProxy's send-proxy sends; before TLS), whose source becomes REMOTE_ADDR and REMOTE_PORT; a connection without one gets 400 (HTTPS: is closed)"},
		{names: []string{"--proxy-protocol-socket"}, kind: kindList, arg: "ADDR", target: &o.ProxyProtocolSockets,
			help: "serve HTTP on ADDR (" + addrHelp + "), every connection opening with a PROXY protocol header: --enable-proxy-protocol for one socket, beside plain ones"},
		{names: []string{"--forwarded-allow-ips"}, kind: kindList, arg: "LIST", target: &o.ForwardedAllowIPs,
			help: "believe X-Forwarded-For (REMOTE_ADDR) and X-Forwarded-Proto (wsgi.url_scheme) from these HTTP peers only: addresses, CIDR prefixes, unix (Unix socket peers) or *, comma-separated; repeatable; default none"},
		{names: []string{"--log-json"}, kind: kindBool, target: &o.LogJSON,
			help: "write every log line (the master's, the access lines, each line the app prints) as one JSON object; requests get a gowsgi.request_id (X-Request-Id or a new one)"},
		{names: []string{"--socket-timeout"}, kind: kindSeconds, arg: "SECONDS", min: 0, max: maxSeconds, target: &o.SocketTimeout,
			help: "close a uwsgi, SCGI or FastCGI connection idle, or slow to send a request head, for SECONDS; default 30 (FastCGI: no bound)"},
		{names: []string{"--reload"}, kind: kindString, arg: "PIDFILE", target: &o.Reload,
			help: "reload the gowsgi whose pid PIDFILE holds (SIGHUP) and exit"},
		{names: []string{"--stop"}, kind: kindString, arg: "PIDFILE", target: &o.Stop,
			help: "stop the gowsgi whose pid PIDFILE holds (SIGTERM) and exit"},
		{names: []string{"--check-static"}, kind: kindList, arg: "DIR", target: &o.CheckStatic,
			help: "serve a request from DIR when DIR holds a file at its path (after --static-map), else pass it on to the app; repeatable"},
		{names: []string{"--max-fd"}, kind: kindInt, arg: "N", min: 0, max: 1 << 30, target: &o.MaxFD,
			help: "set the open-file limit (RLIMIT_NOFILE) of the master and its workers to N; raising the hard limit needs root"},
		{names: []string{"--static-map"}, kind: kindList, arg: "MOUNT=DIR", target: &o.StaticMaps,
			help: "serve the files of DIR under the URL path MOUNT from the master, with sendfile; repeatable"},
		{names: []string{"--static-gzip-all"}, kind: kindBool, target: &o.StaticGzipAll,
			help: "send a static file's FILE.gz sibling, with Content-Encoding: gzip, to a client that accepts gzip"},
		{names: []string{"--static-gzip-dir"}, kind: kindList, arg: "DIR", target: &o.StaticGzipDirs,
			help: "as --static-gzip-all, for the files whose real path starts with DIR; repeatable"},
		expiresOption(o, "static-expires", "file", false, "REGEXP SECONDS", "the file's real path matches REGEXP"),
		expiresOption(o, "static-expires-mtime", "file", true, "REGEXP SECONDS", "the file's real path matches REGEXP"),
		expiresOption(o, "static-expires-path-info", "path-info", false, "REGEXP SECONDS", "PATH_INFO matches REGEXP"),
		expiresOption(o, "static-expires-path-info-mtime", "path-info", true, "REGEXP SECONDS", "PATH_INFO matches REGEXP"),
		expiresOption(o, "static-expires-uri", "uri", false, "REGEXP SECONDS", "REQUEST_URI matches REGEXP"),
		expiresOption(o, "static-expires-uri-mtime", "uri", true, "REGEXP SECONDS", "REQUEST_URI matches REGEXP"),
		expiresOption(o, "static-expires-type", "type", false, "TYPE=SECONDS", "its content type is TYPE"),
		expiresOption(o, "static-expires-type-mtime", "type", true, "TYPE=SECONDS", "its content type is TYPE"),
		{names: []string{"--log-format", "--logformat"}, kind: kindString, arg: "FORMAT", target: &o.LogFormat,
			help: "write each request's line as FORMAT, with uWSGI's %(addr) %(method) %(uri) %(status) %(size) %(msecs) … variables and the app's uwsgi.set_logvar ones"},
		{names: []string{"--log-maxsize"}, kind: kindInt, arg: "BYTES", min: 0, max: 1 << 50, target: &o.LogMaxSize,
			help: "rotate the --logto file once it is larger than BYTES (checked every second): rename it to --log-backupname, or FILE.UNIXTIME, and start a new one"},
		{names: []string{"--log-backupname"}, kind: kindString, arg: "PATH", target: &o.LogBackupName,
			help: "where --log-maxsize moves the log file"},
		{names: []string{"--log-date", "--logdate"}, kind: kindMode, arg: "[FORMAT]", check: o.logDate,
			help: "start the master's own lines (its log, the banner) with the date: ctime's, or the strftime FORMAT; request lines of --log-format are not dated, as in uWSGI"},
		{names: []string{"--log-reopen"}, kind: kindBool, target: &o.LogReopen,
			help: "reopen the --logto file at each reload"},
		{names: []string{"--log-x-forwarded-for"}, kind: kindBool, target: &o.LogXForwardedFor,
			help: "show a request's X-Forwarded-For header as --log-format's %(addr)"},
		{names: []string{"--log-4xx"}, kind: kindBool, target: &o.Log4xx,
			help: "log responses with a 4xx status even with --disable-logging"},
		{names: []string{"--log-5xx"}, kind: kindBool, target: &o.Log5xx,
			help: "log responses with a 5xx status even with --disable-logging"},
		{names: []string{"--memory-report"}, kind: kindBool, check: o.memoryReport,
			help: "add the worker's pid and memory (RSS, address space) to each request's line; =2 (USS, PSS) warns"},
		{names: []string{"--stats", "--stats-server"}, kind: kindString, arg: "ADDR", target: &o.Stats,
			help: "serve uWSGI's stats JSON on ADDR (HOST:PORT or a Unix socket path): written to each connection, which is then closed"},
		{names: []string{"--stats-http"}, kind: kindBool, target: &o.StatsHTTP,
			help: "serve the stats JSON over HTTP on the --stats address"},
		{names: []string{"--metrics"}, kind: kindString, arg: "ADDR", target: &o.Metrics,
			help: "serve Prometheus metrics at /metrics on ADDR (HOST:PORT or a Unix socket path)"},
		{names: []string{"--limit-post"}, kind: kindInt, arg: "BYTES", min: 0, max: 1 << 50, target: &o.LimitPost,
			help: "answer 413 to a request whose body is larger than BYTES, without reading it; 0 no limit"},
		{names: []string{"--ini"}, kind: kindINI, arg: "FILE[:SECTION]",
			help: "read the options in SECTION (default uwsgi) of the ini FILE here; a bare FILE.ini argument does the same"},
		{names: []string{"--include", "--inherit"}, kind: kindINI, arg: "FILE.ini[:SECTION]",
			help: "as --ini, for an ini file (uWSGI's other formats are refused)"},
		{names: []string{"--set", "-S"}, kind: kindString, arg: "KEY=VALUE", help: "set the option KEY to VALUE, here"},
		{names: []string{"--set-placeholder", "--set-ph"}, kind: kindString, arg: "KEY=VALUE",
			help: "set the custom key KEY, for a later %(KEY), without warning about it"},
		{names: []string{"--strict"}, kind: kindBool, target: &o.Strict,
			help: "refuse keys neither gowsgi nor uWSGI knows (a typo, most often) instead of warning about them"},
		{names: []string{"--emperor"}, kind: kindString, arg: "DIR", refusal: "gowsgi has no Emperor; run one gowsgi per application (systemd, supervisord, a container each)",
			help: "refused: gowsgi has no Emperor mode"},
		{names: []string{"--gevent"}, kind: kindString, arg: "N", refusal: "gowsgi does not run gevent; use --threads N to serve requests concurrently",
			help: "refused: gowsgi does not run gevent"},
		{names: []string{"--plugins", "--plugin"}, kind: kindString, arg: "NAMES", check: checkPlugins,
			help: "accepted for python, python3 and http, which are built in; other plugins are refused"},
		{names: []string{"--mount"}, kind: kindList, arg: "MOUNTPOINT=APP", target: &o.Mounts,
			help: "also serve APP (MOD[:CALLABLE], or a .py or .wsgi file) to requests whose SCRIPT_NAME is MOUNTPOINT; repeatable"},
		{names: []string{"--manage-script-name"}, kind: kindBool, target: &o.ManageScriptName,
			help: "with --mount, move the longest mount point that prefixes PATH_INFO into SCRIPT_NAME"},
		{names: []string{"--home", "--virtualenv", "--venv", "--pyhome", "-H"}, kind: kindString, arg: "DIR", target: &o.Home,
			help: "use the virtualenv DIR (of the Python gowsgi embeds) and its site-packages"},
		{names: []string{"--procname-prefix"}, kind: kindString, arg: "TEXT", check: o.procName(&o.ProcNames.Prefix, ""),
			help: "put TEXT before each process's title that ps shows (turns on --auto-procname)"},
		{names: []string{"--procname-prefix-spaced"}, kind: kindString, arg: "TEXT", check: o.procName(&o.ProcNames.Prefix, " "),
			help: "as --procname-prefix, with a space after TEXT"},
		{names: []string{"--procname-append"}, kind: kindString, arg: "TEXT", check: o.procName(&o.ProcNames.Append, ""),
			help: "put TEXT after each process's title (turns on --auto-procname)"},
		{names: []string{"--procname"}, kind: kindString, arg: "NAME", check: o.procName(&o.ProcNames.Name, ""),
			help: "title every process NAME (turns on --auto-procname)"},
		{names: []string{"--procname-master"}, kind: kindString, arg: "NAME", check: o.procName(&o.ProcNames.MasterName, ""),
			help: "title the master NAME (turns on --auto-procname)"},
		{names: []string{"--auto-procname"}, kind: kindBool, target: &o.ProcNames.Auto,
			help: "title the processes as uWSGI does: uWSGI master, uWSGI worker N, uWSGI mule N, uWSGI spooler (and gowsgi's uWSGI zygote)"},
		{names: []string{"--honour-stdin"}, kind: kindBool, target: &o.HonourStdin,
			help: "keep the standard input gowsgi was started with for the master and the workers (by default both read /dev/null, as in uWSGI)"},
		{names: []string{"--daemons-honour-stdin"}, kind: kindBool, target: &o.DaemonsHonourStdin,
			help: "give the attached daemons the master's standard input instead of /dev/null (which is /dev/null too without --honour-stdin)"},
		{names: []string{"--lazy-apps", "--lazy"}, kind: kindBool, target: &o.LazyApps,
			help: "each worker imports the app itself instead of sharing one import: for apps whose import opens connections or starts threads"},
		{names: []string{"--help", "-h"}, kind: kindBool, target: &o.Help,
			help: "show this help"},
		{names: []string{"--version"}, kind: kindBool, target: &o.Version,
			help: "show gowsgi's version"},
	}
	table = append(table, sharedOptions(o)...)
	table = append(table, sideOptions(o)...)
	table = append(table, routingOptions(o)...)
	table = append(table, auxOptions(o)...)
	table = append(table, loggingOptions(o)...)
	table = append(table, warnedOptions(o)...)
	return append(table, noEffectOptions()...)
}

// defaultOptions returns the options before the command line is applied.
func defaultOptions() *options {
	return &options{
		Callable:        "application",
		Processes:       1,
		Threads:         1,
		GracefulTimeout: 30 * time.Second,
		SpoolThreshold:  1 << 20,
		BufferSize:      65536,

		WebSocketsMaxSize:       1024, // uWSGI's defaults
		WebSocketsPingFreq:      30,
		WebSocketsPongTolerance: 3,

		ResponseSpoolLimit: 1 << 30,

		WorkerReloadMercy: 60 * time.Second, // uWSGI's default

		// uWSGI's defaults.
		CheaperStep: 1, CheaperOverload: 3, CheaperAlgo: "spare", BusynessMax: 50, BusynessMin: 25,
	}
}

// errStrictUnknown is --strict's refusal, which says all the warnings would.
var errStrictUnknown = errors.New("unknown options (--strict)")

var errNoApp = errors.New("no application given: pass --module MODULE or --wsgi-file FILE")

// parseOptions parses the UWSGI_* environment and then args (without the
// program name), as config.go describes. An error is one line for the user,
// to be printed after "gowsgi: ".
func parseOptions(args []string) (*options, error) {
	return parseConfig(os.Environ(), args, startDir())
}

// set stores value in the option's target; name is the spelling used.
func (opt *option) set(name, value string, hasValue bool) error {
	if opt.refusal != "" {
		return fmt.Errorf("%s: %s", name, opt.refusal)
	}
	if opt.check != nil {
		return opt.check(name, value)
	}
	switch target := opt.target.(type) {
	case *string:
		*target = value
	case *[]string:
		*target = append(*target, value)
	case *bool:
		*target = !hasValue || uwsgiBool(value)
	case *int:
		n, err := opt.number(name, value)
		*target = int(n)
		return err
	case *time.Duration:
		n, err := opt.number(name, value)
		*target = time.Duration(n) * time.Second
		return err
	case *fs.FileMode:
		if !hasValue {
			*target = opt.bare.(fs.FileMode)
			return nil
		}
		mode, err := strconv.ParseUint(value, 8, 32)
		if err != nil || mode > 0o777 {
			return fmt.Errorf("%s: %q is not an octal mode such as 660", name, value)
		}
		*target = fs.FileMode(mode)
	}
	return nil
}

// uwsgiBool reads a boolean as uWSGI does: false, off, no (in any case) and
// 0 are false, anything else is true, even "true ; comment" (an ini file has
// no inline comments).
func uwsgiBool(value string) bool {
	switch strings.ToLower(value) {
	case "false", "off", "no", "0":
		return false
	}
	return true
}

// number parses a whole number within the option's bounds. As uWSGI's
// atoi-based option parsers do, it reads the leading number and ignores
// what follows, so "harakiri = 60 ; seconds" is 60; a value that does not
// start with a number is refused rather than read as uWSGI's 0.
func (opt *option) number(name, value string) (int64, error) {
	n, err := strconv.ParseInt(leadingNumber(value), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not a number", name, value)
	}
	if n < opt.min || n > opt.max {
		return 0, fmt.Errorf("%s: %d is out of range (%d to %d)", name, n, opt.min, opt.max)
	}
	return n, nil
}

// expiresOption is one of the --static-expires* options: on says what
// its rules match, fromMtime whether the seconds count from the file's
// modification time.
func expiresOption(o *options, name, on string, fromMtime bool, arg, when string) option {
	from := "now"
	if fromMtime {
		from = "the file's modification time"
	}
	return option{names: []string{"--" + name}, kind: kindString, arg: arg,
		help: "give a static file an Expires header SECONDS after " + from + " when " + when + "; repeatable",
		check: func(label, value string) error {
			r, err := server.ParseExpiresRule(name, on, fromMtime, value)
			if err != nil {
				return err
			}
			o.StaticExpires = append(o.StaticExpires, r)
			return nil
		}}
}

// logDate reads --log-date as uWSGI does: bare or true, 1, on or yes
// (any case) is ctime's date; any other value is a strftime format.
func (o *options) logDate(_, value string) error {
	o.LogDate = true
	switch strings.ToLower(strings.TrimSpace(value)) {
	case "", "true", "1", "on", "yes":
		o.LogDateFormat = ""
	default:
		o.LogDateFormat = value
	}
	return nil
}

// umask reads --umask's octal mode.
func (o *options) umask(name, value string) error {
	mode, err := strconv.ParseUint(strings.TrimSpace(value), 8, 32)
	if err != nil || mode > 0o777 {
		return fmt.Errorf("%s: %q is not an octal umask such as 022", name, value)
	}
	o.Umask, o.UmaskSet = int(mode), true
	return nil
}

// cheaperAlgo reads --cheaper-algo: spare and busyness run; another of
// uWSGI's algorithms (backlog2, manual) runs as spare, with a warning.
func (o *options) cheaperAlgo(name, value string) error {
	switch algo := strings.TrimSpace(value); algo {
	case "spare", "busyness":
		o.CheaperAlgo = algo
	default:
		o.CheaperAlgo = "spare"
		o.warn("cheaper-algo", name, cheaperAlgoWarning)
	}
	return nil
}

// checkCheaper refuses a --cheaper that leaves no room to scale, as
// uWSGI does.
func (o *options) checkCheaper() error {
	if o.CheaperMin == 0 {
		return nil
	}
	if o.CheaperInitial == 0 {
		o.CheaperInitial = o.CheaperMin
	}
	switch {
	case o.CheaperMin >= o.Processes:
		return fmt.Errorf("--cheaper %d: must be lower than --processes (%d), the most workers it may start", o.CheaperMin, o.Processes)
	case o.CheaperInitial < o.CheaperMin || o.CheaperInitial > o.Processes:
		return fmt.Errorf("--cheaper-initial %d: must be between --cheaper (%d) and --processes (%d)", o.CheaperInitial, o.CheaperMin, o.Processes)
	}
	return nil
}

// maxProcesses bounds --processes.
const maxProcesses = 1024

// processes reads --processes: a number, or auto for one worker per CPU
// the process may use (server.AutoProcesses).
func (o *options) processes(name, value string) error {
	if value == "auto" {
		o.Processes, o.ProcessesFrom = server.AutoProcesses()
		o.Processes = min(o.Processes, maxProcesses)
		return nil
	}
	n, err := (&option{min: 1, max: maxProcesses}).number(name, value)
	if err != nil {
		return err
	}
	o.Processes, o.ProcessesFrom = int(n), ""
	return nil
}

// httpKeepalive reads uWSGI's --http-keepalive: bare or true keeps HTTP/1.1
// connections alive, as gowsgi always does; a number above 1 is, as in
// uWSGI's HTTP router, how long an idle one waits for its next request.
func (o *options) httpKeepalive(name, value string) error {
	switch strings.ToLower(value) {
	case "", "true", "yes", "on":
		return nil
	case "false", "no", "off":
		value = "0"
	}
	n, err := (&option{min: 0, max: maxSeconds}).number(name, value)
	switch {
	case err != nil:
		return err
	case n == 0:
		o.warn("http-keepalive", name, "gowsgi keeps HTTP/1.1 connections alive; --http-timeout bounds how long")
	case n > 1:
		o.HTTPKeepalive = time.Duration(n) * time.Second
	}
	return nil
}

// leadingNumber returns the optionally signed digits value starts with,
// after blanks, as atoi(3) reads them.
func leadingNumber(value string) string {
	value = strings.TrimLeft(value, " \t")
	end := 0
	if end < len(value) && (value[end] == '-' || value[end] == '+') {
		end++
	}
	for end < len(value) && value[end] >= '0' && value[end] <= '9' {
		end++
	}
	return value[:end]
}

// check applies defaults that depend on other options and rejects
// combinations that cannot run.
func (o *options) check() error {
	if o.Help || o.Version || o.Reload != "" || o.Stop != "" {
		return nil
	}
	if err := checkEnv(o.Env); err != nil {
		return err
	}
	for _, spec := range o.StaticMaps {
		if _, err := server.ParseStaticMap(spec); err != nil {
			return err
		}
	}
	if slices.Contains(o.CheckStatic, "") {
		return errors.New("--check-static needs a folder")
	}
	switch {
	case o.Strict && len(o.Unknown) > 0:
		return fmt.Errorf("%w: %s", errStrictUnknown, strings.Join(o.Unknown, ", "))
	case o.Module == "" && o.WSGIFile == "" && o.Paste == "" && len(o.Mounts) == 0:
		return errNoApp
	case o.Paste != "" && (o.Module != "" || o.WSGIFile != ""):
		return errors.New("--paste and --module or --wsgi-file are both given: each names the default app; keep one")
	case o.Module != "" && o.WSGIFile != "":
		o.warn("wsgi-file", "wsgi-file", bothAppsWarning)
		o.WSGIFile = ""
	}
	if err := o.checkCheaper(); err != nil {
		return err
	}
	if o.LogDate && o.LogJSON {
		return errors.New("--log-date and --log-json are both given: JSON lines carry their time already; drop --log-date")
	}
	for _, spec := range o.HTTPSSockets {
		if _, err := httpsSocket(spec); err != nil {
			return err
		}
	}
	if _, err := gateways.ParseForwardedAllow(o.ForwardedAllowIPs); err != nil {
		return err
	}
	if o.ProxyProtocol && len(o.HTTPSockets)+len(o.HTTPSSockets) == 0 && (len(o.Sockets) == 0 || o.SocketProtocol != server.ProtocolHTTP) {
		return errors.New("--enable-proxy-protocol: no HTTP socket to read PROXY headers on; name one with --http-socket")
	}
	if o.LogJSON && o.LogFormat != "" {
		return errors.New("--log-json writes its own JSON access lines; drop --log-format (or --log-json)")
	}
	if err := o.checkLogging(); err != nil {
		return err
	}
	if err := o.checkApps(); err != nil {
		return err
	}
	return o.checkAux()
}

// helpText lists the options from the table.
func helpText() string {
	var b strings.Builder
	b.WriteString("Usage: gowsgi --module MODULE [options]\n       gowsgi app.ini [options]\n\nRuns a Python WSGI application (PEP 3333).\n\nOptions:\n")
	for _, opt := range optionTable(defaultOptions()) {
		spec := strings.Join(opt.names, ", ")
		switch {
		case strings.HasPrefix(opt.arg, "[="): // an optional value, given as --opt=VALUE
			spec += opt.arg
		case opt.arg != "":
			spec += " " + opt.arg
		}
		fmt.Fprintf(&b, "  %-44s %s\n", spec, opt.help)
	}
	b.WriteString("\nConfig logic (ini files, the command line, UWSGI_*): the lines up to endif apply when\n")
	for _, key := range slices.Sorted(maps.Keys(logicOpeners)) {
		fmt.Fprintf(&b, "  --%-42s %s\n", key+" VALUE", logicOpeners[key])
	}
	b.WriteString("  --endif, --endfor, --end                     close the block; in a for block %(_) is the item\n")
	return b.String()
}
