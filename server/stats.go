// The stats server (uWSGI's --stats ADDR): each connection gets one JSON
// document describing the master, its sockets, its workers and the app's
// --metric values (app_metrics.go), and is then closed; with --stats-http
// the same document is served over HTTP. The document has uWSGI's shape
// and key names, so uwsgitop and the Prometheus uWSGI exporter read it
// unchanged.
package server

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// statsWriteTimeout bounds how long a stats client may take to read.
const statsWriteTimeout = 5 * time.Second

// statsServer serves the stats document on its own listener.
type statsServer struct {
	listener *listener
	http     bool
	document func() statsDocument
	log      *slog.Logger
	httpSrv  *http.Server
}

// listenStats binds --stats; nil when addr is empty. It binds with the
// other sockets, so a stats address that is taken stops gowsgi at start.
func listenStats(addr string, overHTTP bool, log *slog.Logger) (*statsServer, error) {
	if addr == "" {
		return nil, nil
	}
	l, err := bindSocket(Socket{Protocol: "stats", Address: addr}, 0)
	if err != nil {
		return nil, fmt.Errorf("--stats: %w", err)
	}
	return &statsServer{listener: l, http: overHTTP, log: log}, nil
}

// serve answers stats clients until close; document builds each answer.
func (s *statsServer) serve(document func() statsDocument) {
	s.document = document
	s.log.Info("stats server listening", "address", s.listener.Addr().String(), "http", s.http)
	if s.http {
		s.httpSrv = &http.Server{Handler: s, ReadHeaderTimeout: statsWriteTimeout}
		go s.httpSrv.Serve(s.listener)
		return
	}
	go s.acceptRaw()
}

// acceptRaw writes the document to each connection and closes it, as
// uWSGI's stats server does.
func (s *statsServer) acceptRaw() {
	for {
		conn, err := s.listener.Accept()
		if err != nil {
			return
		}
		go func() {
			defer conn.Close()
			conn.SetWriteDeadline(time.Now().Add(statsWriteTimeout))
			json.NewEncoder(conn).Encode(s.document())
		}()
	}
}

// ServeHTTP answers any request with the document (--stats-http).
func (s *statsServer) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(s.document())
}

// close stops the stats server and removes its Unix socket file.
func (s *statsServer) close() {
	if s == nil {
		return
	}
	if s.httpSrv != nil {
		s.httpSrv.Close()
	}
	closeListeners([]*listener{s.listener}, true)
}

// statsDocument is uWSGI's stats JSON, with the keys gowsgi can fill.
type statsDocument struct {
	Version     string `json:"version"`
	ListenQueue int64  `json:"listen_queue"`
	PID         int    `json:"pid"`
	UID         int    `json:"uid"`
	GID         int    `json:"gid"`
	CWD         string `json:"cwd"`
	// Metrics are the app's --metric ones (uWSGI also lists its own).
	Metrics map[string]statsMetric `json:"metrics,omitempty"`
	Sockets []statsSocket          `json:"sockets"`
	Workers []statsWorker          `json:"workers"`
	// Spoolers and Mules are there when the server runs any.
	Spoolers []statsSpooler `json:"spoolers,omitempty"`
	Mules    []statsMule    `json:"mules,omitempty"`
}

// statsSpooler is uWSGI's entry for a spooler process, less its task
// counters, which its process keeps to itself.
type statsSpooler struct {
	Dir      string `json:"dir"`
	PID      int    `json:"pid"`
	Respawns int    `json:"respawns"`
}

// statsMule is a mule process.
type statsMule struct {
	ID        int    `json:"id"`
	PID       int    `json:"pid"`
	Program   string `json:"program"`
	Respawns  int    `json:"respawns"`
	LastSpawn int64  `json:"last_spawn"` // Unix seconds
}

type statsSocket struct {
	Name     string `json:"name"`
	Proto    string `json:"proto"`
	Queue    int64  `json:"queue"`
	MaxQueue int    `json:"max_queue"`
	Shared   int    `json:"shared"`
}

type statsWorker struct {
	ID            int    `json:"id"`
	PID           int    `json:"pid"`
	Accepting     int    `json:"accepting"`
	Requests      uint64 `json:"requests"`
	Exceptions    int    `json:"exceptions"`
	HarakiriCount int    `json:"harakiri_count"`
	Signals       int    `json:"signals"`
	Status        string `json:"status"`
	RSS           int64  `json:"rss"`
	VSZ           int64  `json:"vsz"`
	RunningTime   int64  `json:"running_time"` // microseconds spent serving
	LastSpawn     int64  `json:"last_spawn"`   // Unix seconds
	RespawnCount  int    `json:"respawn_count"`
	TX            int64  `json:"tx"`
	AvgRT         int64  `json:"avg_rt"` // microseconds per request
}

// statsDocument describes the master now.
func (m *master) statsDocument() statsDocument {
	cwd, _ := os.Getwd()
	queued := m.dispatch.notBegun()
	doc := statsDocument{
		Version:     Version,
		ListenQueue: queued,
		PID:         os.Getpid(),
		UID:         os.Getuid(),
		GID:         os.Getgid(),
		CWD:         cwd,
		Sockets:     []statsSocket{},
		Workers:     []statsWorker{},
	}
	if m.appMetrics != nil {
		doc.Metrics = statsMetrics(m.appMetrics())
	}
	for _, l := range m.listeners {
		name := strings.TrimPrefix(socketURL(l), string(l.socket.Protocol)+"://")
		doc.Sockets = append(doc.Sockets, statsSocket{Name: name, Proto: string(l.socket.Protocol),
			Queue: queued, MaxQueue: m.cfg.Listen})
	}
	for _, w := range m.pool.snapshot().Workers {
		doc.Workers = append(doc.Workers, m.statsWorker(w))
	}
	for _, p := range m.aux.snapshot() {
		if p.Kind == auxSpooler {
			doc.Spoolers = append(doc.Spoolers, statsSpooler{Dir: p.Label, PID: p.PID, Respawns: p.Respawns})
			continue
		}
		doc.Mules = append(doc.Mules, statsMule{ID: p.Num, PID: p.PID, Program: p.Label, Respawns: p.Respawns, LastSpawn: p.Started.Unix()})
	}
	return doc
}

// statsWorker describes one worker process.
func (m *master) statsWorker(w workerSnapshot) statsWorker {
	status, accepting := "idle", 1
	switch w.Status {
	case workerBusy:
		status = "busy"
	case workerRetiring, workerStarting:
		accepting = 0
	}
	rss, vsz := processMemory(w.PID)
	t := m.dispatch.totals.get(w.ID)
	out := statsWorker{
		ID: w.ID, PID: w.PID, Accepting: accepting, Requests: w.Requests,
		HarakiriCount: w.Harakiris, Status: status, RSS: rss, VSZ: vsz,
		RunningTime: t.micros, LastSpawn: w.Started.Unix(),
		// uWSGI counts the first spawn too.
		RespawnCount: w.Respawns + 1, TX: t.tx,
	}
	if t.requests > 0 {
		out.AvgRT = t.micros / t.requests
	}
	return out
}

// processMemory reads a process's resident and virtual size in bytes from
// /proc/PID/statm (proc(5)); zeros when it cannot.
func processMemory(pid int) (rss, vsz int64) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/statm")
	if err != nil {
		return 0, 0
	}
	fields := strings.Fields(string(b))
	if len(fields) < 2 {
		return 0, 0
	}
	pages, _ := strconv.ParseInt(fields[0], 10, 64)
	resident, _ := strconv.ParseInt(fields[1], 10, 64)
	page := int64(os.Getpagesize())
	return resident * page, pages * page
}

// workerTotals counts, per worker number, what the master relayed: the
// bytes sent and the time requests took, for tx, running_time and avg_rt.
// Like uWSGI's, they survive a worker's respawn. A nil *workerTotals counts
// nothing.
type workerTotals struct {
	mu   sync.Mutex
	byID map[int]totals
}

type totals struct{ requests, tx, micros int64 }

func newWorkerTotals() *workerTotals { return &workerTotals{byID: make(map[int]totals)} }

// add counts one request served by worker.
func (wt *workerTotals) add(worker int, tx int64, took time.Duration) {
	if wt == nil || worker == 0 {
		return
	}
	wt.mu.Lock()
	t := wt.byID[worker]
	t.requests++
	t.tx += tx
	t.micros += took.Microseconds()
	wt.byID[worker] = t
	wt.mu.Unlock()
}

// get returns worker's totals.
func (wt *workerTotals) get(worker int) totals {
	if wt == nil {
		return totals{}
	}
	wt.mu.Lock()
	defer wt.mu.Unlock()
	return wt.byID[worker]
}
