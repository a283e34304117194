// Command crons (uWSGI's cron, unique-cron and cron2): shell commands the
// master runs when the wall clock matches their five fields, as uWSGI's
// master does from its own loop: checked every second, run at most once a
// minute, each with /bin/sh -c in a process group of its own. A unique
// cron is skipped while its last run is still going; cron-harakiri (or a
// cron2's harakiri=) kills a run's process group once it has taken longer.
// uWSGI's log lines are kept word for word and written as it writes them
// (not as gowsgi's key=value lines), since deployments grep for them.
package server

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// CronJob is one command cron. Each field is a value to match, -1 for any,
// or -N for every value divisible by N; Weekday 0 and 7 are Sunday.
type CronJob struct {
	Minute, Hour, Day, Month, Weekday int
	Command                           string
	// Unique skips a run while the last one is still going.
	Unique bool
	// Harakiri, when not 0, kills a run that takes longer.
	Harakiri time.Duration
}

// cronCheckInterval is how often the clock is compared with the crons.
const cronCheckInterval = time.Second

// cronRunner runs the command crons.
type cronRunner struct {
	log   *slog.Logger // for what uWSGI has no line for
	out   io.Writer    // for uWSGI's lines
	jobs  []*cronState
	start func(cmd *exec.Cmd) error
}

// cronState is a cron and its last run.
type cronState struct {
	job     CronJob
	lastRun time.Time
	mu      sync.Mutex
	running bool
}

func newCronRunner(jobs []CronJob, out io.Writer, log *slog.Logger) *cronRunner {
	r := &cronRunner{log: log, out: out, start: startChild}
	for _, job := range jobs {
		r.jobs = append(r.jobs, &cronState{job: job})
	}
	return r
}

// run checks the crons every second until stop is closed.
func (r *cronRunner) run(stop <-chan struct{}) {
	tick := time.NewTicker(cronCheckInterval)
	defer tick.Stop()
	for {
		r.check(time.Now())
		select {
		case <-stop:
			return
		case <-tick.C:
		}
	}
}

// check starts every cron whose time has come at now: its fields match,
// it has not run in the last minute, and, when unique, it is not running.
func (r *cronRunner) check(now time.Time) {
	for _, c := range r.jobs {
		j := c.job
		spec := cronSpec{minute: j.Minute, hour: j.Hour, day: j.Day, month: j.Month, weekday: j.Weekday}
		if !spec.matches(now) || (!c.lastRun.IsZero() && now.Sub(c.lastRun) < time.Minute) {
			continue
		}
		c.mu.Lock()
		busy := j.Unique && c.running
		c.mu.Unlock()
		if busy {
			continue
		}
		c.lastRun = now
		r.launch(c)
	}
}

// launch starts c's command and a goroutine that waits for it.
func (r *cronRunner) launch(c *cronState) {
	cmd := exec.Command("/bin/sh", "-c", c.job.Command)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := r.start(cmd); err != nil {
		r.log.Error("cannot start the cron command", "command", c.job.Command, "error", err)
		return
	}
	began, pid := time.Now(), cmd.Process.Pid
	// uWSGI dates this line (uwsgi_log_verbose), not the one at the end.
	fmt.Fprintf(r.out, "%s - [uwsgi-cron] running \"%s\" (pid %d)\n", began.Format(time.ANSIC), c.job.Command, pid)
	c.mu.Lock()
	c.running = true
	c.mu.Unlock()
	go func() {
		var killer *time.Timer
		if c.job.Harakiri > 0 {
			killer = time.AfterFunc(c.job.Harakiri, func() {
				r.log.Warn("cron command ran past its harakiri, killing it", "command", c.job.Command, "pid", pid, "harakiri", c.job.Harakiri)
				syscall.Kill(-pid, syscall.SIGKILL)
			})
		}
		cmd.Wait()
		if killer != nil {
			killer.Stop()
		}
		c.mu.Lock()
		c.running = false
		c.mu.Unlock()
		fmt.Fprintf(r.out, "[uwsgi-cron] command \"%s\" running with pid %d exited after %d second(s)\n",
			c.job.Command, pid, int(time.Since(began).Seconds()))
	}()
}
