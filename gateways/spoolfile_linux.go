// Spool files on Linux, for request bodies and for the master's spool of a
// response a slow client has not read (server/response_spool.go): opened
// with O_TMPFILE, they never have a name, so nothing is left in the
// temporary folder whatever becomes of the processes holding them (a master
// killed with SIGKILL included).
package gateways

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// OpenSpoolFile returns a new, empty, nameless file in os.TempDir(), open
// for reading and writing.
func OpenSpoolFile() (*os.File, error) {
	dir := os.TempDir()
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err == nil {
		return os.NewFile(uintptr(fd), dir+"/(spool)"), nil
	}
	// open(2): EOPNOTSUPP (and EISDIR from kernels before O_TMPFILE) where
	// the file system does not support it.
	if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.EISDIR) {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	return createUnlinked(dir)
}
