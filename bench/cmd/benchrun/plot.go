// The chart: req/s per server per app at 32 keep-alive connections, grouped
// bars drawn by gnuplot; the servers behind nginx, which run two of the
// apps, are left to the report's tables.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// plot writes the data file and gnuplot script into the temporary
// directory and runs gnuplot to draw png.
func (b *bench) plot(png string) error {
	var plotted []server
	for _, s := range b.servers {
		if s.apps == nil {
			plotted = append(plotted, s)
		}
	}
	var data strings.Builder
	data.WriteString("app")
	for _, s := range plotted {
		data.WriteString("\t" + s.name)
	}
	data.WriteString("\n")
	for _, a := range b.apps {
		fmt.Fprintf(&data, "%q", a.name)
		for _, s := range plotted {
			fmt.Fprintf(&data, "\t%.0f", b.cell(s.name, a.name, loadThirtyTwo).rps)
		}
		data.WriteString("\n")
	}
	dataPath := filepath.Join(b.tmp, "rps32.dat")
	if err := os.WriteFile(dataPath, []byte(data.String()), 0o644); err != nil {
		return fmt.Errorf("benchrun: %w", err)
	}
	cols := make([]string, len(plotted))
	for i := range plotted {
		cols[i] = fmt.Sprintf("%q using %d:xtic(1) title columnheader", dataPath, i+2)
	}
	script := fmt.Sprintf(`set terminal pngcairo size 1400,700 font "Sans,11"
set output %q
set termoption noenhanced
set title "req/s at 32 keep-alive connections (wrk -t1, median of %d rounds; log scale)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.9 border -1
set boxwidth 0.9
set logscale y
set yrange [10:*]
set grid ytics
set ylabel "requests per second"
set key top right
set xtics nomirror
plot %s
`, png, b.opts.rounds, strings.Join(cols, ", \\\n     "))
	scriptPath := filepath.Join(b.tmp, "chart.gp")
	if err := os.WriteFile(scriptPath, []byte(script), 0o644); err != nil {
		return fmt.Errorf("benchrun: %w", err)
	}
	if out, err := exec.Command("gnuplot", scriptPath).CombinedOutput(); err != nil {
		return fmt.Errorf("benchrun: gnuplot: %w: %s", err, out)
	}
	return nil
}
