// Tests for reading wrk's report.
package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const wrkReport = `Running 2s test @ http://127.0.0.1:40000/hello
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.13ms    1.20ms  20.00ms   90.00%
    Req/Sec    25.11k     1.00k   27.00k    70.00%
  Latency Distribution
     50%  P50
     75%    1.50ms
     90%    2.00ms
     99%  P99
  50226 requests in 2.00s, 6.00MB read
EXTRA
Requests/sec:  25113.25
Transfer/sec:      3.00MB
`

func TestParseWrk(t *testing.T) {
	tests := []struct {
		name     string
		p50, p99 string
		extra    string
		want     wrkResult
	}{
		{name: "clean", p50: "1.13ms", p99: "5.57ms",
			want: wrkResult{requests: 50226, rps: 25113.25, p50: 1.13, p99: 5.57}},
		{name: "errors and unit changes", p50: "830.00us", p99: "1.20s",
			extra: "  Socket errors: connect 1, read 3, write 0, timeout 2\n  Non-2xx or 3xx responses: 4",
			want:  wrkResult{requests: 50226, rps: 25113.25, p50: 0.83, p99: 1200, errors: 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseWrk(strings.NewReplacer("P50", tt.p50, "P99", tt.p99, "EXTRA", tt.extra).Replace(wrkReport))
			require.NoError(t, err)
			assert.Equal(t, tt.want.requests, got.requests)
			assert.Equal(t, tt.want.errors, got.errors)
			assert.InDelta(t, tt.want.rps, got.rps, 1e-9)
			assert.InDelta(t, tt.want.p50, got.p50, 1e-9)
			assert.InDelta(t, tt.want.p99, got.p99, 1e-9)
		})
	}
}

func TestParseWrkRejectsOtherOutput(t *testing.T) {
	_, err := parseWrk("unable to connect to 127.0.0.1:1 Connection refused\n")
	assert.ErrorContains(t, err, "benchrun: wrk report not understood")
}

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []float64
		want float64
	}{
		{in: nil, want: 0},
		{in: []float64{3, 1, 2}, want: 2},
		{in: []float64{4, 1, 3, 2}, want: 2.5},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, median(tt.in), "median(%v)", tt.in)
	}
}

const procNetTCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:4A3A 00000000:0000 0A 00000000:0000001E 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 0100007F:4A3B 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 100 0 0 10 0
   2: 0100007F:4A3A 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 20 4 30 10 -1
`

func TestParseAcceptQueue(t *testing.T) {
	tests := []struct {
		name string
		port int
		want int
		ok   bool
	}{
		{"30 waiting", 0x4A3A, 30, true},
		{"none waiting", 0x4A3B, 0, true},
		{"no listener", 0x4A3C, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseAcceptQueue(procNetTCP, tt.port)
			if !tt.ok {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}
