// Tests of worker recycling helpers and of the pool snapshot the stats read.
package server

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSpareLead(t *testing.T) {
	tests := []struct{ maxRequests, want int }{
		{1, 1}, {5, 1}, {8, 1}, {16, 2}, {1000, 125},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, spareLead(tt.maxRequests), "max-requests %d", tt.maxRequests)
	}
}

func TestResidentBytes(t *testing.T) {
	rss, err := residentBytes(os.Getpid())
	require.NoError(t, err)
	assert.Positive(t, rss)
	_, err = residentBytes(-1)
	assert.ErrorContains(t, err, "server: reading the worker's memory")
}

func TestSnapshotCountsRequestsAndRespawns(t *testing.T) {
	rig := startPool(t, 2, 1, "pool_app")
	require.NoError(t, rig.ready(t))
	for range 3 {
		rig.pid(t)
	}
	snap := rig.p.snapshot()
	assert.Equal(t, 2, snap.Processes)
	require.Len(t, snap.Workers, 2)
	var served uint64
	for i, w := range snap.Workers {
		assert.Equal(t, i+1, w.ID)
		assert.Equal(t, workerIdle, w.Status)
		assert.Positive(t, w.PID)
		assert.Zero(t, w.Respawns)
		assert.WithinDuration(t, time.Now(), w.Started, poolWait)
		served += w.Requests
	}
	assert.Equal(t, uint64(3), served)

	crashed := rig.pid(t)
	status, _ := rig.get(t, "/crash")
	require.Equal(t, "502 Bad Gateway", status)
	var respawned workerSnapshot
	deadline := time.Now().Add(poolWait)
	for respawned.Respawns == 0 && time.Now().Before(deadline) {
		for _, w := range rig.p.snapshot().Workers {
			if w.Respawns > 0 && w.Status == workerIdle {
				respawned = w
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	assert.Equal(t, 1, respawned.Respawns, rig.logs.String())
	assert.NotEqual(t, crashed, strconv.Itoa(respawned.PID))
	assert.Equal(t, 1, rig.p.snapshot().Respawns)
}
