// What the parsed options become: the master's server.Config, with the
// sockets to serve, and the pyembed.AppSpec each worker imports. The option
// table and its parsing are in options.go.
package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gowsgi/gowsgi/pyembed"
	"github.com/gowsgi/gowsgi/server"
)

// httpsSocket reads uWSGI's "ADDR,CERT,KEY" form of --https-socket.
func httpsSocket(spec string) (server.Socket, error) {
	parts := strings.Split(spec, ",")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return server.Socket{}, fmt.Errorf("--https-socket: %q is not ADDR,CERT,KEY", spec)
	}
	return server.Socket{Protocol: server.ProtocolHTTPS, Address: parts[0], CertFile: parts[1], KeyFile: parts[2]}, nil
}

// sockets lists the sockets to serve, HTTP first. check has validated the
// --https-socket values.
func (o *options) sockets() []server.Socket {
	var out []server.Socket
	add := func(protocol server.Protocol, addrs []string) {
		for _, addr := range addrs {
			out = append(out, server.Socket{Protocol: protocol, Address: addr})
		}
	}
	add(server.ProtocolHTTP, o.HTTPSockets)
	for _, addr := range o.ProxyProtocolSockets {
		out = append(out, server.Socket{Protocol: server.ProtocolHTTP, Address: addr, ProxyProtocol: true})
	}
	for _, spec := range o.HTTPSSockets {
		s, _ := httpsSocket(spec)
		out = append(out, s)
	}
	add(server.ProtocolUWSGI, o.UWSGISockets)
	protocol := o.SocketProtocol
	if protocol == "" {
		protocol = server.ProtocolUWSGI
	}
	add(protocol, o.Sockets)
	add(server.ProtocolSCGI, o.SCGISockets)
	add(server.ProtocolFastCGI, o.FastCGISockets)
	for i := range out {
		// uWSGI's --enable-proxy-protocol is for every HTTP parser.
		isHTTP := out[i].Protocol == server.ProtocolHTTP || out[i].Protocol == server.ProtocolHTTPS
		out[i].ProxyProtocol = out[i].ProxyProtocol || o.ProxyProtocol && isHTTP
	}
	return out
}

// socketProtocols are the values of uWSGI's --protocol that gowsgi serves.
var socketProtocols = map[string]server.Protocol{
	"uwsgi": server.ProtocolUWSGI, "http": server.ProtocolHTTP, "http11": server.ProtocolHTTP,
	"fastcgi": server.ProtocolFastCGI, "scgi": server.ProtocolSCGI,
}

// protocol reads uWSGI's --protocol, the protocol of the sockets --socket
// names ("socket = :8080" with "protocol = http" serves HTTP, as in uWSGI).
func (o *options) protocol(name, value string) error {
	p, ok := socketProtocols[strings.ToLower(strings.TrimSpace(value))]
	if !ok {
		return fmt.Errorf("%s: gowsgi serves the protocols uwsgi, http, http11, fastcgi and scgi, not %q", name, value)
	}
	o.SocketProtocol = p
	return nil
}

// appName names the application as the banner shows it.
func (o *options) appName() string {
	if o.Paste != "" {
		return o.Paste
	}
	if o.Module == "" && o.WSGIFile == "" {
		return o.mountNames()
	}
	source := o.Module
	if o.WSGIFile != "" {
		source = o.WSGIFile
	}
	if strings.Contains(source, ":") && o.WSGIFile == "" {
		return source
	}
	return source + ":" + o.Callable
}

// appSpec is what a worker imports.
func (o *options) appSpec() pyembed.AppSpec {
	spooler, mules := o.auxSpec()
	return pyembed.AppSpec{
		Spooler:          spooler,
		Mules:            mules,
		Module:           o.Module,
		WSGIFile:         o.WSGIFile,
		Paste:            o.Paste,
		NoFileWrapper:    o.NoFileWrapper,
		Callable:         o.Callable,
		PythonPath:       o.PythonPath,
		Multiprocess:     o.Processes > 1,
		Multithread:      o.Threads > 1,
		Mounts:           o.mounts(),
		ManageScriptName: o.ManageScriptName,
		Home:             o.Home,
		Lazy:             o.LazyApps,
		ProcNames:        o.ProcNames,
		Shared:           o.sharedSpec(),
		UWSGI: pyembed.UWSGIInfo{
			Options:    o.Given,
			Processes:  o.Processes,
			Threads:    o.Threads,
			BufferSize: o.BufferSize,
			StartedOn:  time.Now().Unix(),

			WebSocketsMaxSize:       o.WebSocketsMaxSize,
			WebSocketsPingFreq:      o.WebSocketsPingFreq,
			WebSocketsPongTolerance: o.WebSocketsPongTolerance,
		},
	}
}

// serverConfig is what the master runs with.
func (o *options) serverConfig() server.Config {
	return server.Config{
		Sockets:            o.sockets(),
		ChmodSocket:        o.ChmodSocket,
		Vacuum:             o.Vacuum,
		HonourStdin:        o.HonourStdin,
		FSReload:           o.FSReload,
		App:                o.appName(),
		Spec:               o.appSpec(),
		Processes:          o.Processes,
		ProcessesFrom:      o.ProcessesFrom,
		ShutdownDelay:      o.ShutdownDelay,
		HealthSockets:      o.HealthSockets,
		Threads:            o.Threads,
		GracefulTimeout:    o.GracefulTimeout,
		AccessLog:          !o.DisableLogging,
		SpoolThreshold:     int64(o.SpoolThreshold),
		ResponseSpoolLimit: int64(o.ResponseSpoolLimit),
		BufferSize:         o.BufferSize,
		PidFile:            o.PidFile,
		UID:                o.UID,
		GID:                o.GID,
		MasterAsRoot:       o.MasterAsRoot,
		LogTo:              o.logTo(),
		TouchReload:        o.TouchReload,
		TouchLogReopen:     o.TouchLogReopen,
		PyAutoReload:       o.PyAutoReload,
		Listen:             o.Listen,
		HTTPTimeout:        o.HTTPTimeout,
		SocketTimeout:      o.SocketTimeout,
		HTTPKeepalive:      o.HTTPKeepalive,
		ForwardedAllowIPs:  o.ForwardedAllowIPs,
		LogJSON:            o.LogJSON,
		Limits: server.WorkerLimits{
			Harakiri:    o.Harakiri,
			MaxRequests: o.MaxRequests,
			MaxLifetime: o.MaxWorkerLifetime,
			ReloadOnRSS: int64(o.ReloadOnRSS) << 20,
			ReloadMercy: o.WorkerReloadMercy,
		},
		StaticMaps:         o.staticMaps(),
		StaticGzipAll:      o.StaticGzipAll,
		StaticGzipDirs:     o.StaticGzipDirs,
		StaticExpires:      o.StaticExpires,
		LogFormat:          o.LogFormat,
		Log4xx:             o.Log4xx,
		LogMaxSize:         int64(o.LogMaxSize),
		LogBackupName:      o.LogBackupName,
		LogDate:            o.LogDate,
		LogDateFormat:      o.LogDateFormat,
		LogReopen:          o.LogReopen,
		LogXForwardedFor:   o.LogXForwardedFor,
		Log5xx:             o.Log5xx,
		LogRouting:         o.LogRouting,
		LogSlow:            o.LogSlow,
		LogZero:            o.LogZero,
		LogBig:             int64(o.LogBig),
		LogMicros:          o.LogMicros,
		LogFormatStrftime:  o.LogFormatStrftime,
		MemoryReport:       o.MemoryReport,
		Stats:              o.Stats,
		StatsHTTP:          o.StatsHTTP,
		Metrics:            o.Metrics,
		ChownSocket:        o.ChownSocket,
		LimitPost:          int64(o.LimitPost),
		MaxFD:              o.MaxFD,
		Hooks:              o.Hooks,
		Cheaper:            o.cheaper(),
		Routes:             o.Routes,
		AddHeaders:         o.AddHeaders,
		Daemons:            o.Daemons,
		Crons:              o.crons(),
		DaemonsHonourStdin: o.DaemonsHonourStdin,
	}
}

// cheaper is the cheaper subsystem's settings, nil when --cheaper is off.
func (o *options) cheaper() *server.Cheaper {
	if o.CheaperMin == 0 {
		return nil
	}
	return &server.Cheaper{Algo: o.CheaperAlgo, Min: o.CheaperMin, Initial: o.CheaperInitial, Step: o.CheaperStep,
		Overload: o.CheaperOverload, BusynessMax: o.BusynessMax, BusynessMin: o.BusynessMin}
}

// staticMaps reads the --static-map values, which check has validated,
// and then each --check-static folder: a mapping of the whole site.
func (o *options) staticMaps() []server.StaticMap {
	var maps []server.StaticMap
	for _, spec := range o.StaticMaps {
		m, _ := server.ParseStaticMap(spec)
		maps = append(maps, m)
	}
	for _, dir := range o.CheckStatic {
		maps = append(maps, server.StaticMap{Mount: "", Dir: dir, Option: "--check-static"})
	}
	return maps
}

// procName returns the check that stores one of uWSGI's procname options
// in field, with suffix after it; as in uWSGI, any of them turns on
// --auto-procname.
func (o *options) procName(field *string, suffix string) func(name, value string) error {
	return func(name, value string) error {
		*field = value + suffix
		o.ProcNames.Auto = true
		return nil
	}
}

// crons are the command crons, --cron-harakiri applied to each that does
// not set its own.
func (o *options) crons() []server.CronJob {
	jobs := slices.Clone(o.Crons)
	for i := range jobs {
		if jobs[i].Harakiri == 0 {
			jobs[i].Harakiri = time.Duration(o.CronHarakiri) * time.Second
		}
	}
	return jobs
}
