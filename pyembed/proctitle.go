package pyembed

// #include "gw.h"
// #include <stdlib.h>
import "C"

import "unsafe"

// ProcNames are the titles ps shows for gowsgi's processes, as uWSGI's
// --procname-prefix(-spaced), --procname, --procname-master,
// --procname-append and --auto-procname set them (gw_proctitle.c). uWSGI
// renames its processes only when Auto is on (any of those options turns
// it on); each then shows Prefix, its name and Append: the master
// MasterName, else Name, else "uWSGI master"; a worker, mule or spooler
// Name, else "uWSGI worker N", "uWSGI mule N" or "uWSGI spooler"; gowsgi's
// zygote, which uWSGI has no twin of, Name, else "uWSGI zygote".
type ProcNames struct {
	Auto                             bool
	Prefix, Name, MasterName, Append string
}

// SetMasterTitle gives the calling process, the master, its title; a no-op
// unless n.Auto.
func SetMasterTitle(n ProcNames) {
	if !n.Auto {
		return
	}
	name := n.MasterName
	if name == "" {
		name = n.Name
	}
	if name == "" {
		name = "uWSGI master"
	}
	prefix, base, suffix := C.CString(n.Prefix), C.CString(name), C.CString(n.Append)
	defer C.free(unsafe.Pointer(prefix))
	defer C.free(unsafe.Pointer(base))
	defer C.free(unsafe.Pointer(suffix))
	C.gw_proctitle_set(prefix, base, suffix)
}
