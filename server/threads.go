// How many threads run the master's Go code (GOMAXPROCS).
package server

import (
	"os"
	"runtime"
)

// cpusPerMasterThread is how many CPUs the process may use per thread of
// the master's Go code. The master mostly waits on sockets and hands work
// to the workers, which need the CPUs; every thread more makes the Go
// scheduler wake threads that find nothing to do, a context switch each
// time. Measured on 2 CPUs with hello (wrk, 2 workers), one thread against
// two: 1 connection 15.1k -> 22.7k req/s (master 27.7 -> 18.1 us a
// request), behind nginx uwsgi_pass 16.5k -> 21.7k, 32 connections on the
// HTTP socket the same or better.
const cpusPerMasterThread = 4

// masterThreads returns the GOMAXPROCS for a master that may use available
// CPUs (Go's own default, which follows the cgroup's CPU limit): a quarter
// of them, at least one; an explicit GOMAXPROCS in the environment wins.
func masterThreads(available int, env string) int {
	if env != "" {
		return available
	}
	return max(1, available/cpusPerMasterThread)
}

// limitMasterThreads applies masterThreads to the running master.
func limitMasterThreads() {
	runtime.GOMAXPROCS(masterThreads(runtime.GOMAXPROCS(0), os.Getenv("GOMAXPROCS")))
}
