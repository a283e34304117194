// The load the fault tests keep up while a fault happens: clients that
// record every request's outcome and times, and the helpers that watch the
// workers from outside through /proc.
package main_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Bounds of every load run: no client sends more than loadMaxEach requests
// nor runs longer than loadLimit, whatever the test does meanwhile.
const (
	loadMaxEach = 20000
	loadLimit   = 60 * time.Second
)

// outcome is one request of a load run: when it was sent, when it ended and
// how.
type outcome struct {
	began, ended time.Time
	status       int
	body         string
	err          error
}

func (o outcome) String() string {
	if o.err != nil {
		return fmt.Sprintf("error %v", o.err)
	}
	return fmt.Sprintf("status %d %q", o.status, o.body)
}

// load is a set of clients each sending GET url, one request at a time on
// its own keep-alive connection. A client stops at its first transport
// error: that is a finding (or, after SIGTERM, the refused connection the
// test waits for), and going on would only repeat it.
type load struct {
	stop chan struct{}
	once sync.Once
	wg   sync.WaitGroup

	mu       sync.Mutex
	outcomes []outcome
}

// startLoad starts clients clients on url; they stop at the end of the
// test at the latest.
func startLoad(t *testing.T, url string, clients int) *load {
	t.Helper()
	return startLoadN(t, url, clients, loadMaxEach)
}

// startLoadN is startLoad with each client stopping after each requests.
func startLoadN(t *testing.T, url string, clients, each int) *load {
	t.Helper()
	l := &load{stop: make(chan struct{})}
	deadline := time.Now().Add(loadLimit)
	for range clients {
		l.wg.Add(1)
		go l.client(url, each, deadline)
	}
	t.Cleanup(func() { l.finish() })
	return l
}

func (l *load) client(url string, each int, deadline time.Time) {
	defer l.wg.Done()
	c := client(false)
	for i := 0; i < each && time.Now().Before(deadline); i++ {
		select {
		case <-l.stop:
			return
		default:
		}
		o := fetch(c, url)
		l.mu.Lock()
		l.outcomes = append(l.outcomes, o)
		l.mu.Unlock()
		if o.err != nil {
			return
		}
	}
}

func fetch(c *http.Client, url string) outcome {
	o := outcome{began: time.Now()}
	resp, err := c.Get(url)
	if err == nil {
		var body []byte
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		o.status, o.body = resp.StatusCode, string(body)
	}
	o.err, o.ended = err, time.Now()
	return o
}

// finish stops the clients, waits for their last requests and returns
// every outcome.
func (l *load) finish() []outcome {
	l.once.Do(func() { close(l.stop) })
	l.wg.Wait()
	return l.snapshot()
}

// wait lets the clients run to their count and returns every outcome.
func (l *load) wait() []outcome {
	l.wg.Wait()
	return l.snapshot()
}

func (l *load) snapshot() []outcome {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.outcomes)
}

// served counts the answers so far that were 200 with body.
func (l *load) served(body string) int {
	return l.count(func(o outcome) bool { return o.body == body })
}

// answered counts the answers so far that were 200, whatever their body.
func (l *load) answered() int {
	return l.count(func(outcome) bool { return true })
}

func (l *load) count(match func(outcome) bool) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, o := range l.outcomes {
		if o.err == nil && o.status == http.StatusOK && match(o) {
			n++
		}
	}
	return n
}

// tally summarises outcomes for the log: counts by status or error.
func tally(outcomes []outcome) map[string]int {
	counts := make(map[string]int)
	for _, o := range outcomes {
		if o.err != nil {
			counts["error"]++
		} else {
			counts[strconv.Itoa(o.status)]++
		}
	}
	return counts
}

// notOK returns the outcomes that are not a 200.
func notOK(outcomes []outcome) []string {
	var bad []string
	for _, o := range outcomes {
		if o.err != nil || o.status != http.StatusOK {
			bad = append(bad, o.String())
		}
	}
	return bad
}

// liveChildren lists the processes whose parent is pid and that have not
// exited: a killed worker stays a zombie until the zygote reaps it, and a
// zombie serves nobody (proc(5): state Z).
func liveChildren(t *testing.T, pid int) []int {
	t.Helper()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	require.NoError(t, err)
	var children []int
	for _, path := range stats {
		stat, err := os.ReadFile(path)
		if err != nil {
			continue // it has exited since the glob
		}
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) && fields[0] != "Z" {
			child, _ := strconv.Atoi(filepath.Base(filepath.Dir(path)))
			children = append(children, child)
		}
	}
	return children
}

// zygoteOf returns the master's one child, the zygote whose children are
// the workers.
func zygoteOf(t *testing.T, inst *instance) int {
	t.Helper()
	zygotes := liveChildren(t, inst.cmd.Process.Pid)
	require.Len(t, zygotes, 1, "the master's one child is the zygote")
	return zygotes[0]
}

// awaitReplaced waits until the zygote has n live workers again, gone not
// among them, and returns how long that took.
func awaitReplaced(t *testing.T, inst *instance, zygote, gone, n int, timeout time.Duration) time.Duration {
	t.Helper()
	began := time.Now()
	eventually(t, timeout, func() bool {
		workers := liveChildren(t, zygote)
		return len(workers) == n && !slices.Contains(workers, gone)
	}, "worker %d was not replaced to make %d again; stderr:\n%s", gone, n, inst.Stderr())
	return time.Since(began)
}

// faultsApp returns a private copy of testdata/faults.py, which a reload
// test may edit.
func faultsApp(t *testing.T) (path string, source string) {
	t.Helper()
	b, err := os.ReadFile(testdataPath(t, "faults.py"))
	require.NoError(t, err)
	return writeFile(t, t.TempDir(), "faults_app.py", string(b)), string(b)
}

// startFaults starts testdata/faults.py with settings, on the command line
// or from an ini file.
func startFaults(t *testing.T, fromINI bool, settings ...setting) *instance {
	t.Helper()
	app := testdataPath(t, "faults.py")
	if !fromINI {
		args := []string{"--wsgi-file", app}
		for _, s := range settings {
			args = append(args, s.flag, s.value)
		}
		return start(t, args...)
	}
	lines := []string{"[uwsgi]", "wsgi-file = " + app}
	for _, s := range settings {
		lines = append(lines, s.key+" = "+s.value)
	}
	dir := t.TempDir()
	return startIn(t, dir, "--ini", writeFile(t, dir, "faults.ini", strings.Join(lines, "\n")+"\n"))
}

// awaitServed waits until the load has had n more answers of body than now.
func awaitServed(t *testing.T, inst *instance, l *load, body string, n int) {
	t.Helper()
	count := func() int { return l.served(body) }
	awaitMore(t, inst, count, n, "fewer than %d more %q answers", n, body)
}

// awaitAnswered waits until the load has had n more 200s than now.
func awaitAnswered(t *testing.T, inst *instance, l *load, n int) {
	t.Helper()
	awaitMore(t, inst, l.answered, n, "fewer than %d more answers", n)
}

func awaitMore(t *testing.T, inst *instance, count func() int, n int, msg string, args ...any) {
	t.Helper()
	want := count() + n
	eventually(t, 30*time.Second, func() bool { return count() >= want },
		msg+"; stderr:\n%s", append(args, inst.Stderr())...)
}
