// Config, everything the master runs with, as cmd/gowsgi fills it in from
// the command line, the UWSGI_* environment and ini files
// (cmd/gowsgi/options_server.go); and gowsgi's Version.
package server

import (
	"io/fs"
	"time"

	"github.com/gowsgi/gowsgi/pyembed"
)

// Version is gowsgi's version.
const Version = "0.1.0"

// Config is what the master needs from the command line.
type Config struct {
	// Sockets are the sockets to serve. None means the FastCGI socket a web
	// server passed on fd 0, if there is one, else DefaultSocket.
	Sockets []Socket
	// ChmodSocket, when not 0, is the mode given to Unix socket files.
	ChmodSocket fs.FileMode
	// Vacuum removes the Unix socket files on exit.
	Vacuum bool
	// FSReload are files and directories whose every change reloads
	// gracefully, as SIGHUP does (uWSGI's --fs-reload; fsreload.go).
	FSReload []string
	// HonourStdin keeps the master's standard input for the master and the
	// workers (uWSGI's --honour-stdin); without it both read /dev/null.
	HonourStdin bool
	// App names the application in the banner ("hello_world_app:application").
	App string
	// Spec is the application a zygote imports once and forks workers
	// from (or, Lazy, forks workers that each import it).
	Spec pyembed.AppSpec
	// Processes and Threads are the number of workers and of slots in each.
	Processes, Threads int
	// ProcessesFrom, when set, says where an automatic Processes came
	// from ("--processes auto: cgroup cpu.max 1.5 CPUs"), for the banner.
	ProcessesFrom string
	// GracefulTimeout bounds how long a stop waits for requests in flight.
	GracefulTimeout time.Duration
	// ShutdownDelay is how long, after SIGTERM, the master goes on
	// accepting and serving with /readyz failing, so load balancers stop
	// sending before it stops accepting; 0 stops accepting at once.
	ShutdownDelay time.Duration
	// HealthSockets are the addresses of the /livez and /readyz server
	// (health.go); none serves no health endpoints.
	HealthSockets []string
	// AccessLog logs one line per request.
	AccessLog bool
	// SpoolThreshold is the largest request body kept in memory.
	SpoolThreshold int64
	// ResponseSpoolLimit is the most of one response, past the 4 MiB kept
	// in memory, that waits for a slow client in a temporary file; at it,
	// the worker waits. 0 spools nothing: the worker waits at 4 MiB.
	ResponseSpoolLimit int64
	// BufferSize bounds a request's header block.
	BufferSize int
	// PidFile, when set, receives the master's pid once the sockets are
	// bound; it is removed on exit.
	PidFile string
	// UID and GID, when set, are the user and group (names or numbers) the
	// master drops to once the sockets are bound, before any worker starts.
	UID, GID string
	// LogTo, when set, is a file that every log line (the master's and the
	// workers' stdout and stderr) is appended to; SIGUSR1 reopens it.
	LogTo string
	// childOutput is where the zygote and the workers write (logRelay).
	childOutput childOutput
	// LogRouting is uWSGI's loggers, encoders and log routes (logsink.go).
	LogRouting LogRouting
	// sink, when not nil, is where every log line goes (newLogSink).
	sink *logSink
	// LogSlow, LogZero and LogBig log a request even with AccessLog off:
	// when it took at least LogSlow milliseconds (0: no), when its body
	// was empty, when its body had at least LogBig bytes (0: no).
	LogSlow int
	LogZero bool
	LogBig  int64
	// LogFormatStrftime makes --log-format's %(ftime) the LogDateFormat.
	LogFormatStrftime bool
	// TouchReload are files whose modification time changing reloads the
	// workers as SIGHUP does.
	TouchReload []string
	// TouchLogReopen are files whose modification time changing reopens
	// the LogTo file, as SIGUSR1 does.
	TouchLogReopen []string
	// PyAutoReload, when not 0, is how often the source files of the
	// modules the app imported are checked; a change reloads as SIGHUP does.
	PyAutoReload time.Duration
	// Listen, when not 0, is the sockets' listen backlog and the most
	// requests that wait for a slot; more get 503 at once.
	Listen int
	// HTTPTimeout and SocketTimeout, when not 0, bound how long an HTTP
	// connection, and a uwsgi, SCGI or FastCGI one, may stay idle or take
	// to send a request head.
	HTTPTimeout, SocketTimeout time.Duration
	// HTTPKeepalive, when not 0, is how long a keep-alive HTTP connection
	// waits for its next request; else HTTPTimeout, else 90 s.
	HTTPKeepalive time.Duration
	// ForwardedAllowIPs are the HTTP peers whose X-Forwarded-For and
	// X-Forwarded-Proto are believed (gateways.ParseForwardedAllow).
	ForwardedAllowIPs []string
	// LogJSON writes every log line, the children's output included, as
	// one JSON object, and gives each request an id (logjson.go).
	LogJSON bool
	// Ready, when set, is called once the workers are ready and the banner
	// is printed: a daemon tells the process that started it.
	Ready func()
	// Limits are when a worker is killed (harakiri) or recycled.
	Limits WorkerLimits
	// LogFormat, when set, is the access line in uWSGI's --log-format
	// variables instead of the structured one (accesslog.go).
	LogFormat string
	// Log4xx and Log5xx log such responses even without AccessLog.
	Log4xx, Log5xx bool
	// MemoryReport adds the worker's memory to access lines.
	MemoryReport bool
	// StaticMaps are folders the master serves itself (static.go).
	StaticMaps []StaticMap
	// StaticGzipAll and StaticGzipDirs send a static file's FILE.gz
	// instead to clients that accept gzip: every file's, or those under
	// the folders (prefixes of the file's real path).
	StaticGzipAll  bool
	StaticGzipDirs []string
	// StaticExpires set the Expires header of static files
	// (static_expires.go).
	StaticExpires []ExpiresRule
	// Stats, when set, is the address of the stats server; StatsHTTP
	// serves it over HTTP (stats.go).
	Stats     string
	StatsHTTP bool
	// LimitPost, when not 0, is the largest request body accepted; a
	// larger one gets 413 before it is read (--limit-post).
	LimitPost int64
	// MaxFD, when not 0, is the open-file limit (soft and hard) the master
	// sets before it binds, for itself and the workers it starts.
	MaxFD int
	// ChownSocket, when set, is the "USER[:GROUP]" (names or numbers)
	// that owns the Unix socket files; without a group, theirs stays.
	ChownSocket string
	// Routes are the routing rules, applied in order to each request
	// (routing.go); AddHeaders are name/value pairs added to every
	// response.
	Routes     []Route
	AddHeaders [][2]string
	// LogMaxSize, when not 0, rotates the LogTo file once it is larger,
	// to LogBackupName (or LOGTO.UNIXTIME); logrotate.go.
	LogMaxSize    int64
	LogBackupName string
	// LogDate starts the master's own lines with the date, in
	// LogDateFormat (strftime(3)) or, when that is empty, ctime's.
	LogDate       bool
	LogDateFormat string
	// LogMicros writes the request line's time in microseconds.
	LogMicros bool
	// LogReopen reopens the LogTo file on each reload.
	LogReopen bool
	// LogXForwardedFor shows the X-Forwarded-For header as the access
	// line's %(addr) when a request has one.
	LogXForwardedFor bool
	// MasterAsRoot keeps the master as it was started and runs the zygote
	// and the workers as UID and GID instead.
	MasterAsRoot bool
	// Cheaper, when set, starts and stops workers by load, between
	// Cheaper.Min and Processes (cheaper.go).
	Cheaper *Cheaper
	// Hooks run at the phases of the start (hooks.go).
	Hooks []Hook
	// Daemons are the side processes the master runs and stops with
	// itself (daemons.go).
	Daemons []Daemon
	// Crons are the command crons the master runs (crons.go).
	Crons []CronJob
	// DaemonsHonourStdin gives the daemons the master's standard input
	// instead of /dev/null (uWSGI's --daemons-honour-stdin).
	DaemonsHonourStdin bool
	// Metrics, when set, is the address of the Prometheus metrics server
	// (metrics.go).
	Metrics string
}
