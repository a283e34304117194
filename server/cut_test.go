package server

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDispatchCutAtTheGracefulTimeout: once the dispatcher is cut, a
// request whose worker is killed gets 503 when nothing of its response was
// relayed, even one its worker never began, and is broken off after its
// head otherwise; each is logged with its path.
func TestDispatchCutAtTheGracefulTimeout(t *testing.T) {
	tests := []struct {
		name       string
		begin      bool // the worker marks the request begun
		sendHead   bool
		wantErr    error
		want       []string
		wantAnswer string
	}{
		{name: "running, nothing sent", begin: true, wantErr: nil,
			want: []string{"head 503 Service Unavailable", "body 503 Service Unavailable\n"}, wantAnswer: "answer=503"},
		{name: "never begun", begin: false, wantErr: nil,
			want: []string{"head 503 Service Unavailable", "body 503 Service Unavailable\n"}, wantAnswer: "answer=503"},
		{name: "head sent", begin: true, sendHead: true, wantErr: errCut,
			want: []string{"head 200 OK"}, wantAnswer: `answer="connection closed"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rig := newDispatchRig(t, 1)
			var logs bytes.Buffer
			rig.d.log = slog.New(slog.NewTextHandler(&logs, nil))
			rec := &recorder{}
			done := rig.serve(context.Background(), rec, "/slow", "")
			w := rig.workers[0]
			var id uint32
			if tt.begin {
				id, _, _ = w.nextRequest()
			} else {
				w.peekRequest()
			}
			if tt.sendHead {
				w.write(head(id, "200 OK"))
				eventually(t, func() bool { return len(rec.log()) > 0 }, "head relayed")
			}
			rig.d.cut()
			require.NoError(t, w.conn.Close()) // the worker is killed
			err := wait(t, done)
			if tt.wantErr == nil {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, tt.wantErr)
			}
			assert.Equal(t, tt.want, slices.DeleteFunc(rec.log(), func(call string) bool { return call == "flush" }))
			assert.Contains(t, logs.String(), `msg="graceful timeout passed, request cut" method=POST path=/slow `+tt.wantAnswer)
		})
	}
}

// TestDispatchCutAnswersQueuedRequests: a request still waiting for a
// worker when the dispatcher is cut gets 503, and the cut is logged.
func TestDispatchCutAnswersQueuedRequests(t *testing.T) {
	rig := newDispatchRig(t, 1) // its worker never takes a request
	var logs bytes.Buffer
	rig.d.log = slog.New(slog.NewTextHandler(&logs, nil))
	rec := &recorder{}
	done := rig.serve(context.Background(), rec, "/queued", "")
	eventually(t, func() bool { return rig.d.notBegun() == 1 }, "request queued")
	rig.d.cut()
	require.NoError(t, wait(t, done))
	assert.Equal(t, []string{"head 503 Service Unavailable", "body 503 Service Unavailable\n"}, rec.log())
	assert.Contains(t, logs.String(), `msg="graceful timeout passed, request cut" method=POST path=/queued answer=503`)
}
