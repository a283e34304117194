// A benchmark of the master's side of the hop: a request through the queue,
// a slot, a socketpair and a worker that answers at once, and its response
// relayed back. Only the worker is fake, so the figure is what the master
// spends per request plus the two socket writes.
package server

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/wsgi"
)

// discardWriter is a wsgi.ResponseWriter that drops everything, as cheaply
// as a gateway can.
type discardWriter struct{}

func (discardWriter) WriteHead(string, []byte) error        { return nil }
func (discardWriter) WriteBody([]byte) error                { return nil }
func (discardWriter) Flush() error                          { return nil }
func (discardWriter) SendFile(f *os.File, _, _ int64) error { return f.Close() }

// answerHello plays a worker: each request it takes from queue gets a
// hello-world head, body and end in one write on conn, until either is
// closed.
func answerHello(conn net.Conn, queue *net.UnixConn, t *requestTable, pid int, b wsgi.Scoreboard, index int) {
	var headers wsgi.Vars
	headers.Add("Content-Type", "text/plain")
	headers.Add("Content-Length", "13")
	msg := make([]byte, wsgi.FrameHeaderLen+wsgi.QueueFrameCap)
	var out []byte
	for {
		n, err := queue.Read(msg)
		if err != nil {
			return
		}
		f, err := wsgi.NewFrameReader(bytes.NewReader(msg[:n])).Next()
		if err != nil || !claimRequest(t, f.ID, pid) {
			continue
		}
		b.Begin(index, f.ID, time.Now().UnixNano())
		out = wsgi.AppendHead(out[:0], f.ID, "200 OK", headers.Block())
		out = wsgi.AppendFrameHeader(out, wsgi.FrameBody, 0, f.ID, 13)
		out = append(out, "Hello World!\n"...)
		out = wsgi.AppendFrameHeader(out, wsgi.FrameEnd, 0, f.ID, 0)
		b.Finish(index)
		if _, err := conn.Write(out); err != nil {
			return
		}
	}
}

// BenchmarkDispatchRoundTrip serves hello-world requests from parallel
// clients through two slots.
func BenchmarkDispatchRoundTrip(b *testing.B) {
	const slots = 2
	d, err := newDispatcher(slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(b, err)
	board, boardFile, err := newBoard(slots)
	require.NoError(b, err)
	boardFile.Close()
	q, err := newGenQueue(1)
	require.NoError(b, err)
	retire := make(chan struct{})
	var ours []*slot
	var theirs []net.Conn
	for i := range slots {
		conn, file, err := slotSocketpair()
		require.NoError(b, err)
		wc, err := net.FileConn(file)
		require.NoError(b, err)
		file.Close()
		qc, err := net.FileConn(q.theirs)
		require.NoError(b, err)
		s := newSlot(1, i, 1000+i, conn, board, q)
		d.adopt(s)
		go s.read(func(error) {})
		d.register(s)
		go s.serve(d, retire)
		go answerHello(wc, qc.(*net.UnixConn), d.requests, 1000+i, board.sb, i)
		ours, theirs = append(ours, s), append(theirs, wc, qc)
	}
	b.Cleanup(func() {
		close(retire)
		for _, c := range theirs {
			c.Close()
		}
		for _, s := range ours {
			s.conn.Close()
			<-s.dead
		}
		q.close()
		board.release()
	})
	req := &wsgi.Request{}
	req.Vars.Add("REQUEST_METHOD", "GET")
	req.Vars.Add("PATH_INFO", "/")
	req.Vars.Add("HTTP_HOST", "127.0.0.1:8000")
	b.ReportAllocs()
	b.SetParallelism(16) // 16 clients per GOMAXPROCS, as under wrk -c32 on two cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := d.ServeWSGI(context.Background(), discardWriter{}, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
