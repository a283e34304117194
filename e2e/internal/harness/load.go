// The load a test keeps up while a fault happens: clients that record every
// request's outcome and times, and the helpers that watch the workers from
// outside through /proc.
package harness

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

// Outcome is one request of a load run: when it was sent, when it ended and
// how.
type Outcome struct {
	Began, Ended time.Time
	Status       int
	Body         string
	Err          error
}

func (o Outcome) String() string {
	if o.Err != nil {
		return fmt.Sprintf("error %v", o.Err)
	}
	return fmt.Sprintf("status %d %q", o.Status, o.Body)
}

// Load is a set of clients each sending GET url, one request at a time on
// its own keep-alive connection. A client stops at its first transport
// error: that is a finding (or, after SIGTERM, the refused connection the
// test waits for), and going on would only repeat it.
type Load struct {
	stop chan struct{}
	once sync.Once
	wg   sync.WaitGroup

	mu       sync.Mutex
	outcomes []Outcome
}

// StartLoad starts clients clients on url; they stop at the end of the
// test at the latest.
func StartLoad(t *testing.T, url string, clients int) *Load {
	t.Helper()
	return StartLoadN(t, url, clients, loadMaxEach)
}

// StartLoadN is StartLoad with each client stopping after each requests.
func StartLoadN(t *testing.T, url string, clients, each int) *Load {
	t.Helper()
	l := &Load{stop: make(chan struct{})}
	deadline := time.Now().Add(loadLimit)
	for range clients {
		l.wg.Add(1)
		go l.client(url, each, deadline)
	}
	t.Cleanup(func() { l.Finish() })
	return l
}

func (l *Load) client(url string, each int, deadline time.Time) {
	defer l.wg.Done()
	c := Client(false)
	for i := 0; i < each && time.Now().Before(deadline); i++ {
		select {
		case <-l.stop:
			return
		default:
		}
		o := Fetch(c, url)
		l.mu.Lock()
		l.outcomes = append(l.outcomes, o)
		l.mu.Unlock()
		if o.Err != nil {
			return
		}
	}
}

func Fetch(c *http.Client, url string) Outcome {
	o := Outcome{Began: time.Now()}
	resp, err := c.Get(url)
	if err == nil {
		var body []byte
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		o.Status, o.Body = resp.StatusCode, string(body)
	}
	o.Err, o.Ended = err, time.Now()
	return o
}

// Finish stops the clients, waits for their last requests and returns
// every outcome.
func (l *Load) Finish() []Outcome {
	l.once.Do(func() { close(l.stop) })
	l.wg.Wait()
	return l.snapshot()
}

// Wait lets the clients run to their count and returns every outcome.
func (l *Load) Wait() []Outcome {
	l.wg.Wait()
	return l.snapshot()
}

func (l *Load) snapshot() []Outcome {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.outcomes)
}

// Served counts the answers so far that were 200 with body.
func (l *Load) Served(body string) int {
	return l.count(func(o Outcome) bool { return o.Body == body })
}

// Answered counts the answers so far that were 200, whatever their body.
func (l *Load) Answered() int {
	return l.count(func(Outcome) bool { return true })
}

func (l *Load) count(match func(Outcome) bool) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, o := range l.outcomes {
		if o.Err == nil && o.Status == http.StatusOK && match(o) {
			n++
		}
	}
	return n
}

// Tally summarises outcomes for the log: counts by status or error.
func Tally(outcomes []Outcome) map[string]int {
	counts := make(map[string]int)
	for _, o := range outcomes {
		if o.Err != nil {
			counts["error"]++
		} else {
			counts[strconv.Itoa(o.Status)]++
		}
	}
	return counts
}

// NotOK returns the outcomes that are not a 200.
func NotOK(outcomes []Outcome) []string {
	var bad []string
	for _, o := range outcomes {
		if o.Err != nil || o.Status != http.StatusOK {
			bad = append(bad, o.String())
		}
	}
	return bad
}

// LiveChildren lists the processes whose parent is pid and that have not
// exited: a killed worker stays a zombie until the zygote reaps it, and a
// zombie serves nobody (proc(5): state Z).
func LiveChildren(t *testing.T, pid int) []int {
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

// ZygoteOf returns the master's one child, the zygote whose children are
// the workers.
func ZygoteOf(t *testing.T, inst *Instance) int {
	t.Helper()
	zygotes := LiveChildren(t, inst.Cmd.Process.Pid)
	require.Len(t, zygotes, 1, "the master's one child is the zygote")
	return zygotes[0]
}

// AwaitReplaced waits until the zygote has n live workers again, gone not
// among them, and returns how long that took.
func AwaitReplaced(t *testing.T, inst *Instance, zygote, gone, n int, timeout time.Duration) time.Duration {
	t.Helper()
	began := time.Now()
	Eventually(t, timeout, func() bool {
		workers := LiveChildren(t, zygote)
		return len(workers) == n && !slices.Contains(workers, gone)
	}, "worker %d was not replaced to make %d again; stderr:\n%s", gone, n, inst.Stderr())
	return time.Since(began)
}
