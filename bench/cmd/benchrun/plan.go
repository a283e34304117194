// What the benchmark measures: the apps (paths into bench/apps.py), the wrk
// loads, and the servers with their exact command lines.
package main

import (
	"strconv"
)

// app is one route of bench/apps.py.
type app struct {
	name   string // row label in the report
	path   string // PATH_INFO the route answers
	script string // wrk Lua script, relative to bench/; "" for a plain GET
}

// load is one wrk setting.
type load struct {
	name        string
	connections int
	close       bool // send "Connection: close" so every request opens a connection
}

// server is one contender.
type server struct {
	name string
	note string // shown next to the name in the report
	// command builds its argv: serving HTTP on listen (127.0.0.1:PORT), or,
	// when behindNginx, the uwsgi protocol on the Unix socket path listen.
	command func(listen string) []string
	// behindNginx puts a benchmark-started nginx in front (uwsgi_pass over
	// the Unix socket); wrk then talks to nginx.
	behindNginx bool
	// apps and loads, by name, narrow the cells the server runs; nil runs
	// every one.
	apps, loads []string
}

// runs reports whether the server runs the cell a × l.
func (s server) runs(a app, l load) bool {
	return (s.apps == nil || contains(s.apps, a.name)) && (s.loads == nil || contains(s.loads, l.name))
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

var allApps = []app{
	{name: "hello", path: "/hello"},
	{name: "hello, no Content-Length", path: "/hello-nocl"},
	{name: "JSON", path: "/json"},
	{name: "Flask JSON", path: "/flask"},
	{name: "echo 4 KiB POST", path: "/echo", script: "echo.lua"},
	{name: "1 MiB response", path: "/1mib"},
	{name: "10 MiB file_wrapper", path: "/file10m"},
}

var allLoads = []load{
	{name: "1 connection", connections: 1},
	{name: "32 connections", connections: 32},
	{name: "256 connections", connections: 256},
	{name: "32 connections, Connection: close", connections: 32, close: true},
}

// Names of the cells the summary and the servers behind nginx refer to.
const (
	appHello      = "hello"
	appFlask      = "Flask JSON"
	appOneMiB     = "1 MiB response"
	appFile10M    = "10 MiB file_wrapper"
	loadOne       = "1 connection"
	loadThirtyTwo = "32 connections"
)

// Server names the summary compares.
const (
	serverGowsgi      = "gowsgi"
	serverGunicorn    = "gunicorn-sync"
	serverUWSGI       = "uwsgi"
	serverUWSGIHTTP   = "uwsgi-http"
	serverNginxGowsgi = "nginx-gowsgi"
	serverNginxUWSGI  = "nginx-uwsgi"
)

// servers lists every contender; gowsgi is the binary under test. Each runs
// two worker processes (one per core), except waitress, whose model is one
// process with a thread pool. uWSGI's listen queue and waitress's connection
// limit are raised above their defaults (100 each) so that no server parks
// connections of the 256-connection load behind a default limit: gowsgi and
// Gunicorn already listen with a backlog of 2048 or more. The two servers
// behind nginx run the hello and Flask routes at 1 and 32 connections: the
// deployment most uWSGI users run, kept to the cells the goals name so the
// whole run stays near 20 minutes.
func servers(gowsgi string) []server {
	nginxApps, nginxLoads := []string{appHello, appFlask}, []string{loadOne, loadThirtyTwo}
	return []server{
		{name: serverGowsgi, note: "-p 2", command: func(listen string) []string {
			return gowsgiCommand(gowsgi, "--http-socket", listen, 2)
		}},
		{name: serverGunicorn, note: "-w 2", command: func(listen string) []string {
			return []string{"gunicorn", "-w", "2", "-b", listen, "apps:application"}
		}},
		{name: "gunicorn-gthread", note: "-w 2 --threads 4", command: func(listen string) []string {
			return []string{"gunicorn", "-k", "gthread", "-w", "2", "--threads", "4", "-b", listen, "apps:application"}
		}},
		{name: serverUWSGI, note: "--master -p 2 --http11-socket", command: func(listen string) []string {
			return uwsgiCommand("--http11-socket", listen, 2)
		}},
		{name: serverUWSGIHTTP, note: "--master -p 2 --http router, keep-alive", command: uwsgiRouterCommand},
		{name: "waitress", note: "1 process, 4 threads", command: func(listen string) []string {
			return []string{"waitress-serve", "--threads", "4", "--connection-limit", "512", "--listen", listen, "apps:application"}
		}},
		{name: serverNginxGowsgi, note: "nginx uwsgi_pass, -p 2 --uwsgi-socket", behindNginx: true,
			apps: nginxApps, loads: nginxLoads, command: func(socket string) []string {
				return gowsgiCommand(gowsgi, "--uwsgi-socket", socket, 2)
			}},
		{name: serverNginxUWSGI, note: "nginx uwsgi_pass, --master -p 2 --socket", behindNginx: true,
			apps: nginxApps, loads: nginxLoads, command: func(socket string) []string {
				return uwsgiCommand("--socket", socket, 2)
			}},
	}
}

// uwsgiCommand is uWSGI with workers serving on one socket option: HTTP
// with keep-alive (--http11-socket; plain --http-socket closes every
// connection) or the uwsgi protocol (--socket). The master imports the app
// and forks the workers after it. Debian's uwsgi needs the python3 plugin
// named.
func uwsgiCommand(socketOption, listen string, workers int) []string {
	return []string{"uwsgi", "--plugin", "python3", "--master", "-p", strconv.Itoa(workers),
		socketOption, listen, "--wsgi-file", "apps.py",
		"--listen", "1024", "--disable-logging", "--die-on-term", "--need-app"}
}

// uwsgiRouterCommand is uWSGI shaped like gowsgi: a front process, the HTTP
// router (Debian's uwsgi needs the http plugin named), passing each request
// to two workers over a uwsgi socket the master sets up. Keep-alive is set
// the way uWSGI's documentation ("Native HTTP support", HTTP Keep-Alive)
// tells its users: --http-keepalive, with the workers adding "Connection:
// Keep-Alive"; --http-auto-chunked lets a response without Content-Length
// keep the connection too, as the router otherwise closes after it.
// --auto-procname only renames the processes ("uWSGI http 1"), which is how
// the CPU split tells the router from the workers.
func uwsgiRouterCommand(listen string) []string {
	return []string{"uwsgi", "--plugin", "http,python3", "--master", "-p", "2",
		"--http", listen, "--http-keepalive", "--http-auto-chunked", "--add-header", "Connection: Keep-Alive",
		"--wsgi-file", "apps.py", "--listen", "1024", "--disable-logging", "--die-on-term", "--need-app", "--auto-procname"}
}

// gowsgiCommand is gowsgi serving one socket option on listen.
func gowsgiCommand(gowsgi, socketOption, listen string, workers int) []string {
	return []string{gowsgi, "--pythonpath", ".", "--module", "apps", "-p", strconv.Itoa(workers), "-L", socketOption, listen}
}
