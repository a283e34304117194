package e2e

// Running in production: the health endpoints (--health-socket), draining
// for load balancers (--shutdown-delay), systemd's socket activation and
// sd_notify spoken for real (a test-owned NOTIFY_SOCKET, descriptors
// inherited through exec), reaping orphans as child subreaper, and
// --processes auto. The app is testdata/production_app.py.

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/e2e/internal/harness"
)

// probeTimeout bounds one health probe.
const probeTimeout = 5 * time.Second

// startProduction runs production_app.py with args.
func startProduction(t *testing.T, args ...string) *harness.Instance {
	t.Helper()
	return harness.Start(t, append([]string{"--wsgi-file", harness.TestdataPath(t, "production_app.py")}, args...)...)
}

// probe GETs a health path over network ("tcp" or "unix") and returns the
// status and the one-line reason.
func probe(t *testing.T, network, addr, path string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: probeTimeout, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
		DisableKeepAlives: true,
	}}
	resp, err := c.Get("http://health" + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

// awaitProbe polls a health path until it answers status.
func awaitProbe(t *testing.T, network, addr, path string, status int) string {
	t.Helper()
	var last string
	harness.Eventually(t, 20*time.Second, func() bool {
		var got int
		got, last = probe(t, network, addr, path)
		return got == status
	}, "%s did not answer %d; last: %q", path, status, last)
	return last
}

// awaitProbeSays waits until path answers status with the text want.
func awaitProbeSays(t *testing.T, network, addr, path string, status int, want string) {
	t.Helper()
	var got int
	var last string
	harness.Eventually(t, 20*time.Second, func() bool {
		got, last = probe(t, network, addr, path)
		return got == status && last == want
	}, "%s did not answer %d %q; last: %d %q", path, status, want, got, last)
}

// holdRequest starts GET /hold?tag=tag in the background and waits until
// the app has it; the outcome arrives on the channel once released.
func holdRequest(t *testing.T, inst *harness.Instance, tag string) <-chan harness.Outcome {
	t.Helper()
	done := make(chan harness.Outcome, 1)
	go func() { done <- harness.Fetch(harness.Client(false), inst.URL+"/hold?tag="+tag) }()
	harness.Eventually(t, 20*time.Second, func() bool {
		_, ok := inst.Record("started-" + tag)
		return ok
	}, "the app never started /hold?tag=%s", tag)
	return done
}

func TestHealthEndpointsAnswerFromTheMaster(t *testing.T) {
	tcpAddr := harness.FreeAddr(t)
	unixPath := filepath.Join(t.TempDir(), "health.sock")
	inst := startProduction(t, "--processes", "1", "--threads", "1",
		"--health-socket", tcpAddr, "--health-socket", unixPath)

	for _, ep := range []struct{ network, addr string }{{"tcp", tcpAddr}, {"unix", unixPath}} {
		status, reason := probe(t, ep.network, ep.addr, "/livez")
		assert.Equal(t, http.StatusOK, status, ep.network)
		assert.Regexp(t, `^live: the worker pool answered in \S+\n$`, reason)
		status, reason = probe(t, ep.network, ep.addr, "/readyz")
		assert.Equal(t, http.StatusOK, status, ep.network)
		assert.Equal(t, "ready: 1 of 1 slots free\n", reason)
	}

	// The one slot busy and nothing waiting: still ready.
	first := holdRequest(t, inst, "first")
	assert.Equal(t, "ready: all 1 slots busy, 0 requests waiting\n", awaitProbe(t, "tcp", tcpAddr, "/readyz", http.StatusOK))
	// One more waits for the slot: as many waiting as there are slots.
	second := make(chan harness.Outcome, 1)
	go func() { second <- harness.Fetch(harness.Client(false), inst.URL+"/hold?tag=second") }()
	assert.Equal(t, "not ready: all 1 slots busy and 1 requests waiting\n",
		awaitProbe(t, "tcp", tcpAddr, "/readyz", http.StatusServiceUnavailable))
	status, _ := probe(t, "tcp", tcpAddr, "/livez")
	assert.Equal(t, http.StatusOK, status, "busy workers do not make the master unlive")

	inst.Release(t, "first")
	inst.Release(t, "second")
	assert.Equal(t, "released first", (<-first).Body)
	assert.Equal(t, "released second", (<-second).Body)
	// The worker writes its answer to the client before it tells the
	// master the slot is free: the client may be a moment ahead.
	awaitProbeSays(t, "tcp", tcpAddr, "/readyz", http.StatusOK, "ready: 1 of 1 slots free\n")

	status, _ = probe(t, "tcp", tcpAddr, "/metrics")
	assert.Equal(t, http.StatusNotFound, status, "only the two probes are served")
}

func TestShutdownDelayKeepsServingWhileReadinessFails(t *testing.T) {
	health := harness.FreeAddr(t)
	inst := startProduction(t, "--threads", "2", "--health-socket", health, "--shutdown-delay", "3")
	inFlight := holdRequest(t, inst, "inflight")

	inst.Signal(t, syscall.SIGTERM)
	assert.Equal(t, "not ready: draining for a stop\n", awaitProbe(t, "tcp", health, "/readyz", http.StatusServiceUnavailable))
	// Still accepting: a new connection gets an answer during the delay.
	fresh := harness.Fetch(&http.Client{Timeout: probeTimeout, Transport: &http.Transport{DisableKeepAlives: true}}, inst.URL+"/hello")
	assert.Equal(t, "hello", fresh.Body, "a request during the shutdown delay: %v", fresh)
	status, _ := probe(t, "tcp", health, "/livez")
	assert.Equal(t, http.StatusOK, status)

	inst.Release(t, "inflight")
	assert.Equal(t, "released inflight", (<-inFlight).Body)
	assert.Equal(t, 0, inst.Wait(t, 30*time.Second))
	logs := inst.Stderr()
	assert.Less(t, strings.Index(logs, "draining: /readyz fails"), strings.Index(logs, "msg=stopping signal=terminated"), logs)
}

func TestSecondSignalDuringShutdownDelayStopsAtOnce(t *testing.T) {
	for _, second := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(second.String(), func(t *testing.T) {
			health := harness.FreeAddr(t)
			inst := startProduction(t, "--health-socket", health, "--shutdown-delay", "600")
			inst.Signal(t, syscall.SIGTERM)
			awaitProbe(t, "tcp", health, "/readyz", http.StatusServiceUnavailable)
			inst.Signal(t, second)
			// Far below the delay: the second signal cut it.
			assert.Equal(t, 0, inst.Wait(t, 30*time.Second))
			inst.AwaitLogged(t, "msg=\"stopping now\" signal="+second.String())
		})
	}
}

// notifySocket is a test-owned NOTIFY_SOCKET, as systemd binds it.
type notifySocket struct {
	conn *net.UnixConn
	env  string // NOTIFY_SOCKET's value
}

func listenNotify(t *testing.T, abstract bool) *notifySocket {
	t.Helper()
	name := filepath.Join(t.TempDir(), "notify.sock")
	if abstract {
		name = fmt.Sprintf("@gowsgi-test-notify-%d-%d", os.Getpid(), time.Now().UnixNano())
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return &notifySocket{conn: conn, env: name}
}

// next reads the next datagram.
func (n *notifySocket) next(t *testing.T) string {
	t.Helper()
	require.NoError(t, n.conn.SetReadDeadline(time.Now().Add(harness.StartTimeout)))
	buf := make([]byte, 4096)
	k, err := n.conn.Read(buf)
	require.NoError(t, err, "no sd_notify message")
	return string(buf[:k])
}

func TestSystemdNotifySpeaksTheProtocol(t *testing.T) {
	for _, abstract := range []bool{false, true} {
		t.Run(fmt.Sprintf("abstract=%v", abstract), func(t *testing.T) {
			notify := listenNotify(t, abstract)
			app := harness.TestdataPath(t, "production_app.py")
			inst := harness.LaunchConfigured(t, t.TempDir(), []string{"NOTIFY_SOCKET=" + notify.env},
				"--http-socket", "127.0.0.1:0", "--wsgi-file", app, "--processes", "2")
			serving := regexp.QuoteMeta("READY=1\nSTATUS=serving "+app+":application with 2 workers on ") + `http://127\.0\.0\.1:\d+$`

			assert.Equal(t, "STATUS=loading the app", notify.next(t))
			assert.Regexp(t, "^"+serving, notify.next(t))

			inst.Signal(t, syscall.SIGHUP)
			reloading := notify.next(t)
			assert.Regexp(t, `^RELOADING=1\nMONOTONIC_USEC=\d+\nSTATUS=reloading the workers$`, reloading)
			assert.Regexp(t, "^"+serving, notify.next(t))
			inst.AwaitLogged(t, "msg=reloaded generation=2")

			inst.Signal(t, syscall.SIGTERM)
			assert.Equal(t, "STOPPING=1\nSTATUS=draining", notify.next(t))
			assert.Equal(t, 0, inst.Wait(t, 30*time.Second))
		})
	}
}

// launchActivated starts gowsgi as systemd would with the listening
// sockets files as fds 3, 4, …: LISTEN_FDS, LISTEN_FDNAMES, and
// LISTEN_PID set to gowsgi's own pid by a shell that then execs it.
func launchActivated(t *testing.T, names string, files []*os.File, args ...string) *harness.Instance {
	t.Helper()
	inst := &harness.Instance{Dir: t.TempDir(), Output: &harness.LockedBuffer{}, Exited: make(chan struct{})}
	inst.Cmd = exec.Command("sh", append([]string{"-c", `LISTEN_PID=$$ exec "$0" "$@"`, harness.GowsgiBin}, args...)...)
	inst.Cmd.Dir = inst.Dir
	inst.Cmd.Env = append(os.Environ(), "LISTEN_FDS="+strconv.Itoa(len(files)), "LISTEN_FDNAMES="+names)
	inst.Cmd.ExtraFiles = files
	inst.Cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	inst.Cmd.Stdout, inst.Cmd.Stderr = inst.Output, inst.Output
	require.NoError(t, inst.Cmd.Start())
	go func() {
		inst.Err = inst.Cmd.Wait()
		close(inst.Exited)
	}()
	t.Cleanup(func() { inst.Stop(t) })
	inst.WaitBanner(t)
	return inst
}

// listenerFile binds network/addr in the test, as systemd's socket unit
// does, and returns it with its descriptor.
func listenerFile(t *testing.T, network, addr string) (net.Listener, *os.File) {
	t.Helper()
	ln, err := net.Listen(network, addr)
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	var f *os.File
	switch l := ln.(type) {
	case *net.TCPListener:
		f, err = l.File()
	case *net.UnixListener:
		f, err = l.File()
	}
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	return ln, f
}

func TestSocketActivationServesInheritedSockets(t *testing.T) {
	app := harness.TestdataPath(t, "production_app.py")
	tests := []struct {
		name    string
		address func(tcp net.Addr) string // the --http-socket value
	}{
		// The same command line as without activation: the address matches.
		{"address", func(tcp net.Addr) string { return tcp.String() }},
		{"fd number", func(net.Addr) string { return "fd://3" }},
		{"fd name", func(net.Addr) string { return "fd://web" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tcp, tcpFile := listenerFile(t, "tcp", "127.0.0.1:0")
			unixPath := filepath.Join(t.TempDir(), "legacy.sock")
			_, unixFile := listenerFile(t, "unix", unixPath)

			// The test still holds the TCP port: gowsgi can only serve it
			// by taking the inherited socket, never by binding.
			inst := launchActivated(t, "web:legacy", []*os.File{tcpFile, unixFile},
				"--http-socket", tt.address(tcp.Addr()), "--wsgi-file", app)
			assert.Equal(t, "http://"+tcp.Addr().String(), inst.URL)
			_, body := harness.GetText(t, inst.URL+"/hello")
			assert.Equal(t, "hello", body)

			// The socket no option names is served as uwsgi, as uWSGI does.
			assert.Contains(t, inst.Stderr(), "uwsgi://"+unixPath)
			inst.AwaitLogged(t, "serving a socket systemd passed that no option names with the uwsgi protocol")
			resp, raw := uwsgiRoundTrip(t, unixPath, sockRequest{method: "GET", path: "/hello", host: "localhost"}.uwsgiVars(), "")
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, "hello", string(raw))

			// The workers never see the LISTEN_* variables.
			for _, name := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
				_, value := harness.GetText(t, inst.URL+"/env?name="+name)
				assert.Equal(t, "unset", value, name)
			}
			inst.Stop(t)
			_, err := os.Stat(unixPath)
			assert.NoError(t, err, "an inherited socket file is systemd's, not removed")
		})
	}
}

func TestFDAddressWithoutSystemd(t *testing.T) {
	// uWSGI's fd://N serves any listening socket the process was started
	// with, systemd or not.
	tcp, tcpFile := listenerFile(t, "tcp", "127.0.0.1:0")
	inst := &harness.Instance{Dir: t.TempDir(), Output: &harness.LockedBuffer{}, Exited: make(chan struct{})}
	inst.Cmd = exec.Command(harness.GowsgiBin, "--http-socket", "fd://3", "--wsgi-file", harness.TestdataPath(t, "production_app.py"))
	inst.Cmd.Dir = inst.Dir
	inst.Cmd.ExtraFiles = []*os.File{tcpFile}
	inst.Cmd.Stdout, inst.Cmd.Stderr = inst.Output, inst.Output
	require.NoError(t, inst.Cmd.Start())
	go func() { inst.Err = inst.Cmd.Wait(); close(inst.Exited) }()
	t.Cleanup(func() { inst.Stop(t) })
	inst.WaitBanner(t)
	assert.Equal(t, "http://"+tcp.Addr().String(), inst.URL)
	_, body := harness.GetText(t, inst.URL+"/hello")
	assert.Equal(t, "hello", body)
}

// procStat reads a process's state and parent from /proc; ok is false once
// it is gone (reaped).
func procStat(pid int) (state string, ppid int, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", 0, false
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	ppid, _ = strconv.Atoi(fields[1])
	return fields[0], ppid, true
}

// zombieChildren lists the zombies whose parent is pid.
func zombieChildren(t *testing.T, pid int) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	require.NoError(t, err)
	var zombies []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if state, ppid, ok := procStat(child); ok && ppid == pid && state == "Z" {
			zombies = append(zombies, child)
		}
	}
	return zombies
}

func TestMasterReapsOrphansAsChildSubreaper(t *testing.T) {
	inst := startProduction(t)
	master := inst.Cmd.Process.Pid
	_, body := harness.GetText(t, inst.URL+"/orphan?tag=orphan")
	orphan, err := strconv.Atoi(strings.TrimSpace(body))
	require.NoError(t, err, "the app answered %q", body)

	// Its parent, the shell, exited: the orphan is the master's now, not
	// init's.
	harness.Eventually(t, 10*time.Second, func() bool {
		_, ppid, ok := procStat(orphan)
		return ok && ppid == master
	}, "orphan %d never became the child of master %d", orphan, master)

	inst.Release(t, "orphan")
	harness.Eventually(t, 10*time.Second, func() bool {
		_, _, alive := procStat(orphan)
		return !alive
	}, "orphan %d was not reaped; zombies of the master: %v", orphan, zombieChildren(t, master))
	assert.Empty(t, zombieChildren(t, master))
	// The workers and zygote are still the master's to supervise.
	_, body = harness.GetText(t, inst.URL+"/hello")
	assert.Equal(t, "hello", body)
}

// bannerWorkers matches the banner's worker count and where it came from.
var bannerWorkers = regexp.MustCompile(`· (\d+) workers? (\([^)]*\))? ?·`)

func TestProcessesAutoCountsTheCPUsAllowed(t *testing.T) {
	taskset, err := exec.LookPath("taskset")
	require.NoError(t, err, "taskset (util-linux) sets the affinity mask")
	app := harness.TestdataPath(t, "production_app.py")
	dir := t.TempDir()
	ini := harness.WriteFile(t, dir, "app.ini", "[uwsgi]\nprocesses = auto\nwsgi-file = "+app+"\nhttp-socket = 127.0.0.1:0\n")
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"command line", []string{"--processes", "auto", "--wsgi-file", app, "--http-socket", "127.0.0.1:0"}},
		{"ini file", []string{ini}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// One CPU in the affinity mask: one worker.
			inst := &harness.Instance{Dir: dir, Output: &harness.LockedBuffer{}, Exited: make(chan struct{})}
			inst.Cmd = exec.Command(taskset, append([]string{"-c", "0", harness.GowsgiBin}, tt.args...)...)
			inst.Cmd.Dir = dir
			inst.Cmd.Stdout, inst.Cmd.Stderr = inst.Output, inst.Output
			require.NoError(t, inst.Cmd.Start())
			go func() { inst.Err = inst.Cmd.Wait(); close(inst.Exited) }()
			t.Cleanup(func() { inst.Stop(t) })
			inst.WaitBanner(t)
			m := bannerWorkers.FindStringSubmatch(inst.Stderr())
			require.NotNil(t, m, inst.Stderr())
			assert.Equal(t, "1", m[1])
			assert.Equal(t, "(--processes auto: 1 CPU)", m[2])
		})
	}
}

func TestBadProductionOptionsNameThemselves(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	app := harness.TestdataPath(t, "production_app.py")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--processes", "many"}, `gowsgi: --processes: "many" is not a number`},
		{[]string{"--processes", "0"}, "gowsgi: --processes: 0 is out of range (1 to 1024)"},
		{[]string{"--shutdown-delay", "soon"}, `gowsgi: --shutdown-delay: "soon" is not a number`},
		{[]string{"--health-socket", taken.Addr().String()}, "gowsgi: --health-socket " + taken.Addr().String() + ": address already in use"},
		{[]string{"--http-socket", "fd://nothing"}, `gowsgi: --http-socket fd://nothing: server: no inherited socket is named "nothing"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out := harness.RunToExit(t, append([]string{"--wsgi-file", app}, tt.args...)...)
			assert.Equal(t, 2, code, out)
			assert.Equal(t, tt.want+"\n", out)
		})
	}
}
