package e2e

// Many hosts behind real load balancers, with nothing lost: three gowsgi
// hosts, each in a network namespace of its own joined to this one by a
// veth pair (addresses from 198.18.0.0/15, the benchmarking range), with
// Debian's nginx (examples/nginx-balancer.conf: upstream and
// proxy_next_upstream) and HAProxy (examples/haproxy.cfg: checks of
// /readyz, PROXY protocol v2) in front, both at once, in this namespace.
// A bounded load of GETs and POSTs runs through both while the hosts are
// restarted in turn, reload at once, and one is killed outright. The test
// makes its network and deletes it; where the kernel or the user may not
// make namespaces it is skipped and says so.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/e2e/internal/harness"
)

// The addresses examples/nginx-balancer.conf and examples/haproxy.cfg name.
const (
	balancerIP   = "198.18.0.1"
	nginxFront   = balancerIP + ":8080"
	haproxyFront = balancerIP + ":8090"
	lbHosts      = 3
)

// hostIP is host i's address (1-based) in its namespace; the root end of
// its veth pair is 198.18.i.1.
func hostIP(i int) string { return fmt.Sprintf("198.18.%d.2", i) }

// lbNetwork is the namespaces and links one test run made.
type lbNetwork struct {
	prefix string // every name this run made starts with it
}

// netnsLock serialises the tests that make this network: its addresses
// are fixed (the examples name them), so two runs at once would clash.
const netnsLock = "/tmp/gowsgi-e2e-netns.lock"

// ip runs ip(8) with args.
func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// makeLBNetwork builds the balancers' address on a veth pair and a
// namespace per host, or skips the test where namespaces cannot be made.
func makeLBNetwork(t *testing.T) *lbNetwork {
	t.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("skipped: ip(8) is missing (iproute2), so no network namespaces can be made")
	}
	lock, err := os.OpenFile(netnsLock, os.O_CREATE|os.O_RDWR, 0o600)
	require.NoError(t, err)
	require.NoError(t, syscall.Flock(int(lock.Fd()), syscall.LOCK_EX))
	t.Cleanup(func() { lock.Close() })
	removeStaleLBNetwork()
	n := &lbNetwork{prefix: fmt.Sprintf("gwlb%d", os.Getpid()%100000)}
	probe := n.prefix + "-probe"
	if err := ip("netns", "add", probe); err != nil {
		t.Skipf("skipped: the kernel refuses network namespaces here (%v); the load balancer proof needs them", err)
	}
	require.NoError(t, ip("netns", "del", probe))
	t.Cleanup(n.remove)
	// The balancers' address, on a veth pair of its own (no dummy link
	// module is needed), so nothing of this machine's own changes.
	require.NoError(t, ip("link", "add", n.prefix, "type", "veth", "peer", "name", n.prefix+"p"))
	require.NoError(t, ip("addr", "add", balancerIP+"/32", "dev", n.prefix))
	require.NoError(t, ip("link", "set", n.prefix, "up"))
	require.NoError(t, ip("link", "set", n.prefix+"p", "up"))
	for i := 1; i <= lbHosts; i++ {
		ns, veth := n.namespace(i), fmt.Sprintf("%sv%d", n.prefix, i)
		require.NoError(t, ip("netns", "add", ns))
		require.NoError(t, ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns))
		require.NoError(t, ip("addr", "add", fmt.Sprintf("198.18.%d.1/24", i), "dev", veth))
		require.NoError(t, ip("link", "set", veth, "up"))
		require.NoError(t, ip("-n", ns, "addr", "add", hostIP(i)+"/24", "dev", "eth0"))
		require.NoError(t, ip("-n", ns, "link", "set", "eth0", "up"))
		require.NoError(t, ip("-n", ns, "link", "set", "lo", "up"))
		require.NoError(t, ip("-n", ns, "route", "add", "default", "via", fmt.Sprintf("198.18.%d.1", i)))
	}
	return n
}

func (n *lbNetwork) namespace(i int) string { return fmt.Sprintf("%s-h%d", n.prefix, i) }

// remove deletes what makeLBNetwork made: a namespace takes its end of
// the veth pair, and with it the pair, along.
func (n *lbNetwork) remove() {
	for i := 1; i <= lbHosts; i++ {
		_ = ip("netns", "del", n.namespace(i))
	}
	_ = ip("link", "del", n.prefix)
}

// removeStaleLBNetwork deletes what a run that was killed left; the lock
// is held, so no other run is using anything named gwlb*.
func removeStaleLBNetwork() {
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		if name, _, _ := strings.Cut(line, " "); strings.HasPrefix(name, "gwlb") {
			_ = ip("netns", "del", name)
		}
	}
	out, _ = exec.Command("ip", "-o", "link", "show").Output()
	for _, line := range strings.Split(string(out), "\n") {
		fields := strings.Fields(line)
		if len(fields) > 1 && strings.HasPrefix(fields[1], "gwlb") {
			name, _, _ := strings.Cut(strings.TrimSuffix(fields[1], ":"), "@")
			_ = ip("link", "del", name)
		}
	}
}

// lbHost is one gowsgi host: its namespace and the running instance.
type lbHost struct {
	t    *testing.T // the whole test, which stops the host at its end
	n    int
	ns   string
	dir  string
	inst *harness.Instance
}

// start runs gowsgi on the host: plain HTTP for nginx, the PROXY protocol
// for HAProxy, the health endpoints and the metrics.
func (h *lbHost) start(t *testing.T) {
	t.Helper()
	ip := hostIP(h.n)
	h.inst = harness.LaunchInNetns(t, h.ns, h.dir,
		"--http-socket", ip+":8000", "--proxy-protocol-socket", ip+":8002",
		"--health-socket", ip+":8001", "--metrics", ip+":9100",
		"--wsgi-file", harness.TestdataPath(t, "proxied_app.py"), "--env", fmt.Sprintf("HOST_NAME=host%d", h.n),
		"--processes", "2", "--threads", "4", "--shutdown-delay", "5", "--graceful-timeout", "20",
		"--forwarded-allow-ips", "198.18.0.0/15", "--disable-logging")
}

// requestsServed reads gowsgi_requests_total, summed, from the host's
// metrics.
func (h *lbHost) requestsServed(t *testing.T) int {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + hostIP(h.n) + ":9100/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	total := 0.0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "gowsgi_requests_total{") {
			fields := strings.Fields(line)
			v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
			require.NoError(t, err, line)
			total += v
		}
	}
	return int(total)
}

// lbOutcome is one request of the load.
type lbOutcome struct {
	method string
	status int
	err    error
	host   string // the host that answered, from the body
}

func (o lbOutcome) ok() bool { return o.err == nil && o.status == http.StatusOK }

func (o lbOutcome) String() string {
	if o.err != nil {
		return o.method + " " + o.err.Error()
	}
	return fmt.Sprintf("%s %d", o.method, o.status)
}

// lbLoad sends GETs and POSTs through one balancer from a few clients
// until stopped or until max requests have been sent.
type lbLoad struct {
	mu       sync.Mutex
	outcomes []lbOutcome
	stop     chan struct{}
	done     sync.WaitGroup
}

// lbPostBody is what each POST sends; the app answers its length.
var lbPostBody = strings.Repeat("p", 2048)

func startLBLoad(front string, clients, max int) *lbLoad {
	l := &lbLoad{stop: make(chan struct{})}
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	for i := range clients {
		l.done.Add(1)
		go func() {
			defer l.done.Done()
			// Paced, so a phase's load lasts through its restarts
			// within its bound.
			tick := time.NewTicker(lbLoadPace)
			defer tick.Stop()
			for n := 0; n < max/clients; n++ {
				select {
				case <-l.stop:
					return
				case <-tick.C:
				}
				l.record(lbRequest(c, front, (i+n)%2 == 0))
			}
		}()
	}
	return l
}

func lbRequest(c *http.Client, front string, post bool) lbOutcome {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	method, body := http.MethodGet, io.Reader(nil)
	if post {
		method, body = http.MethodPost, strings.NewReader(lbPostBody)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+front+"/work", body)
	if err != nil {
		return lbOutcome{method: method, err: err}
	}
	resp, err := c.Do(req)
	if err != nil {
		return lbOutcome{method: method, err: err}
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	o := lbOutcome{method: method, status: resp.StatusCode, err: err}
	text := string(answer)
	if post && o.ok() && !strings.HasPrefix(text, strconv.Itoa(len(lbPostBody))+" from ") {
		o.err = fmt.Errorf("POST answered %q", text)
	}
	if i := strings.LastIndex(text, "from "); i >= 0 {
		o.host = text[i+len("from "):]
	}
	return o
}

func (l *lbLoad) record(o lbOutcome) {
	l.mu.Lock()
	l.outcomes = append(l.outcomes, o)
	l.mu.Unlock()
}

// snapshot returns the outcomes so far.
func (l *lbLoad) snapshot() []lbOutcome {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]lbOutcome(nil), l.outcomes...)
}

// finish stops the load and waits for the requests in flight.
func (l *lbLoad) finish() []lbOutcome {
	close(l.stop)
	l.done.Wait()
	return l.snapshot()
}

// failures lists the outcomes that failed, counted by kind.
func failures(outcomes []lbOutcome) map[string]int {
	out := map[string]int{}
	for _, o := range outcomes {
		if !o.ok() {
			out[o.String()]++
		}
	}
	return out
}

// awaitMore waits until the load has sent n more requests than it had.
func (l *lbLoad) awaitMore(t *testing.T, n int) {
	t.Helper()
	target := len(l.snapshot()) + n
	harness.Eventually(t, 30*time.Second, func() bool { return len(l.snapshot()) >= target },
		"the load did not reach %d requests", target)
}

// answeredBy counts the successful answers from host after index from.
func answeredBy(outcomes []lbOutcome, from int, host string) int {
	n := 0
	for _, o := range outcomes[from:] {
		if o.ok() && o.host == host {
			n++
		}
	}
	return n
}

// lbRig is the whole setup: the network, the hosts, both balancers.
type lbRig struct {
	hosts   []*lbHost
	haproxy *harness.Balancer
}

// restart starts host i again; h.t, the whole test's, owns it, so it
// outlives the subtest that restarts it.
func (h *lbHost) restart() { h.start(h.t) }

func startLBRig(t *testing.T) *lbRig {
	t.Helper()
	network := makeLBNetwork(t)
	rig := &lbRig{}
	for i := 1; i <= lbHosts; i++ {
		h := &lbHost{t: t, n: i, ns: network.namespace(i), dir: t.TempDir()}
		h.start(t)
		rig.hosts = append(rig.hosts, h)
	}
	dir := harness.SharedDir(t, "", "gowsgi-nginx-lb-")
	conf := harness.WriteFile(t, dir, "nginx-main.conf", fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    include %[2]s;
}
`, dir, filepath.Join(harness.ExamplesDir(t), "nginx-balancer.conf")))
	harness.StartNginx(t, nginxFront, dir, conf)
	rig.haproxy = harness.StartHAProxy(t, haproxyFront, filepath.Join(harness.ExamplesDir(t), "haproxy.cfg"))
	for i := 1; i <= lbHosts; i++ {
		waitReady(t, i)
	}
	return rig
}

// haproxySaid counts the times HAProxy's log says host i went state
// ("UP" or "DOWN"); a server starts UP without a line.
func (rig *lbRig) haproxySaid(i int, state string) int {
	return strings.Count(rig.haproxy.Output.String(), fmt.Sprintf("gowsgi/host%d is %s", i, state))
}

// lastHAProxyLine returns HAProxy's last line saying host i went state.
func (rig *lbRig) lastHAProxyLine(i int, state string) string {
	marker, last := fmt.Sprintf("gowsgi/host%d is %s", i, state), ""
	for _, line := range strings.Split(rig.haproxy.Output.String(), "\n") {
		if strings.Contains(line, marker) {
			last = line
		}
	}
	return last
}

// awaitHAProxy waits until HAProxy's log says host i went state once more
// than the before it was given.
func (rig *lbRig) awaitHAProxy(t *testing.T, i int, state string, before int) {
	t.Helper()
	harness.Eventually(t, 30*time.Second, func() bool { return rig.haproxySaid(i, state) > before },
		"HAProxy never logged host%d %s; its log:\n%s", i, state, rig.haproxy.Output.String())
}

// waitReady waits until host i's /readyz answers 200.
func waitReady(t *testing.T, i int) {
	t.Helper()
	c := &http.Client{Timeout: 2 * time.Second}
	harness.Eventually(t, 30*time.Second, func() bool {
		resp, err := c.Get("http://" + hostIP(i) + ":8001/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, "host%d never became ready", i)
}

// startBoth starts the same load through nginx and HAProxy.
func startBoth(clients, max int) map[string]*lbLoad {
	return map[string]*lbLoad{"nginx": startLBLoad(nginxFront, clients, max), "haproxy": startLBLoad(haproxyFront, clients, max)}
}

// lbLoadClients, lbLoadMax and lbLoadPace bound each phase's load per
// balancer: at most 3 × 50 requests a second, 6000 in all.
const (
	lbLoadClients = 3
	lbLoadMax     = 6000
	lbLoadPace    = 20 * time.Millisecond
)

func TestLoadBalancersLoseNothing(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipped: making network namespaces needs root")
	}
	rig := startLBRig(t)

	t.Run("rolling restart with --shutdown-delay", func(t *testing.T) {
		loads := startBoth(lbLoadClients, lbLoadMax)
		for _, l := range loads {
			l.awaitMore(t, 50)
		}
		for i, h := range rig.hosts {
			down, up := rig.haproxySaid(i+1, "DOWN"), rig.haproxySaid(i+1, "UP")
			h.inst.Signal(t, syscall.SIGTERM)
			rig.awaitHAProxy(t, i+1, "DOWN", down)
			// Out of the rotation because /readyz failed while the host
			// still served (the shutdown delay), not because it was gone.
			assert.Contains(t, rig.lastHAProxyLine(i+1, "DOWN"), "Layer7 wrong status, code: 503")
			require.Equal(t, 0, h.inst.Wait(t, 30*time.Second), "host%d drains and exits 0", i+1)
			h.restart() // on the same addresses
			rig.awaitHAProxy(t, i+1, "UP", up)
			for _, l := range loads {
				l.awaitMore(t, 30)
			}
		}
		for name, l := range loads {
			outcomes := l.finish()
			assert.Empty(t, failures(outcomes), "%s: of %d requests", name, len(outcomes))
			t.Logf("%s: %d requests through three rolling restarts", name, len(outcomes))
		}
	})

	t.Run("every host reloads at once", func(t *testing.T) {
		before := 0
		for _, h := range rig.hosts {
			before += h.requestsServed(t)
		}
		loads := startBoth(lbLoadClients, lbLoadMax)
		for _, l := range loads {
			l.awaitMore(t, 50)
		}
		for _, h := range rig.hosts {
			h.inst.Signal(t, syscall.SIGHUP)
		}
		for _, h := range rig.hosts {
			h.inst.AwaitLogged(t, "msg=reloaded")
		}
		for _, l := range loads {
			l.awaitMore(t, 100)
		}
		sent := 0
		for name, l := range loads {
			outcomes := l.finish()
			assert.Empty(t, failures(outcomes), "%s: of %d requests", name, len(outcomes))
			sent += len(outcomes)
		}
		after := 0
		for _, h := range rig.hosts {
			after += h.requestsServed(t)
		}
		assert.Equal(t, sent, after-before, "the hosts' gowsgi_requests_total add up to the requests the clients sent")
	})

	t.Run("one host killed outright", func(t *testing.T) {
		loads := startBoth(lbLoadClients, lbLoadMax)
		for _, l := range loads {
			l.awaitMore(t, 50)
		}
		victim := rig.hosts[1]
		down, up := rig.haproxySaid(2, "DOWN"), rig.haproxySaid(2, "UP")
		victim.inst.SignalGroup(t, syscall.SIGKILL)
		<-victim.inst.Exited
		rig.awaitHAProxy(t, 2, "DOWN", down)
		marks := map[string]int{}
		for name, l := range loads {
			l.awaitMore(t, 100)
			marks[name] = len(l.snapshot())
		}
		victim.restart()
		rig.awaitHAProxy(t, 2, "UP", up)
		for name, l := range loads {
			harness.Eventually(t, 30*time.Second, func() bool { return answeredBy(l.snapshot(), marks[name], "host2") > 0 },
				"%s never sent to host2 again after its restart", name)
		}
		for name, l := range loads {
			outcomes := l.finish()
			failed := failures(outcomes)
			for kind, n := range failed {
				assert.True(t, strings.HasPrefix(kind, "POST"), "%s: %d× %s: only a POST in flight on the killed host may fail", name, n, kind)
			}
			total := 0
			for _, n := range failed {
				total += n
			}
			assert.LessOrEqual(t, total, lbLoadClients, "%s: at most the POSTs in flight on the killed host: %v", name, failed)
			t.Logf("%s: %d requests, failed: %v", name, len(outcomes), failed)
		}
	})
}
