//go:build !linux

// Spool files where there is no O_TMPFILE: created and unlinked at once.
package gateways

import "os"

// OpenSpoolFile returns a new, empty file in os.TempDir() whose name is
// already gone, open for reading and writing.
func OpenSpoolFile() (*os.File, error) { return createUnlinked(os.TempDir()) }
