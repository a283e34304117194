package main

import (
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/server"
)

func TestParseOptions(t *testing.T) {
	defaults := func(edit func(o *options)) *options {
		o := defaultOptions()
		edit(o)
		return o
	}
	tests := []struct {
		name string
		args []string
		want *options
	}{
		{
			name: "module only gets every default",
			args: []string{"--module", "hello_world_app"},
			want: defaults(func(o *options) { o.Module = "hello_world_app" }),
		},
		{
			name: "equals form, short forms and aliases",
			args: []string{"-w=app:wsgi", "-p", "4", "--threads=2", "-L", "--pp", "a", "--python-path=b", "--pythonpath", "c"},
			want: defaults(func(o *options) {
				o.Module, o.Processes, o.Threads, o.DisableLogging = "app:wsgi", 4, 2, true
				o.PythonPath = []string{"a", "b", "c"}
			}),
		},
		{
			name: "lists append, scalars take the last value",
			args: []string{"--wsgi", "x", "--http-socket", ":8080", "--workers", "2", "--http-socket=[::1]:9090", "--processes", "3"},
			want: defaults(func(o *options) {
				o.Module, o.Processes = "x", 3
				o.HTTPSockets = []string{":8080", "[::1]:9090"}
			}),
		},
		{
			name: "file, callable, chdir, seconds and byte sizes",
			args: []string{"--file", "app.py", "--callable", "app", "--chdir", "/srv", "--graceful-timeout", "5",
				"--spool-threshold", "0", "--buffer-size", "8192", "--disable-logging=false"},
			want: defaults(func(o *options) {
				o.WSGIFile, o.Callable, o.Chdir = "app.py", "app", "/srv"
				o.GracefulTimeout, o.SpoolThreshold, o.BufferSize = 5*time.Second, 0, 8192
			}),
		},
		{
			name: "every socket kind, repeated and mixed",
			args: []string{"-w", "m", "--socket", "/run/a.sock", "--http-socket", ":80", "-s=:3031", "--uwsgi-socket", "b.sock",
				"--scgi-socket", "127.0.0.1:4000", "--fastcgi-socket", "[::1]:9000", "--https-socket", ":443,c.pem,k.pem", "--vacuum"},
			want: defaults(func(o *options) {
				o.Module, o.Vacuum = "m", true
				o.HTTPSockets, o.HTTPSSockets = []string{":80"}, []string{":443,c.pem,k.pem"}
				o.Sockets, o.UWSGISockets = []string{"/run/a.sock", ":3031"}, []string{"b.sock"}
				o.SCGISockets, o.FastCGISockets = []string{"127.0.0.1:4000"}, []string{"[::1]:9000"}
			}),
		},
		{
			name: "bare --chmod-socket is 666",
			args: []string{"-w", "m", "--chmod-socket", "--socket", "a.sock"},
			want: defaults(func(o *options) { o.Module, o.ChmodSocket, o.Sockets = "m", 0o666, []string{"a.sock"} }),
		},
		{
			name: "--chmod-socket=MODE is octal",
			args: []string{"-w", "m", "--chmod-socket=660"},
			want: defaults(func(o *options) { o.Module, o.ChmodSocket = "m", 0o660 }),
		},
		{
			name: "--chmod-socket MODE as the next argument, last one wins",
			args: []string{"--chmod-socket=600", "--chmod-socket", "0644", "-w", "m"},
			want: defaults(func(o *options) { o.Module, o.ChmodSocket = "m", 0o644 }),
		},
		{
			name: "numbers read as uWSGI's atoi does, without gowsgi's own limits",
			args: []string{"-w", "m", "--harakiri", "172800", "--http-timeout=3600000", "--max-requests", "1000  ; restart workers",
				"--processes", " 4 # cores", "--chmod", "660"},
			want: defaults(func(o *options) {
				o.Module, o.Harakiri, o.HTTPTimeout = "m", 172800*time.Second, 3600000*time.Second
				o.MaxRequests, o.Processes, o.ChmodSocket = 1000, 4, 0o660
			}),
		},
		{
			name: "module and wsgi-file: the module is served, as in uWSGI",
			args: []string{"--wsgi-file", "f.py", "--module", "m"},
			want: defaults(func(o *options) {
				o.Module = "m"
				o.Notices = []notice{{kind: "wsgi-file", names: []string{"wsgi-file"}, text: bothAppsWarning}}
			}),
		},
		{
			name: "help needs no application",
			args: []string{"-h"},
			want: func() *options { o := defaultOptions(); o.Help = true; return o }(),
		},
		{
			name: "version needs no application",
			args: []string{"--version"},
			want: func() *options { o := defaultOptions(); o.Version = true; return o }(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseOptions(tt.args)
			require.NoError(t, err)
			got.Given = nil // TestGivenOptions checks them
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestParseOptionsErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--module", "m", "--foo", "--strict", "--procname-master", "main"}, "unrecognized option --foo (see gowsgi --help)"},
		{[]string{"--module", "m", "--emperor", "/etc/vassals"}, "--emperor: gowsgi has no Emperor; run one gowsgi per application (systemd, supervisord, a container each)"},
		{[]string{"--module", "m", "--gevent=100"}, "--gevent: gowsgi does not run gevent; use --threads N to serve requests concurrently"},
		{[]string{"--module", "m", "--plugins", "python3,rack"}, `--plugins: gowsgi runs Python WSGI applications only; there is no "rack" plugin`},
		{[]string{"--module", "m", "--ini", "/nonexistent/app.ini"}, "--ini: open /nonexistent/app.ini: no such file or directory"},
		{[]string{"--module", "m", "--processes", "x"}, `--processes: "x" is not a number`},
		{[]string{"--module", "m", "-p", "0"}, "-p: 0 is out of range (1 to 1024)"},
		{[]string{"--module"}, "--module needs a value (MOD[:CALLABLE])"},
		{[]string{"--module", "m", "stray"}, `unexpected argument "stray" (see gowsgi --help)`},
		{[]string{"--processes", "2"}, "no application given: pass --module MODULE or --wsgi-file FILE"},
		{[]string{"--module", "m", "--protocol", "raw"}, `--protocol: gowsgi serves the protocols uwsgi, http, http11, fastcgi and scgi, not "raw"`},
		{[]string{"--module", "m", "--harakiri", "; 60"}, `--harakiri: "; 60" is not a number`},
		{[]string{"--module", "m", "--chmod-socket=rw"}, `--chmod-socket: "rw" is not an octal mode such as 660`},
		{[]string{"--module", "m", "--chmod-socket", "1777"}, `--chmod-socket: "1777" is not an octal mode such as 660`},
		{[]string{"--module", "m", "--https-socket", ":443,cert.pem"}, `--https-socket: ":443,cert.pem" is not ADDR,CERT,KEY`},
		{[]string{"--module", "m", "--https-socket", ":443,,k.pem"}, `--https-socket: ":443,,k.pem" is not ADDR,CERT,KEY`},
		{[]string{"--module", "m", "--uwsgi-socket"}, "--uwsgi-socket needs a value (ADDR)"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := parseOptions(tt.args)
			require.Error(t, err)
			assert.Equal(t, tt.want, err.Error())
		})
	}
}

func TestAppName(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--module", "hello_world_app"}, "hello_world_app:application"},
		{[]string{"--module", "pkg.app:wsgi"}, "pkg.app:wsgi"},
		{[]string{"--module", "pkg.app", "--callable", "app"}, "pkg.app:app"},
		{[]string{"--wsgi-file", "site/app.py"}, "site/app.py:application"},
	}
	for _, tt := range tests {
		o, err := parseOptions(tt.args)
		require.NoError(t, err)
		assert.Equal(t, tt.want, o.appName())
	}
}

func TestHelpListsEveryOption(t *testing.T) {
	help := helpText()
	for _, opt := range optionTable(defaultOptions()) {
		for _, name := range opt.names {
			assert.Contains(t, help, name)
		}
	}
}

func TestServerConfigSockets(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []server.Socket
	}{
		{name: "none given: the server decides", args: nil, want: nil},
		{
			name: "HTTP first, then by protocol in the order given",
			args: []string{"--scgi-socket", ":4000", "-s", "/run/u.sock", "--https-socket", "[::1]:8443,c.pem,k.pem",
				"--fastcgi-socket", "f.sock", "--http-socket", ":8080", "--socket", ":3031"},
			want: []server.Socket{
				{Protocol: server.ProtocolHTTP, Address: ":8080"},
				{Protocol: server.ProtocolHTTPS, Address: "[::1]:8443", CertFile: "c.pem", KeyFile: "k.pem"},
				{Protocol: server.ProtocolUWSGI, Address: "/run/u.sock"},
				{Protocol: server.ProtocolUWSGI, Address: ":3031"},
				{Protocol: server.ProtocolSCGI, Address: ":4000"},
				{Protocol: server.ProtocolFastCGI, Address: "f.sock"},
			},
		},
		{
			name: "--protocol is --socket's, not --uwsgi-socket's; --http11-socket is HTTP",
			args: []string{"--socket", ":8080", "--protocol=http", "--uwsgi-socket", ":3031", "--http11-socket", ":9090"},
			want: []server.Socket{
				{Protocol: server.ProtocolHTTP, Address: ":9090"},
				{Protocol: server.ProtocolUWSGI, Address: ":3031"},
				{Protocol: server.ProtocolHTTP, Address: ":8080"},
			},
		},
		{
			name: "--socket-protocol fastcgi",
			args: []string{"-s", "f.sock", "--socket-protocol", "FastCGI"},
			want: []server.Socket{{Protocol: server.ProtocolFastCGI, Address: "f.sock"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseOptions(append([]string{"-w", "m", "--vacuum", "--chmod-socket"}, tt.args...))
			require.NoError(t, err)
			cfg := o.serverConfig()
			assert.Equal(t, tt.want, cfg.Sockets)
			assert.True(t, cfg.Vacuum)
			assert.Equal(t, fs.FileMode(0o666), cfg.ChmodSocket)
		})
	}
}

func TestProcessesAuto(t *testing.T) {
	want, from := server.AutoProcesses()
	tests := []struct {
		name string
		env  []string
		args []string
	}{
		{"command line", nil, []string{"--module", "m", "--processes", "auto"}},
		{"environment", []string{"UWSGI_PROCESSES=auto"}, []string{"--module", "m"}},
		{"a later number wins", nil, []string{"--module", "m", "--processes", "auto", "-p", "3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseConfig(tt.env, tt.args, t.TempDir())
			require.NoError(t, err)
			cfg := o.serverConfig()
			if tt.name == "a later number wins" {
				assert.Equal(t, 3, cfg.Processes)
				assert.Empty(t, cfg.ProcessesFrom)
				return
			}
			assert.Equal(t, want, cfg.Processes)
			assert.Equal(t, from, cfg.ProcessesFrom)
			assert.Equal(t, want > 1, cfg.Spec.Multiprocess)
		})
	}
}

// TestProductionProxyAndLogOptions: the proxy, keep-alive and JSON log
// options, from the command line and as UWSGI_* variables, become the
// server's sockets and settings.
func TestProductionProxyAndLogOptions(t *testing.T) {
	tests := []struct {
		name    string
		environ []string
		args    []string
	}{
		{"command line", nil, []string{"--module", "m", "--http-socket", ":8000", "--enable-proxy-protocol",
			"--proxy-protocol-socket", ":8002", "--forwarded-allow-ips", "10.0.0.0/8, 127.0.0.1", "--http-keepalive=75", "--log-json"}},
		{"environment", []string{"UWSGI_ENABLE_PROXY_PROTOCOL=1", "UWSGI_PROXY_PROTOCOL_SOCKET=:8002",
			"UWSGI_FORWARDED_ALLOW_IPS=10.0.0.0/8, 127.0.0.1", "UWSGI_HTTP_KEEPALIVE=75", "UWSGI_LOG_JSON=true"},
			[]string{"--module", "m", "--http-socket", ":8000"}},
		{"uWSGI's router spelling", []string{"UWSGI_HTTP_ENABLE_PROXY_PROTOCOL=true", "UWSGI_PROXY_PROTOCOL_SOCKET=:8002"},
			[]string{"--module", "m", "--http-socket", ":8000", "--forwarded-allow-ips=10.0.0.0/8,127.0.0.1", "--http-keepalive=75", "--log-json"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseConfig(tt.environ, tt.args, t.TempDir())
			require.NoError(t, err)
			cfg := o.serverConfig()
			assert.Equal(t, []server.Socket{
				{Protocol: server.ProtocolHTTP, Address: ":8000", ProxyProtocol: true},
				{Protocol: server.ProtocolHTTP, Address: ":8002", ProxyProtocol: true},
			}, cfg.Sockets)
			assert.Equal(t, 75*time.Second, cfg.HTTPKeepalive)
			assert.True(t, cfg.LogJSON)
			require.NotEmpty(t, cfg.ForwardedAllowIPs)
			assert.Equal(t, "10.0.0.0/8,127.0.0.1", strings.ReplaceAll(strings.Join(cfg.ForwardedAllowIPs, ","), " ", ""))
		})
	}
}

func TestHTTPKeepaliveValues(t *testing.T) {
	tests := []struct {
		arg    string
		want   time.Duration
		notice bool
	}{
		{"--http-keepalive", 0, false},
		{"--http-keepalive=1", 0, false},
		{"--http-keepalive=true", 0, false},
		{"--http-keepalive=120", 120 * time.Second, false},
		{"--http-keepalive=0", 0, true},
	}
	for _, tt := range tests {
		o, err := parseConfig(nil, []string{"--module", "m", tt.arg}, t.TempDir())
		require.NoError(t, err, tt.arg)
		assert.Equal(t, tt.want, o.HTTPKeepalive, tt.arg)
		assert.Equal(t, tt.notice, len(o.Notices) == 1, "%s: %v", tt.arg, o.Notices)
	}
}

func TestProxyAndLogOptionRefusals(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--forwarded-allow-ips", "proxy.example"}, "--forwarded-allow-ips"},
		{[]string{"--enable-proxy-protocol", "--socket", ":3031"}, "no HTTP socket"},
		{[]string{"--log-json", "--log-format", "%(uri)"}, "--log-format"},
		{[]string{"--http-keepalive=soon"}, "not a number"},
	}
	for _, tt := range tests {
		_, err := parseConfig(nil, append([]string{"--module", "m"}, tt.args...), t.TempDir())
		require.Error(t, err, "%q", tt.args)
		assert.Contains(t, err.Error(), tt.want)
	}
}

func TestEnableProxyProtocolCoversHTTPSSockets(t *testing.T) {
	o, err := parseConfig(nil, []string{"--module", "m", "--https-socket", ":443,c.pem,k.pem", "--socket", ":3031", "--enable-proxy-protocol"}, t.TempDir())
	require.NoError(t, err)
	assert.Equal(t, []server.Socket{
		{Protocol: server.ProtocolHTTPS, Address: ":443", CertFile: "c.pem", KeyFile: "k.pem", ProxyProtocol: true},
		{Protocol: server.ProtocolUWSGI, Address: ":3031"},
	}, o.serverConfig().Sockets)
}
