package server

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// listenDatagrams listens on a Unix datagram socket in the test's folder.
func listenDatagrams(t *testing.T) (string, net.PacketConn) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "log.sock")
	conn, err := net.ListenPacket("unixgram", path)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return path, conn
}

// receive returns the next datagram conn gets within 5 seconds.
func receive(t *testing.T, conn net.PacketConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	n, _, err := conn.ReadFrom(buf)
	require.NoError(t, err)
	return string(buf[:n])
}

func TestSyslogLogger(t *testing.T) {
	path, conn := listenDatagrams(t)
	saved := syslogPath
	syslogPath = path
	defer func() { syslogPath = saved }()
	for _, tc := range []struct {
		value string
		want  *regexp.Regexp
	}{
		// syslog(3) after openlog(IDENT, 0, FACILITY), at LOG_INFO: daemon is 3, so 3*8+6.
		{"syslog", regexp.MustCompile(`^<30>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d uwsgi: a line$`)},
		{"syslog:myapp,local3", regexp.MustCompile(`^<158>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d myapp: a line$`)},
		{"syslog:myapp,nosuch", regexp.MustCompile(`^<30>.* myapp: a line$`)},
	} {
		sink, err := newLogSink(LogRouting{Loggers: []string{tc.value}}, "")
		require.NoError(t, err)
		sink.writer(false).Write([]byte("a line\n"))
		assert.Regexp(t, tc.want, receive(t, conn), tc.value)
		sink.close()
	}
}

func TestRsyslogLogger(t *testing.T) {
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer udp.Close()
	path, unixConn := listenDatagrams(t)
	host, _ := os.Hostname()
	for _, tc := range []struct {
		value string
		conn  net.PacketConn
		want  *regexp.Regexp
	}{
		{"rsyslog:" + udp.LocalAddr().String(), udp,
			regexp.MustCompile(`^<29>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d ` + regexp.QuoteMeta(host) + ` uwsgi: a line$`)},
		{"rsyslog:" + udp.LocalAddr().String() + ",web,134", udp, regexp.MustCompile(`^<134>.{15} web: a line$`)},
		{"rsyslog:" + path + ",web", unixConn, regexp.MustCompile(`^<29>.{15} web: a line$`)},
		{"socket:" + path + ",pre ", unixConn, regexp.MustCompile(`^pre a line\n$`)},
	} {
		sink, err := newLogSink(LogRouting{Loggers: []string{tc.value}}, "")
		require.NoError(t, err)
		sink.writer(false).Write([]byte("a line\n"))
		assert.Regexp(t, tc.want, receive(t, tc.conn), tc.value)
		sink.close()
	}
}

func TestLogSinkRoutes(t *testing.T) {
	dir := t.TempDir()
	file := func(name string) string { return filepath.Join(dir, name) }
	read := func(name string) string { b, _ := os.ReadFile(file(name)); return string(b) }
	sink, err := newLogSink(LogRouting{
		Loggers:     []string{"file:" + file("all"), "errors file:" + file("errors")},
		ReqLoggers:  []string{"file:" + file("requests")},
		Encoders:    []string{"prefix G "},
		ReqEncoders: []string{"prefix R "},
		Routes:      []string{"errors ^Traceback|Error"},
	}, "")
	require.NoError(t, err)
	general, requests := sink.writer(false), sink.writer(true)
	general.Write([]byte("started\nTraceback (most recent"))
	general.Write([]byte(" call last):\n"))
	requests.Write([]byte("[pid: 1|app: 0|req: 1/1] GET /\n"))
	sink.close()
	assert.Equal(t, "G started\n", read("all"))
	assert.Equal(t, "G Traceback (most recent call last):\n", read("errors"), "a routed line goes to its logger alone")
	assert.Equal(t, "R [pid: 1|app: 0|req: 1/1] GET /\n", read("requests"))
}

func TestLogSinkRefuses(t *testing.T) {
	for _, tc := range []struct {
		routing LogRouting
		want    string
	}{
		{LogRouting{Loggers: []string{"redislog:127.0.0.1"}}, `--logger redislog:127.0.0.1: gowsgi has no "redislog" logger`},
		{LogRouting{ReqLoggers: []string{"x zeromq:tcp://a"}}, `--req-logger x zeromq:tcp://a: gowsgi has no "zeromq" logger`},
		{LogRouting{Routes: []string{"nobody ^x"}}, `--log-route nobody ^x: no logger is named "nobody"`},
		{LogRouting{Encoders: []string{"gzip"}}, `--log-encoder gzip: gowsgi has no "gzip" encoder`},
	} {
		err := CheckLogRouting(tc.routing)
		require.Error(t, err)
		assert.Contains(t, err.Error(), tc.want)
	}
	logTo := filepath.Join(t.TempDir(), "logto")
	assert.NoError(t, CheckLogRouting(LogRouting{Loggers: []string{"file:" + logTo}}))
	assert.NoFileExists(t, logTo, "a check opens nothing")
	sink, err := newLogSink(LogRouting{Loggers: []string{"file:" + logTo}}, logTo)
	assert.NoError(t, err)
	assert.Nil(t, sink, "the --logto file alone needs no sink")
}
