package e2e

// examples/kubernetes.yaml as a kubelet would run it: the container's
// command line as written, in a network namespace of its own (so its fixed
// ports clash with nothing), its probes asked at their ports and paths,
// and a SIGTERM that must leave the pod failing readiness at once, serving
// through the shutdown delay, and exiting 0 within the grace period.

import (
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
	"go.yaml.in/yaml/v3"

	"github.com/gowsgi/gowsgi/e2e/internal/harness"
)

// k8sDeployment is the part of a Deployment the test reads.
type k8sDeployment struct {
	Kind string `yaml:"kind"`
	Spec struct {
		Template struct {
			Spec struct {
				TerminationGracePeriodSeconds int            `yaml:"terminationGracePeriodSeconds"`
				Containers                    []k8sContainer `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type k8sContainer struct {
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Ports   []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	ReadinessProbe k8sProbe `yaml:"readinessProbe"`
	LivenessProbe  k8sProbe `yaml:"livenessProbe"`
}

type k8sProbe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
}

// port returns the number of the container port named name.
func (c *k8sContainer) port(t *testing.T, name string) string {
	t.Helper()
	for _, p := range c.Ports {
		if p.Name == name {
			return strconv.Itoa(p.ContainerPort)
		}
	}
	require.FailNow(t, "no container port named "+name)
	return ""
}

// argSeconds returns the seconds of the --name=N argument.
func (c *k8sContainer) argSeconds(t *testing.T, name string) int {
	t.Helper()
	for _, a := range c.Args {
		if value, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			n, err := strconv.Atoi(value)
			require.NoError(t, err, a)
			return n
		}
	}
	require.FailNow(t, "no --"+name+" in the container's args")
	return 0
}

// readDeployment reads the Deployment of examples/kubernetes.yaml.
func readDeployment(t *testing.T) k8sDeployment {
	t.Helper()
	f, err := os.Open(filepath.Join(harness.ExamplesDir(t), "kubernetes.yaml"))
	require.NoError(t, err)
	defer f.Close()
	dec := yaml.NewDecoder(f)
	for {
		var d k8sDeployment
		require.NoError(t, dec.Decode(&d), "examples/kubernetes.yaml has no Deployment")
		if d.Kind == "Deployment" {
			return d
		}
	}
}

// probeStatus asks a probe's path on port of addr.
func probeStatus(addr, port, path string) int {
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get("http://" + addr + ":" + port + path)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestKubernetesExampleDrainsOnSIGTERM(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipped: making a network namespace needs root")
	}
	d := readDeployment(t)
	pod := d.Spec.Template.Spec
	require.Len(t, pod.Containers, 1)
	c := pod.Containers[0]
	require.Equal(t, []string{"gowsgi"}, c.Command)
	delay, graceful := c.argSeconds(t, "shutdown-delay"), c.argSeconds(t, "graceful-timeout")
	assert.Less(t, delay+graceful, pod.TerminationGracePeriodSeconds, "the grace period covers the delay and the drain")

	network := makeLBNetwork(t)
	workdir := t.TempDir() // the image's /srv/app: the app is module app
	app, err := os.ReadFile(harness.TestdataPath(t, "proxied_app.py"))
	require.NoError(t, err)
	harness.WriteFile(t, workdir, "app.py", string(app))
	inst := harness.LaunchInNetns(t, network.namespace(1), workdir, c.Args...)
	pod1 := hostIP(1)
	ready, live := c.ReadinessProbe.HTTPGet, c.LivenessProbe.HTTPGet
	readyPort, livePort, httpPort := c.port(t, ready.Port), c.port(t, live.Port), c.port(t, "http")
	harness.Eventually(t, 30*time.Second, func() bool { return probeStatus(pod1, readyPort, ready.Path) == http.StatusOK },
		"the readiness probe never passed")
	assert.Equal(t, http.StatusOK, probeStatus(pod1, livePort, live.Path))
	status, body := harness.GetText(t, "http://"+pod1+":"+httpPort+"/hello")
	require.Equal(t, http.StatusOK, status, body)

	inst.Signal(t, syscall.SIGTERM)
	harness.Eventually(t, 5*time.Second, func() bool { return probeStatus(pod1, readyPort, ready.Path) == http.StatusServiceUnavailable },
		"readiness did not fail at once on SIGTERM")
	for range 5 {
		status, body := harness.GetText(t, "http://"+pod1+":"+httpPort+"/hello")
		assert.Equal(t, http.StatusOK, status, "still served through the shutdown delay: %s", body)
	}
	assert.Equal(t, http.StatusOK, probeStatus(pod1, livePort, live.Path), "alive while it drains: no restart")
	assert.Equal(t, 0, inst.Wait(t, time.Duration(pod.TerminationGracePeriodSeconds)*time.Second))
}
