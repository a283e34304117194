// The CGI start-up row: wall time of one request through gowsgi's CGI mode
// against Python's own wsgiref CGIHandler, on examples/hello_world_app.py.
package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// cgiResult is the median start-up time of each, or why the row is skipped.
type cgiResult struct {
	skipped           string
	gowsgi, wsgiref   time.Duration
	gowsgiCmd, refCmd []string
	runs              int
}

// cgiEnv is a GET of / as a web server would set it up (RFC 3875 §4.1).
var cgiEnv = []string{"GATEWAY_INTERFACE=CGI/1.1", "REQUEST_METHOD=GET", "PATH_INFO=/", "SCRIPT_NAME=",
	"QUERY_STRING=", "SERVER_NAME=127.0.0.1", "SERVER_PORT=80", "SERVER_PROTOCOL=HTTP/1.1"}

const wsgirefScript = "import sys; sys.path.insert(0, sys.argv[1]); " +
	"from wsgiref.handlers import CGIHandler; from hello_world_app import application; " +
	"CGIHandler().run(application)"

// cgiStartup times runs requests through each; it skips the row when
// gowsgi does not answer a CGI request.
func cgiStartup(gowsgi, python, examplesDir string, runs int) cgiResult {
	res := cgiResult{
		runs:      runs,
		gowsgiCmd: []string{gowsgi, filepath.Join(examplesDir, "hello_world_app.py")},
		refCmd:    []string{python, "-c", wsgirefScript, examplesDir},
	}
	if _, err := cgiOnce(res.gowsgiCmd); err != nil {
		res.skipped = fmt.Sprintf("gowsgi did not answer a CGI request: %v", err)
		return res
	}
	var err error
	if res.gowsgi, err = cgiMedian(res.gowsgiCmd, runs); err != nil {
		res.skipped = err.Error()
		return res
	}
	if res.wsgiref, err = cgiMedian(res.refCmd, runs); err != nil {
		res.skipped = err.Error()
	}
	return res
}

func cgiMedian(argv []string, runs int) (time.Duration, error) {
	times := make([]float64, 0, runs)
	for i := 0; i < runs; i++ {
		d, err := cgiOnce(argv)
		if err != nil {
			return 0, err
		}
		times = append(times, float64(d))
	}
	return time.Duration(median(times)), nil
}

// cgiOnce runs one CGI request with empty stdin and checks the body came out.
func cgiOnce(argv []string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), cgiEnv...)
	begin := time.Now()
	out, err := cmd.CombinedOutput()
	elapsed := time.Since(begin)
	if err != nil {
		return 0, fmt.Errorf("benchrun: cgi %s: %w: %.200s", argv[0], err, out)
	}
	if !bytes.Contains(out, []byte("Hello World!")) {
		return 0, fmt.Errorf("benchrun: cgi %s: no body in %.200q", argv[0], out)
	}
	return elapsed, nil
}
