// The options of the processes the zygote forks beside the workers:
// uWSGI's spooler (--spooler and friends) and mules (--mule, --mules,
// --farm), and what they become in the pyembed.AppSpec.
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/gowsgi/gowsgi/pyembed"
)

// The bounds gw_uwsgi_spooler.c and gw_uwsgi_mule.c keep room for.
const (
	maxSpoolerDirs      = 64
	maxSpoolerProcesses = 512 // over all folders
	maxMules            = 256
	maxFarms            = 64
)

// auxOptions are the spooler's and the mules' rows of the option table.
func auxOptions(o *options) []option {
	return []option{
		{names: []string{"--spooler", "-Q"}, kind: kindList, arg: "DIR", target: &o.Spoolers,
			help: "run a spooler on the folder DIR (made if missing): uwsgi.spool() and @spool queue jobs there as files, and a spooler process runs each; repeatable"},
		{names: []string{"--spooler-processes"}, kind: kindInt, arg: "N", min: 1, max: maxSpoolerProcesses, target: &o.SpoolerProcesses,
			help: "run N spooler processes on each --spooler folder; default 1"},
		{names: []string{"--spooler-frequency", "--spooler-freq"}, kind: kindInt, arg: "SECONDS", min: 1, max: maxSeconds, target: &o.SpoolerFrequency,
			help: "scan the spooler folders every SECONDS (a job spooled meanwhile wakes its spooler at once); default 30"},
		{names: []string{"--spooler-ordered"}, kind: kindBool, target: &o.SpoolerOrdered,
			help: "run the spooler's jobs in version order of their names, the numbered priority subfolders too"},
		{names: []string{"--spooler-chdir"}, kind: kindString, arg: "DIR", target: &o.SpoolerChdir,
			help: "run each spooler job in DIR instead of the spooler's folder"},
		{names: []string{"--spooler-quiet"}, kind: kindBool, target: &o.SpoolerQuiet,
			help: "do not log each spooler job written, run and done"},
		{names: []string{"--mule"}, kind: kindBool, arg: "[=FILE.py]", check: o.addMule,
			help: "add a mule: bare, a process that hands each message to uwsgi.mule_msg_hook (@mulefunc); =FILE.py, one that runs FILE.py; repeatable"},
		{names: []string{"--mules"}, kind: kindInt, arg: "N", min: 0, max: maxMules, check: o.addMules,
			help: "add N mules waiting for messages"},
		{names: []string{"--farm"}, kind: kindList, arg: "NAME:ID[,ID...]", target: &o.Farms,
			help: "group mules (by number, from 1) into a farm that shares a message queue: uwsgi.mule_msg(msg, NAME); repeatable"},
	}
}

// addMule reads --mule: a mule running a Python file (FILE.py), else one
// waiting for messages, as uWSGI makes of any other value without a colon
// (an ini's "mule = true"). uWSGI also takes MODULE:CALLABLE, which gowsgi
// does not run.
func (o *options) addMule(name, value string) error {
	switch {
	case strings.HasSuffix(value, ".py"):
	case strings.Contains(value, ":"):
		return fmt.Errorf("%s: %q: gowsgi runs a Python file as a mule's program (--mule=FILE.py), not MODULE:CALLABLE; call it from such a file, or use a bare --mule with @mulefunc", name, value)
	default:
		value = ""
	}
	o.Mules = append(o.Mules, value)
	return nil
}

// addMules reads --mules N: N more mules waiting for messages.
func (o *options) addMules(name, value string) error {
	n, err := (&option{min: 0, max: maxMules}).number(name, value)
	if err != nil {
		return err
	}
	o.Mules = append(o.Mules, make([]string, n)...)
	return nil
}

// checkAux validates the spooler's and mules' options and makes the
// spooler folders absolute (the master creates them: server.Run).
func (o *options) checkAux() error {
	if len(o.Mules) > maxMules {
		return fmt.Errorf("--mule: %d mules; gowsgi runs at most %d", len(o.Mules), maxMules)
	}
	for i, program := range o.Mules {
		if program == "" {
			continue
		}
		if _, err := os.Stat(program); err != nil {
			return fmt.Errorf("--mule=%s: %w", program, err)
		}
		abs, err := filepath.Abs(program)
		if err != nil {
			return fmt.Errorf("--mule=%s: %w", program, err)
		}
		o.Mules[i] = abs
	}
	if _, err := o.farms(); err != nil {
		return err
	}
	o.warnIdleSpoolerOptions()
	if len(o.Spoolers) > maxSpoolerDirs || len(o.Spoolers)*max(o.SpoolerProcesses, 1) > maxSpoolerProcesses {
		return fmt.Errorf("--spooler: gowsgi runs at most %d folders and %d spooler processes", maxSpoolerDirs, maxSpoolerProcesses)
	}
	for i, dir := range o.Spoolers {
		if dir == "" {
			return errors.New("--spooler needs a folder")
		}
		abs, err := filepath.Abs(dir)
		if err != nil {
			return fmt.Errorf("--spooler %s: %w", dir, err)
		}
		o.Spoolers[i] = abs
	}
	return nil
}

// warnIdleSpoolerOptions warns about spooler options given without a
// spooler to apply to, which uWSGI takes silently.
func (o *options) warnIdleSpoolerOptions() {
	if len(o.Spoolers) > 0 {
		return
	}
	given := []struct {
		name string
		set  bool
	}{
		{"spooler-processes", o.SpoolerProcesses != 0}, {"spooler-frequency", o.SpoolerFrequency != 0},
		{"spooler-ordered", o.SpoolerOrdered}, {"spooler-chdir", o.SpoolerChdir != ""}, {"spooler-quiet", o.SpoolerQuiet},
	}
	for _, g := range given {
		if g.set {
			o.warn("idle-spooler", g.name, idleSpoolerWarning)
		}
	}
}

// idleSpoolerWarning is said of the spooler options given without --spooler.
const idleSpoolerWarning = "no spooler runs without --spooler DIR, so these options do nothing"

// farms reads the --farm values: "NAME:ID[,ID...]", each ID a mule's.
func (o *options) farms() ([]pyembed.Farm, error) {
	if len(o.Farms) > maxFarms {
		return nil, fmt.Errorf("--farm: gowsgi runs at most %d farms", maxFarms)
	}
	var farms []pyembed.Farm
	for _, spec := range o.Farms {
		name, ids, ok := strings.Cut(spec, ":")
		if !ok || name == "" || ids == "" || strings.ContainsAny(name, "\n") {
			return nil, fmt.Errorf("--farm: %q is not NAME:MULE[,MULE...]", spec)
		}
		farm := pyembed.Farm{Name: name}
		for _, id := range strings.Split(ids, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(id))
			if err != nil || n < 1 || n > len(o.Mules) {
				return nil, fmt.Errorf("--farm %s: %q is not a mule's number (1 to %d; add mules with --mule or --mules)", spec, id, len(o.Mules))
			}
			if !slices.Contains(farm.Mules, n) {
				farm.Mules = append(farm.Mules, n)
			}
		}
		farms = append(farms, farm)
	}
	return farms, nil
}

// auxSpec is what the zygote forks beside the workers.
func (o *options) auxSpec() (pyembed.Spooler, pyembed.Mules) {
	farms, _ := o.farms() // checkAux has validated them
	return pyembed.Spooler{
			Dirs:      o.Spoolers,
			Processes: o.SpoolerProcesses,
			Frequency: o.SpoolerFrequency,
			Ordered:   o.SpoolerOrdered,
			Quiet:     o.SpoolerQuiet,
			Chdir:     o.SpoolerChdir,
		}, pyembed.Mules{
			Programs: o.Mules,
			Farms:    farms,
		}
}
