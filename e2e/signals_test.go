package e2e

// uWSGI's signal framework (issue 12, item 3): handlers registered as the
// app is imported, raised by uwsgi.signal() from a request, by timers, rb
// timers, crons and file monitors that the master runs, each delivered to
// the target its registration named. The same app (testdata/signals_app.py)
// runs under Debian's uWSGI 2.0.21 and under gowsgi and must pass the same
// checks.

import (
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/e2e/internal/harness"
)

// signalWait bounds the wait for a signal's handler to have run: timers
// fire every second, and a cron at the latest one second into its minute.
const signalWait = 10 * time.Second

// signalEvent is a line of the app's events file: a handler that ran.
type signalEvent struct {
	name   string
	worker int
	pid    int
	at     float64 // Unix seconds
}

// signalServer is a server running testdata/signals_app.py.
type signalServer struct {
	url string
	dir string
}

// events reads the handlers that have run so far, from the app's file
// rather than through a request, which a busy server could hold up.
func (s signalServer) events(t *testing.T) []signalEvent {
	t.Helper()
	body, err := os.ReadFile(filepath.Join(s.dir, "events"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	require.NoError(t, err)
	var events []signalEvent
	for _, line := range strings.Split(strings.TrimSpace(string(body)), "\n") {
		f := strings.Fields(line)
		if len(f) != 4 {
			continue // a line still being written
		}
		worker, err1 := strconv.Atoi(f[1])
		pid, err2 := strconv.Atoi(f[2])
		at, err3 := strconv.ParseFloat(f[3], 64)
		require.NoError(t, cmpErr(err1, err2, err3), "events line %q", line)
		events = append(events, signalEvent{name: f[0], worker: worker, pid: pid, at: at})
	}
	return events
}

func cmpErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// count counts the events called name in worker (0: in any worker).
func (s signalServer) count(t *testing.T, name string, worker int) int {
	t.Helper()
	return countEvents(s.events(t), name, worker)
}

func countEvents(events []signalEvent, name string, worker int) int {
	n := 0
	for _, e := range events {
		if e.name == name && (worker == 0 || e.worker == worker) {
			n++
		}
	}
	return n
}

// raise asks the app to call uwsgi.signal(sig).
func (s signalServer) raise(t *testing.T, sig int) {
	t.Helper()
	status, body := harness.GetText(t, s.url+"/raise?sig="+strconv.Itoa(sig))
	require.Equal(t, http.StatusOK, status, body)
}

// await waits until cond holds of the events.
func (s signalServer) await(t *testing.T, what string, cond func([]signalEvent) bool) {
	t.Helper()
	var last []signalEvent
	harness.Eventually(t, signalWait, func() bool {
		last = s.events(t)
		return cond(last)
	}, "%s; events: %v", what, &last)
}

// barrier raises signal 13 (target 'workers') and waits for both workers
// to have run it: a signal raised before it has reached each worker's
// queue first, so what it did is all in the events by then.
func (s signalServer) barrier(t *testing.T) {
	t.Helper()
	before := s.events(t)
	want1, want2 := countEvents(before, "barrier", 1)+1, countEvents(before, "barrier", 2)+1
	s.raise(t, 13)
	s.await(t, "both workers ran the barrier", func(e []signalEvent) bool {
		return countEvents(e, "barrier", 1) >= want1 && countEvents(e, "barrier", 2) >= want2
	})
}

// awaitMinuteStart waits, if need be, until the wall clock is early enough
// in its minute that a cron the app adds for "this minute" as it starts
// still matches when the master first checks it.
func awaitMinuteStart(t *testing.T) {
	t.Helper()
	harness.Eventually(t, 61*time.Second, func() bool { return time.Now().Second() < 45 }, "the clock")
}

// signalsDir is a working directory holding the app and its helpers.
func signalsDir(t *testing.T, app string) string {
	t.Helper()
	dir := t.TempDir()
	b, err := os.ReadFile(harness.TestdataPath(t, app))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, app), b, 0o644))
	harness.CopyAppHelpers(t, dir)
	return dir
}

// startUWSGISignals runs Debian's uWSGI with args in dir for the rest of
// the test and waits until it answers.
func startUWSGISignals(t *testing.T, bin, dir, addr string, args ...string) signalServer {
	t.Helper()
	_, out := startUWSGIForTest(t, bin, dir, args...)
	s := signalServer{url: "http://" + addr, dir: dir}
	harness.Eventually(t, harness.StartTimeout, func() bool {
		resp, err := http.Get(s.url + "/events")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	}, "uwsgi did not answer; output:\n%s", out)
	return s
}

// signalServers are Debian's uWSGI and gowsgi, each started on
// testdata/signals_app.py with --master and args.
func signalServers(args ...string) []struct {
	name  string
	start func(t *testing.T) signalServer
} {
	return []struct {
		name  string
		start func(t *testing.T) signalServer
	}{
		{"uwsgi", func(t *testing.T) signalServer {
			bin := requireUWSGI(t)
			dir, addr := signalsDir(t, "signals_app.py"), freeAddr(t)
			return startUWSGISignals(t, bin, dir, addr, append([]string{"--plugin", "python3,http", "--http-socket", addr,
				"--wsgi-file", "signals_app.py", "--master"}, args...)...)
		}},
		{"gowsgi", func(t *testing.T) signalServer {
			s, _ := gowsgiSignals(t, "signals_app.py", append([]string{"--master"}, args...)...)
			return s
		}},
	}
}

// TestSignalsAsUnderUWSGI runs every check of the signal framework against
// Debian's uWSGI and against gowsgi, with the same options.
func TestSignalsAsUnderUWSGI(t *testing.T) {
	servers := signalServers("-p", "2")
	for _, server := range servers {
		t.Run(server.name, func(t *testing.T) {
			awaitMinuteStart(t)
			s := server.start(t)
			t.Run("signal to every worker runs once in each", func(t *testing.T) {
				s.raise(t, 10)
				s.await(t, "both workers ran signal 10", func(e []signalEvent) bool {
					return countEvents(e, "broadcast", 1) > 0 && countEvents(e, "broadcast", 2) > 0
				})
				s.barrier(t)
				assert.Equal(t, 1, s.count(t, "broadcast", 1))
				assert.Equal(t, 1, s.count(t, "broadcast", 2))
			})
			t.Run("signal to worker2 runs there only", func(t *testing.T) {
				s.raise(t, 11)
				s.await(t, "worker 2 ran signal 11", func(e []signalEvent) bool { return countEvents(e, "only2", 2) > 0 })
				s.barrier(t)
				assert.Equal(t, 0, s.count(t, "only2", 1))
				assert.Equal(t, 1, s.count(t, "only2", 2))
			})
			t.Run("signal to any worker runs once", func(t *testing.T) {
				s.raise(t, 12)
				s.await(t, "a worker ran signal 12", func(e []signalEvent) bool { return countEvents(e, "any", 0) > 0 })
				s.barrier(t)
				assert.Equal(t, 1, s.count(t, "any", 0))
			})
			t.Run("signal_wait returns once its signal ran", func(t *testing.T) {
				answer := make(chan string, 1)
				go func() {
					resp, err := http.Get(s.url + "/wait?sig=14")
					if err != nil {
						answer <- err.Error()
						return
					}
					defer resp.Body.Close()
					body, _ := io.ReadAll(resp.Body)
					answer <- string(body)
				}()
				s.await(t, "a request waits", func(e []signalEvent) bool { return countEvents(e, "waiting", 0) > 0 })
				s.raise(t, 14)
				select {
				case got := <-answer:
					assert.Equal(t, "b'' 14", got)
				case <-time.After(signalWait):
					require.FailNow(t, "signal_wait did not return")
				}
				s.await(t, "both workers ran signal 14", func(e []signalEvent) bool {
					return countEvents(e, "wake", 1) == 1 && countEvents(e, "wake", 2) == 1
				})
			})
			t.Run("timer fires every second in every worker", func(t *testing.T) {
				s.await(t, "three timer signals in each worker", func(e []signalEvent) bool {
					return countEvents(e, "timer", 1) >= 3 && countEvents(e, "timer", 2) >= 3
				})
				for worker := 1; worker <= 2; worker++ {
					var at []float64
					for _, e := range s.events(t) {
						if e.name == "timer" && e.worker == worker {
							at = append(at, e.at)
						}
					}
					for i := 1; i < len(at); i++ {
						assert.GreaterOrEqual(t, at[i]-at[i-1], 0.9, "worker %d: timer %d came early", worker, i)
					}
				}
			})
			t.Run("rb timer fires its two times in worker1", func(t *testing.T) {
				s.await(t, "worker 1 ran the rb timer twice", func(e []signalEvent) bool {
					return countEvents(e, "rbtimer", 1) >= 2
				})
				// Two more seconds of the 1 s timer: a third rb timer
				// signal would have come by then.
				ticks := s.count(t, "timer", 1)
				s.await(t, "two more timer signals", func(e []signalEvent) bool { return countEvents(e, "timer", 1) >= ticks+2 })
				assert.Equal(t, 2, s.count(t, "rbtimer", 1))
				assert.Equal(t, 0, s.count(t, "rbtimer", 2))
			})
			t.Run("cron of this minute fires once in worker2", func(t *testing.T) {
				s.await(t, "worker 2 ran the cron", func(e []signalEvent) bool { return countEvents(e, "cron", 2) > 0 })
				s.barrier(t)
				assert.Equal(t, 1, s.count(t, "cron", 2))
				assert.Equal(t, 0, s.count(t, "cron", 1))
				assert.Equal(t, 0, s.count(t, "cron-later", 0), "a cron of another minute fired")
			})
			t.Run("file monitor fires when the file is touched", func(t *testing.T) {
				before := s.count(t, "filemon", 0)
				now := time.Now()
				require.NoError(t, os.Chtimes(filepath.Join(s.dir, "watched"), now, now))
				s.await(t, "a worker ran the file monitor's signal", func(e []signalEvent) bool {
					return countEvents(e, "filemon", 0) > before
				})
			})
		})
	}
}

// gowsgiSignals starts gowsgi on app with args in a fresh directory.
func gowsgiSignals(t *testing.T, app string, args ...string) (signalServer, *harness.Instance) {
	t.Helper()
	dir := signalsDir(t, app)
	inst := harness.StartIn(t, dir, append([]string{"--wsgi-file", app}, args...)...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gowsgi output:\n%s", inst.Stderr())
		}
	})
	return signalServer{url: inst.URL, dir: dir}, inst
}

// TestSignalsSurviveWorkerRespawn: a worker forked again after it was
// killed has the handlers the zygote registered as it imported the app, as
// a respawned uWSGI worker has the master's: the timer and a raised signal
// reach it.
func TestSignalsSurviveWorkerRespawn(t *testing.T) {
	s, _ := gowsgiSignals(t, "signals_app.py", "--master", "-p", "2")
	var first signalEvent
	s.await(t, "a timer signal in worker 1", func(events []signalEvent) bool {
		for _, e := range events {
			if e.name == "timer" && e.worker == 1 {
				first = e
				return true
			}
		}
		return false
	})
	require.NoError(t, syscall.Kill(first.pid, syscall.SIGKILL))
	respawned := func(name string) func([]signalEvent) bool {
		return func(events []signalEvent) bool {
			for _, e := range events {
				if e.name == name && e.worker == 1 && e.pid != first.pid {
					return true
				}
			}
			return false
		}
	}
	s.await(t, "the timer reaches the respawned worker 1", respawned("timer"))
	s.raise(t, 10)
	s.await(t, "signal 10 reaches the respawned worker 1", respawned("broadcast"))
}

// TestSignalsLazyApps: with --lazy-apps each worker imports the app and
// registers its own handlers; a signal to every worker still runs once in
// each, and one to worker2 there only. (uWSGI's master routes only what it
// registered itself, so under --lazy-apps it sends every signal to any one
// worker: gowsgi's master takes the first registration a worker makes.)
func TestSignalsLazyApps(t *testing.T) {
	s, _ := gowsgiSignals(t, "signals_app.py", "--master", "-p", "2", "--lazy-apps")
	s.raise(t, 10)
	s.raise(t, 11)
	s.await(t, "signals 10 and 11 ran", func(e []signalEvent) bool {
		return countEvents(e, "broadcast", 1) > 0 && countEvents(e, "broadcast", 2) > 0 && countEvents(e, "only2", 2) > 0
	})
	s.barrier(t)
	assert.Equal(t, 1, s.count(t, "broadcast", 1))
	assert.Equal(t, 1, s.count(t, "broadcast", 2))
	assert.Equal(t, 0, s.count(t, "only2", 1))
	assert.Equal(t, 1, s.count(t, "only2", 2))
}

// TestSignalHandlersRunBetweenRequests: a handler runs on an idle slot's
// thread, never in the middle of a request on the same slot: in a worker
// of two threads while the other holds a request, in a worker of one only
// once that request has ended; uWSGI's idle cores take signals the same
// way, which the same checks show.
func TestSignalHandlersRunBetweenRequests(t *testing.T) {
	tests := []struct {
		threads string
		want    string // what the handler saw in the worker holding a request
	}{
		{threads: "2", want: "during-hold"},
		{threads: "1", want: "idle"},
	}
	for _, tc := range tests {
		for _, server := range signalServers("-p", "2", "--threads", tc.threads) {
			t.Run(server.name+" threads "+tc.threads, func(t *testing.T) {
				s := server.start(t)
				held := make(chan int, 1)
				go func() {
					resp, err := http.Get(s.url + "/hold?tag=h")
					if err != nil {
						held <- 0
						return
					}
					resp.Body.Close()
					held <- resp.StatusCode
				}()
				var holder int
				s.await(t, "a request holds", func(events []signalEvent) bool {
					for _, e := range events {
						if e.name == "holding" {
							holder = e.worker
							return true
						}
					}
					return false
				})
				other := 3 - holder
				s.raise(t, 15) // to every worker
				s.await(t, "the other worker ran the handler", func(e []signalEvent) bool { return countEvents(e, "idle", other) > 0 })
				if tc.threads == "2" {
					s.await(t, "the holding worker ran the handler", func(e []signalEvent) bool {
						return countEvents(e, "during-hold", holder) > 0
					})
				} else {
					assert.Zero(t, s.count(t, "idle", holder)+s.count(t, "during-hold", holder),
						"the handler ran while its slot served a request")
				}
				harness.WriteFile(t, s.dir, "release-h", "")
				select {
				case status := <-held:
					require.Equal(t, http.StatusOK, status)
				case <-time.After(signalWait):
					require.FailNow(t, "the held request did not end")
				}
				s.await(t, "the holding worker ran the handler", func(e []signalEvent) bool {
					return countEvents(e, "during-hold", holder)+countEvents(e, "idle", holder) > 0
				})
				s.barrier(t)
				assert.Equal(t, 1, s.count(t, tc.want, holder))
				assert.Equal(t, 1, s.count(t, "during-hold", holder)+s.count(t, "idle", holder))
			})
		}
	}
}

// TestSignalTargetsGowsgiLacks: registering a handler for a target gowsgi
// does not route yet (a farm) raises NotImplementedError naming it; mules
// and the spooler are targets (TestSignalsReachMulesAndTheSpooler); an unknown
// target is a ValueError (uWSGI takes any name and logs at each signal
// that it cannot route it).
func TestSignalTargetsGowsgiLacks(t *testing.T) {
	s, _ := gowsgiSignals(t, "signals_app.py", "--master", "-p", "1")
	tests := []struct {
		target string
		want   string
	}{
		{"farm1", "NotImplementedError: uwsgi.register_signal: gowsgi does not implement mule farms (--farm) yet"},
		{"mule1", "ok"},
		{"mules", "ok"},
		{"spooler", "ok"},
		{"nowhere", "ValueError: unable to register signal: unknown target 'nowhere'"},
		{"worker1", "ok"},
	}
	for _, tc := range tests {
		t.Run(tc.target, func(t *testing.T) {
			status, body := harness.GetText(t, s.url+"/register?sig=60&target="+tc.target)
			require.Equal(t, http.StatusOK, status)
			assert.Contains(t, body, tc.want)
		})
	}
	_, body := harness.GetText(t, s.url+"/registered?sig=60")
	assert.Equal(t, "True", body, "the handler a worker registered is its own")
	_, body = harness.GetText(t, s.url+"/registered?sig=99")
	assert.Equal(t, "None", body)
}

// TestSignalDecorators: uwsgidecorators' @signal, @timer, @mstimer,
// @rbtimer, @cron and @filemon register their function, each on the first
// free signal unless told, and it runs in its target.
func TestSignalDecorators(t *testing.T) {
	awaitMinuteStart(t)
	s, _ := gowsgiSignals(t, "signals_decorators.py", "--master", "-p", "2")
	var free struct {
		Taken map[string]int `json:"taken"`
		Free  int            `json:"free"`
	}
	getJSON(t, s.url+"/free", &free)
	assert.Equal(t, map[string]int{"broadcast": 40, "timer": 0, "mstimer": 1, "rbtimer": 2, "cron": 3, "filemon": 4}, free.Taken)
	assert.Equal(t, 5, free.Free)
	s.raise(t, 40)
	now := time.Now()
	require.NoError(t, os.Chtimes(filepath.Join(s.dir, "watched"), now, now))
	s.await(t, "every decorated handler ran in its target", func(e []signalEvent) bool {
		return countEvents(e, "broadcast", 1) == 1 && countEvents(e, "broadcast", 2) == 1 &&
			countEvents(e, "timer", 1) >= 2 && countEvents(e, "mstimer", 2) >= 2 && countEvents(e, "rbtimer", 2) >= 2 &&
			countEvents(e, "cron", 1) == 1 && countEvents(e, "cron", 2) == 1 && countEvents(e, "filemon", 0) >= 1
	})
	events := s.events(t)
	assert.Zero(t, countEvents(events, "timer", 2), "@timer(target='worker1') ran in worker 2")
	assert.Zero(t, countEvents(events, "mstimer", 1)+countEvents(events, "rbtimer", 1), "worker2's timers ran in worker 1")
}

// TestSignalsAfterReload: a reload's generation imports the app again and
// so registers its handlers and timers again, with a hub of its own: a
// signal to every worker reaches each new worker once, and the timer runs
// once a second in each, not once per generation.
func TestSignalsAfterReload(t *testing.T) {
	s, inst := gowsgiSignals(t, "signals_app.py", "--master", "-p", "2")
	var old []signalEvent
	s.await(t, "a timer signal in each worker", func(e []signalEvent) bool {
		old = e
		return countEvents(e, "timer", 1) > 0 && countEvents(e, "timer", 2) > 0
	})
	oldPIDs := map[int]bool{}
	for _, e := range old {
		oldPIDs[e.pid] = true
	}
	inst.Signal(t, syscall.SIGHUP)
	newTimers := func(e []signalEvent, worker int) []float64 {
		var at []float64
		for _, ev := range e {
			if ev.name == "timer" && ev.worker == worker && !oldPIDs[ev.pid] {
				at = append(at, ev.at)
			}
		}
		return at
	}
	s.await(t, "three timer signals in each new worker", func(e []signalEvent) bool {
		return len(newTimers(e, 1)) >= 3 && len(newTimers(e, 2)) >= 3
	})
	events := s.events(t)
	for worker := 1; worker <= 2; worker++ {
		at := newTimers(events, worker)
		// The i-th firing comes no sooner than i periods after the first,
		// give or take half of one: a handler that ran late (its thread
		// was busy, the machine loaded) shortens one gap, not the rate.
		for i := 1; i < len(at); i++ {
			assert.GreaterOrEqual(t, at[i]-at[0], float64(i)-0.5, "worker %d: timer %d came early", worker, i)
		}
	}
	before := map[int]int{1: 0, 2: 0}
	for _, e := range events {
		if e.name == "broadcast" {
			before[e.worker]++
		}
	}
	s.raise(t, 10)
	s.barrier(t)
	assert.Equal(t, before[1]+1, s.count(t, "broadcast", 1))
	assert.Equal(t, before[2]+1, s.count(t, "broadcast", 2))
}
