// Sending a file a worker handed over (wsgi.file_wrapper) to a client.
package gateways

import (
	"fmt"
	"io"
	"os"
)

// copyFile copies count bytes of f from offset (count -1: to its end) to
// dst. Handing io.Copy the *os.File, or an io.LimitedReader over it, lets a
// TCP connection, net/http's response and, for a whole file, a Unix socket
// use sendfile(2) instead of copying through user space.
func copyFile(dst io.Writer, f *os.File, offset, count int64) error {
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return fmt.Errorf("gateways: sending a file: %w", err)
	}
	var src io.Reader = f
	if count >= 0 {
		src = &io.LimitedReader{R: f, N: count}
	}
	_, err := io.Copy(dst, src)
	return err
}
