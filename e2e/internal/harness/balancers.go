// Load balancers for the end-to-end tests: Debian's HAProxy and nginx, run
// in the foreground with a configuration file the test names (often one
// of examples/ as it ships), stopped when the test ends.
package harness

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Balancer is one running load balancer process.
type Balancer struct {
	Cmd    *exec.Cmd
	Output *LockedBuffer
	exited chan struct{}
}

// RequireBinary returns the path of name (on PATH or in /usr/sbin), and
// fails the test when it is missing: the Makefile's TEST_DEBS install it.
func RequireBinary(t *testing.T, name string) string {
	t.Helper()
	if path, err := exec.LookPath(name); err == nil {
		return path
	}
	path := filepath.Join("/usr/sbin", name)
	_, err := os.Stat(path)
	require.NoError(t, err, "%s is not installed (make test installs TEST_DEBS)", name)
	return path
}

// StartHAProxy runs haproxy in the foreground with the configuration files
// given and waits until addr, one of its frontends, accepts connections.
func StartHAProxy(t *testing.T, addr string, configs ...string) *Balancer {
	t.Helper()
	args := []string{"-db"}
	for _, c := range configs {
		args = append(args, "-f", c)
	}
	return startBalancer(t, addr, RequireBinary(t, "haproxy"), args...)
}

// StartNginx runs nginx in the foreground with conf, a whole nginx.conf,
// in dir (its prefix, where its logs and temporary files go), and waits
// until addr accepts connections.
func StartNginx(t *testing.T, addr, dir, conf string) *Balancer {
	t.Helper()
	return startBalancer(t, addr, RequireBinary(t, "nginx"), "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", conf)
}

func startBalancer(t *testing.T, addr, binary string, args ...string) *Balancer {
	t.Helper()
	b := &Balancer{Cmd: exec.Command(binary, args...), Output: &LockedBuffer{}, exited: make(chan struct{})}
	b.Cmd.Stdout, b.Cmd.Stderr = b.Output, b.Output
	b.Cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, b.Cmd.Start(), "starting %s", binary)
	go func() {
		b.Cmd.Wait()
		close(b.exited)
	}()
	t.Cleanup(func() {
		syscall.Kill(-b.Cmd.Process.Pid, syscall.SIGKILL)
		<-b.exited
	})
	deadline := time.Now().Add(webServerStartTimeout)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return b
		}
		select {
		case <-b.exited:
			require.FailNow(t, binary+" exited before listening", "output:\n%s", b.Output.String())
		case <-time.After(PollInterval):
		}
		if time.Now().After(deadline) {
			require.FailNow(t, binary+" did not listen", "on %s; output:\n%s", addr, b.Output.String())
		}
	}
}

// LaunchInNetns starts gowsgi with exactly args inside the network
// namespace ns (ip netns exec runs it in place, so the pid is gowsgi's),
// in dir, waits for its banner, and stops it when the test ends.
func LaunchInNetns(t *testing.T, ns, dir string, args ...string) *Instance {
	t.Helper()
	inst := &Instance{Dir: dir, Output: &LockedBuffer{}, Exited: make(chan struct{})}
	inst.Cmd = exec.Command(RequireBinary(t, "ip"), append([]string{"netns", "exec", ns, GowsgiBin}, args...)...)
	inst.Cmd.Dir = dir
	inst.Cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	inst.Cmd.Stdout, inst.Cmd.Stderr = inst.Output, inst.Output
	require.NoError(t, inst.Cmd.Start(), "starting %s in %s", GowsgiBin, ns)
	go func() {
		inst.Err = inst.Cmd.Wait()
		close(inst.Exited)
	}()
	t.Cleanup(func() { inst.Stop(t) })
	inst.WaitBanner(t)
	return inst
}
