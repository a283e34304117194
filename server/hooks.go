// Hooks: what uWSGI's hook-PHASE and exec-PHASE options ask the master to
// do at one phase of its start. gowsgi runs the phases asap and as-root
// before it binds (as the user it was started as), as-user and pre-app
// once it has dropped privileges and before the app loads, and post-app and
// master-start once the workers serve. A hook that fails stops the start,
// as uWSGI's do. cmd/gowsgi refuses the phases and actions not listed here.
package server

import (
	"fmt"
	"os"
	"os/exec"
)

// Hook phases, named as uWSGI names them.
const (
	PhaseASAP        = "asap"
	PhaseAsRoot      = "as-root"
	PhaseAsUser      = "as-user"
	PhasePreApp      = "pre-app"
	PhasePostApp     = "post-app"
	PhaseMasterStart = "master-start"
)

// Hook actions.
const (
	HookExec  = "exec"  // run Arg with /bin/sh -c and wait; a non-zero exit fails
	HookMkdir = "mkdir" // create the folder Arg; one there already fails, as in uWSGI
	HookPrint = "print" // write Arg to the log
)

// Hook is one action at one phase.
type Hook struct {
	// Option is the option as given ("hook-pre-app", "exec-asap"), for
	// the log.
	Option string
	Phase  string
	Action string
	Arg    string
}

// runHooks runs the hooks of phase in order and stops at the first that
// fails.
func runHooks(hooks []Hook, phase string) error {
	for _, h := range hooks {
		if h.Phase != phase {
			continue
		}
		if err := h.run(); err != nil {
			return fmt.Errorf("%s %s:%s: %w", h.Option, h.Action, h.Arg, err)
		}
	}
	return nil
}

// runStartHooks runs the hooks of each phase in turn.
func runStartHooks(hooks []Hook, phases ...string) error {
	for _, phase := range phases {
		if err := runHooks(hooks, phase); err != nil {
			return err
		}
	}
	return nil
}

func (h Hook) run() error {
	switch h.Action {
	case HookExec:
		cmd := exec.Command("/bin/sh", "-c", h.Arg)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := startChild(cmd); err != nil {
			return err
		}
		return cmd.Wait()
	case HookMkdir:
		return os.Mkdir(h.Arg, 0o777)
	case HookPrint:
		fmt.Fprintln(os.Stderr, h.Arg)
		return nil
	}
	return fmt.Errorf("server: unknown hook action %q", h.Action)
}
