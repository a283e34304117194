// The report's summary: the req/s ratios the performance goals are stated
// in (gowsgi against uWSGI --http11-socket, uWSGI's --http router and
// Gunicorn sync, and against uWSGI behind nginx's uwsgi_pass), and CPU per
// request split into master, workers and nginx.
package main

import (
	"fmt"
	"io"
	"strings"
)

// cellRef names one cell of the summary.
type cellRef struct{ app, load string }

func (c cellRef) label() string { return c.app + " · " + c.load }

// directCells and nginxCells are the summary's rows; a row whose cell
// gowsgi did not run (quick mode) is left out.
var (
	directCells = []cellRef{
		{appHello, loadThirtyTwo}, {appHello, loadOne}, {appFlask, loadThirtyTwo},
		{appOneMiB, loadThirtyTwo}, {appFile10M, loadThirtyTwo},
	}
	nginxCells = []cellRef{
		{appHello, loadThirtyTwo}, {appHello, loadOne}, {appFlask, loadThirtyTwo}, {appFlask, loadOne},
	}
)

// writeSummary writes the three summary tables.
func (b *bench) writeSummary(w io.Writer) {
	fmt.Fprintf(w, "## Summary\n\nreq/s, the median of the rounds; every server runs 2 workers (waitress aside, not shown here).\n\n")
	fmt.Fprintf(w, "### HTTP straight to the server\n\n"+
		"| cell | gowsgi | uWSGI --http11-socket | uWSGI --http | gunicorn-sync | gowsgi / uWSGI --http11-socket | gowsgi / uWSGI --http | gowsgi / gunicorn-sync | p99 ms gowsgi / uWSGI --http11-socket / uWSGI --http |\n"+
		"|---|---|---|---|---|---|---|---|---|\n")
	writeRows(w, directCells, b.directRow)
	if u := b.cell(serverUWSGI, appHello, loadThirtyTwo); u.waiting > 0 {
		fmt.Fprintf(w, "At 32 connections uWSGI --http11-socket left %.0f of wrk's 32 connections in its accept queue (median over the rounds): "+
			"each --http11-socket worker serves one kept-alive connection until the client closes it, so its req/s and "+
			"latencies here are those of the connections it served, while the others waited unserved for the whole run.\n\n", u.waiting)
	}
	fmt.Fprintf(w, "### Behind nginx uwsgi_pass (Unix socket)\n\n"+
		"| cell | gowsgi | uWSGI | gowsgi / uWSGI | p99 ms gowsgi / uWSGI | CPU µs / req gowsgi master · workers · nginx | CPU µs / req uWSGI master · workers · nginx |\n"+
		"|---|---|---|---|---|---|---|\n")
	writeRows(w, nginxCells, b.nginxRow)
	fmt.Fprintf(w, "### CPU µs per request, master · workers (HTTP straight to the server)\n\n"+
		"| cell | gowsgi | uWSGI --http11-socket | uWSGI --http (master and router · workers) | gunicorn-sync |\n|---|---|---|---|---|\n")
	writeRows(w, directCells, b.directCPURow)
}

// writeRows writes the row of each cell that has one, then a blank line.
func writeRows(w io.Writer, cells []cellRef, row func(cellRef) string) {
	for _, c := range cells {
		if r := row(c); r != "" {
			fmt.Fprintln(w, r)
		}
	}
	fmt.Fprintln(w)
}

// directRow is c's req/s for each server straight over HTTP and gowsgi's
// ratio to each, or "" when gowsgi did not run c.
func (b *bench) directRow(c cellRef) string {
	g := b.cell(serverGowsgi, c.app, c.load)
	if g.rounds == 0 {
		return ""
	}
	u := b.cell(serverUWSGI, c.app, c.load)
	h := b.cell(serverUWSGIHTTP, c.app, c.load)
	s := b.cell(serverGunicorn, c.app, c.load)
	return tableRow(c.label(), rps(g), rps(u), rps(h), rps(s),
		ratio(g.rps, u.rps), ratio(g.rps, h.rps), ratio(g.rps, s.rps),
		p99s(g, u, h))
}

// nginxRow is c's req/s for gowsgi and uWSGI behind nginx, the ratio, and
// the CPU split of each, or "" when gowsgi did not run c behind nginx.
func (b *bench) nginxRow(c cellRef) string {
	g := b.cell(serverNginxGowsgi, c.app, c.load)
	if g.rounds == 0 {
		return ""
	}
	u := b.cell(serverNginxUWSGI, c.app, c.load)
	return tableRow(c.label(), rps(g), rps(u), ratio(g.rps, u.rps), p99s(g, u),
		cpuText(g, roleMaster, roleWorkers, roleNginx), cpuText(u, roleMaster, roleWorkers, roleNginx))
}

// directCPURow is c's CPU split for each server straight over HTTP, or ""
// when gowsgi did not run c.
func (b *bench) directCPURow(c cellRef) string {
	g := b.cell(serverGowsgi, c.app, c.load)
	if g.rounds == 0 {
		return ""
	}
	cols := []string{c.label()}
	for _, name := range []string{serverGowsgi, serverUWSGI, serverUWSGIHTTP, serverGunicorn} {
		cols = append(cols, cpuText(b.cell(name, c.app, c.load), roleMaster, roleWorkers))
	}
	return tableRow(cols...)
}

// tableRow is one Markdown table row.
func tableRow(cols ...string) string { return "| " + strings.Join(cols, " | ") + " |" }

// rps is a cell's median req/s, or — when the server did not run it.
func rps(c cell) string {
	if c.rounds == 0 {
		return "—"
	}
	return fmt.Sprintf("%.0f", c.rps)
}

// p99s is the cells' p99 latencies in ms, — for one not run.
func p99s(cells ...cell) string {
	out := make([]string, len(cells))
	for i, c := range cells {
		out[i] = "—"
		if c.rounds > 0 {
			out[i] = fmt.Sprintf("%.2f", c.p99)
		}
	}
	return strings.Join(out, " / ")
}

// cpuText is the cell's CPU µs per request for the roles, " · " between
// them; — for a role no process plays, or a cell not run.
func cpuText(c cell, roles ...role) string {
	out := make([]string, len(roles))
	for i, r := range roles {
		out[i] = "—"
		if c.rounds > 0 && c.processes[r] > 0 {
			out[i] = fmt.Sprintf("%.1f", c.cpu[r])
		}
	}
	return strings.Join(out, " · ")
}
