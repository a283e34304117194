package server

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestReadiness(t *testing.T) {
	serving := func(status string, slots, busy int) workerSnapshot {
		return workerSnapshot{Status: status, Slots: slots, BusySlots: busy}
	}
	tests := []struct {
		name    string
		workers []workerSnapshot
		waiting int64
		ready   bool
		reason  string
	}{
		{"none yet", nil, 0, false, "not ready: no worker serves the app yet"},
		{"only starting", []workerSnapshot{serving(workerStarting, 2, 0)}, 0, false, "not ready: no worker serves the app yet"},
		{"a slot free", []workerSnapshot{serving(workerBusy, 2, 1), serving(workerIdle, 2, 0)}, 0, true, "ready: 3 of 4 slots free"},
		{"retiring slots do not count", []workerSnapshot{serving(workerRetiring, 2, 2), serving(workerBusy, 1, 1)}, 0, true, "ready: all 1 slots busy, 0 requests waiting"},
		{"fewer waiting than slots", []workerSnapshot{serving(workerBusy, 2, 2)}, 1, true, "ready: all 2 slots busy, 1 requests waiting"},
		{"as many waiting as slots", []workerSnapshot{serving(workerBusy, 2, 2)}, 2, false, "not ready: all 2 slots busy and 2 requests waiting"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ready, reason := readiness(poolSnapshot{Workers: tt.workers}, tt.waiting)
			assert.Equal(t, tt.ready, ready)
			assert.Equal(t, tt.reason, reason)
		})
	}
}
