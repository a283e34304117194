// Tests for the nginx configuration the servers behind nginx get.
package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNginxConfig(t *testing.T) {
	conf := nginxConfig(nginxSite{dir: "/tmp/run/nginx-gowsgi-nginx", listen: "127.0.0.1:40123", socket: "/tmp/run/nginx-gowsgi.sock"})
	tests := []struct {
		name, line string
	}{
		{"stays in the foreground, stopped by its PID", "daemon off;"},
		{"a master and a worker per core, as Debian runs it", "worker_processes auto;"},
		{"workers can reach a socket in a private directory", "user root;"},
		{"pid file in its own directory", "pid /tmp/run/nginx-gowsgi-nginx/nginx.pid;"},
		{"errors to the log file the benchmark keeps", "error_log stderr warn;"},
		{"temporary files in its own directory", "uwsgi_temp_path /tmp/run/nginx-gowsgi-nginx/uwsgi;"},
		{"listens where wrk connects", "listen 127.0.0.1:40123;"},
		{"the stock uwsgi params", "include /etc/nginx/uwsgi_params;"},
		{"passes over the server's Unix socket", "uwsgi_pass unix:/tmp/run/nginx-gowsgi.sock;"},
		{"no access log, as no server in the benchmark logs requests", "access_log off;"},
	}
	lines := strings.Split(conf, "\n")
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Contains(t, lines, tt.line)
		})
	}
}

// TestNginxAcceptsConfig has the real nginx check the generated
// configuration (nginx -t), as the benchmark would start it.
func TestNginxAcceptsConfig(t *testing.T) {
	if _, err := os.Stat(nginxBinary()); err != nil {
		t.Skipf("nginx is not installed (make bench-deps installs it): %v", err)
	}
	if _, err := os.Stat(nginxUwsgiParams); err != nil {
		t.Skipf("no %s: %v", nginxUwsgiParams, err)
	}
	tmp := t.TempDir()
	site := nginxSite{dir: filepath.Join(tmp, "s-nginx"), listen: "127.0.0.1:1", socket: nginxSocket(tmp, "s")}
	require.NoError(t, os.MkdirAll(site.dir, 0o700))
	conf := filepath.Join(site.dir, "nginx.conf")
	require.NoError(t, os.WriteFile(conf, []byte(nginxConfig(site)), 0o644))
	argv := append(nginxArgv(site.dir, conf), "-t")
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "syntax is ok")
}
