package gateways

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestIdleTimeoutOutlastsLoadBalancers: by default an idle keep-alive
// connection outlives the 60 s nginx, HAProxy and cloud balancers keep one
// idle, so the balancer closes it first and never sends a request on a
// connection gowsgi is closing; --http-keepalive and --http-timeout set it.
func TestIdleTimeoutOutlastsLoadBalancers(t *testing.T) {
	tests := []struct {
		opts HTTPOptions
		want time.Duration
	}{
		{HTTPOptions{}, 90 * time.Second},
		{HTTPOptions{Timeout: 30 * time.Second}, 30 * time.Second},
		{HTTPOptions{Timeout: 30 * time.Second, IdleTimeout: 75 * time.Second}, 75 * time.Second},
	}
	for _, tt := range tests {
		s := newHTTP1Server(nil, tt.opts, nil)
		assert.Equal(t, tt.want, s.idleTimeout, "%+v", tt.opts)
	}
	assert.Greater(t, newHTTP1Server(nil, HTTPOptions{}, nil).idleTimeout, 60*time.Second)
}
