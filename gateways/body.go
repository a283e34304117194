// Reading a request body before it goes to a worker: a worker only ever sees
// a body that has fully arrived, so a slow client costs the master a
// goroutine and never a Python thread. Small bodies stay in memory, larger
// ones are spooled to a temporary file that has no name (spoolfile_*.go),
// whose descriptor the worker is handed with the request.
package gateways

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// body is a request body that has been read in full: data when it is at most
// the spool threshold, else a spooled file, positioned at its start, that the
// caller closes once the response has ended.
type body struct {
	data []byte
	file *os.File
	size int64
}

// readBody reads r to its end. declared is the length the client announced
// (-1: unknown, as for a chunked body). buf is reused storage for an inline
// body. Anything over threshold bytes is written to a temporary file.
func readBody(r io.Reader, declared, threshold int64, buf []byte) (body, error) {
	if declared == 0 {
		return body{data: buf[:0]}, nil
	}
	if declared > 0 && declared <= threshold {
		return readInline(r, declared, buf)
	}
	// Unknown or large: keep up to threshold in memory, then spool.
	w := bytes.NewBuffer(buf[:0])
	n, err := io.CopyN(w, r, threshold+1)
	if err != nil && !errors.Is(err, io.EOF) {
		return body{}, fmt.Errorf("gateways: reading request body: %w", err)
	}
	if n <= threshold {
		return body{data: w.Bytes(), size: n}, nil
	}
	return spool(w.Bytes(), r)
}

// readInline reads exactly n bytes into buf, growing it when it is short.
func readInline(r io.Reader, n int64, buf []byte) (body, error) {
	if int64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return body{}, fmt.Errorf("gateways: reading request body: %w", err)
	}
	return body{data: buf, size: n}, nil
}

// spool writes head and then the rest of r to a new spool file.
func spool(head []byte, r io.Reader) (body, error) {
	f, err := OpenSpoolFile()
	if err != nil {
		return body{}, fmt.Errorf("gateways: spooling request body: %w", err)
	}
	n, err := f.Write(head)
	size := int64(n)
	if err == nil {
		var rest int64
		rest, err = io.Copy(f, r)
		size += rest
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return body{}, fmt.Errorf("gateways: spooling request body: %w", err)
	}
	return body{file: f, size: size}, nil
}

// spoolPattern names a spool file for the moment between its creation and
// its removal, where O_TMPFILE is not to be had.
const spoolPattern = "gowsgi-body-*"

// createUnlinked creates a file in dir and removes its name at once: only a
// process killed in between leaves it behind.
func createUnlinked(dir string) (*os.File, error) {
	f, err := os.CreateTemp(dir, spoolPattern)
	if err != nil {
		return nil, err
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// close releases the body's spool file, if it has one.
func (b body) close() {
	if b.file != nil {
		b.file.Close()
	}
}
