// What the benchmark measures: the apps (paths into bench/apps.py), the wrk
// loads, and the servers with their exact command lines.
package main

import (
	"fmt"
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

// server is one contender; command builds its argv for a port.
type server struct {
	name    string
	note    string // shown next to the name in the report
	command func(port int) []string
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

// servers lists every contender; gowsgi is the binary under test. Each runs
// two worker processes (one per core), except waitress, whose model is one
// process with a thread pool. uWSGI's listen queue and waitress's connection
// limit are raised above their defaults (100 each) so that no server parks
// connections of the 256-connection load behind a default limit: gowsgi and
// Gunicorn already listen with a backlog of 2048 or more.
func servers(gowsgi string) []server {
	addr := func(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }
	return []server{
		{name: "gowsgi", note: "-p 2", command: func(port int) []string {
			return []string{gowsgi, "--pythonpath", ".", "--module", "apps", "-p", "2", "-L", "--http-socket", addr(port)}
		}},
		{name: "gunicorn-sync", note: "-w 2", command: func(port int) []string {
			return []string{"gunicorn", "-w", "2", "-b", addr(port), "apps:application"}
		}},
		{name: "gunicorn-gthread", note: "-w 2 --threads 4", command: func(port int) []string {
			return []string{"gunicorn", "-k", "gthread", "-w", "2", "--threads", "4", "-b", addr(port), "apps:application"}
		}},
		{name: "uwsgi", note: "--master -p 2 --http11-socket", command: func(port int) []string {
			return uwsgiCommand(port, 2)
		}},
		{name: "waitress", note: "1 process, 4 threads", command: func(port int) []string {
			return []string{"waitress-serve", "--threads", "4", "--connection-limit", "512", "--listen", addr(port), "apps:application"}
		}},
	}
}

// uwsgiCommand is uWSGI in its keep-alive HTTP mode (plain --http-socket
// closes every connection); the master imports the app and forks the
// workers after it. Debian's uwsgi needs the python3 plugin named.
func uwsgiCommand(port, workers int) []string {
	return []string{"uwsgi", "--plugin", "python3", "--master", "-p", strconv.Itoa(workers),
		"--http11-socket", fmt.Sprintf("127.0.0.1:%d", port), "--wsgi-file", "apps.py",
		"--listen", "1024", "--disable-logging", "--die-on-term", "--need-app"}
}

// gowsgiCommand is gowsgi with a given number of workers, for the memory
// scenario.
func gowsgiCommand(gowsgi string, port, workers int) []string {
	return []string{gowsgi, "--pythonpath", ".", "--module", "apps", "-p", strconv.Itoa(workers), "-L",
		"--http-socket", fmt.Sprintf("127.0.0.1:%d", port)}
}
