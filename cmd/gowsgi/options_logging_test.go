package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/server"
)

func TestLoggingOptions(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		logTo   string
		routing server.LogRouting
		err     string // "" when the options are accepted
	}{
		{name: "the first file logger is --logto", args: []string{"--logger", "file:/tmp/a.log", "--logger", "file:/tmp/b.log"},
			logTo: "/tmp/a.log", routing: server.LogRouting{Loggers: []string{"file:/tmp/a.log", "file:/tmp/b.log"}}},
		{name: "--logto wins", args: []string{"--logto", "/tmp/t.log", "--logger", "file:/tmp/a.log"},
			logTo: "/tmp/t.log", routing: server.LogRouting{Loggers: []string{"file:/tmp/a.log"}}},
		{name: "--log-syslog and --log-socket are loggers", args: []string{"--log-syslog=web,local0", "--log-socket", "127.0.0.1:1717", "--log-syslog"},
			routing: server.LogRouting{Loggers: []string{"syslog:web,local0", "socket:127.0.0.1:1717", "syslog"}}},
		{name: "request loggers, encoders, routes", args: []string{"--logger-req", "file:/tmp/r.log", "--req-logger", "x file:/tmp/x.log",
			"--log-req-route", "x ^GET", "--log-encoder", "nl", "--log-req-encoder", "prefix R"},
			routing: server.LogRouting{ReqLoggers: []string{"file:/tmp/r.log", "x file:/tmp/x.log"}, ReqRoutes: []string{"x ^GET"},
				Encoders: []string{"nl"}, ReqEncoders: []string{"prefix R"}}},
		{name: "--log-json with the --logto file logger", args: []string{"--log-json", "--logger", "file:/tmp/a.log"},
			logTo: "/tmp/a.log", routing: server.LogRouting{Loggers: []string{"file:/tmp/a.log"}}},
		{name: "--log-json with syslog", args: []string{"--log-json", "--logger", "syslog"},
			err: "--log-json writes every line as JSON itself; drop --log-json, or the loggers and log encoders"},
		{name: "an encoder gowsgi lacks", args: []string{"--log-encoder", "gzip"}, err: `--log-encoder gzip: gowsgi has no "gzip" encoder`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// parseConfig checks the options too.
			o, err := parseConfig(nil, append([]string{"-w", "m"}, tt.args...), t.TempDir())
			if tt.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.logTo, o.LogTo)
			assert.Equal(t, tt.routing, o.LogRouting)
			assert.Empty(t, o.warnings())
		})
	}
}
