// Tests for what the benchmark runs: which cells each server runs, and
// the quick mode's selection.
package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestServerRuns(t *testing.T) {
	all := servers("bin/gowsgi")
	byName := map[string]server{}
	for _, s := range all {
		byName[s.name] = s
	}
	tests := []struct {
		server string
		app    string
		load   string
		want   bool
	}{
		{serverGowsgi, "echo 4 KiB POST", "256 connections", true},
		{serverUWSGIHTTP, appFile10M, loadThirtyTwo, true},
		{serverNginxGowsgi, appHello, loadOne, true},
		{serverNginxUWSGI, appFlask, loadThirtyTwo, true},
		{serverNginxGowsgi, appFile10M, loadThirtyTwo, false},
		{serverNginxUWSGI, appHello, "256 connections", false},
	}
	for _, tt := range tests {
		t.Run(tt.server+" "+tt.app+" "+tt.load, func(t *testing.T) {
			s, ok := byName[tt.server]
			require.True(t, ok, "no server %s", tt.server)
			assert.Equal(t, tt.want, s.runs(app{name: tt.app}, load{name: tt.load}))
		})
	}
}

func TestQuickSelection(t *testing.T) {
	var apps, loads []string
	for _, a := range selectApps(appFile10M, appHello, appFlask) {
		apps = append(apps, a.name)
	}
	for _, l := range selectLoads(loadThirtyTwo, loadOne) {
		loads = append(loads, l.name)
	}
	assert.Equal(t, []string{appHello, appFlask, appFile10M}, apps, "in the report's order")
	assert.Equal(t, []string{loadOne, loadThirtyTwo}, loads, "in the report's order")
}

func TestSummaryNamesExist(t *testing.T) {
	for _, c := range append(append([]cellRef{}, directCells...), nginxCells...) {
		assert.Len(t, selectApps(c.app), 1, "app %q", c.app)
		assert.Len(t, selectLoads(c.load), 1, "load %q", c.load)
	}
	names := map[string]bool{}
	for _, s := range servers("bin/gowsgi") {
		names[s.name] = true
	}
	for _, n := range []string{serverGowsgi, serverGunicorn, serverUWSGI, serverUWSGIHTTP, serverNginxGowsgi, serverNginxUWSGI} {
		assert.True(t, names[n], "server %q", n)
	}
}
