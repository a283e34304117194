// uWSGI's --log-date (--logdate): the master's own lines (its log, the
// banner, its errors) start with the date, as uWSGI's core messages do:
// ctime's "Thu Dec  3 09:45:00 2026 - " by default, or a strftime(3)
// format. Request lines written with --log-format are not dated, as in
// uWSGI. lestrrat-go/strftime reads the format, so it means what it means
// to uWSGI's strftime.
package server

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/lestrrat-go/strftime"
)

// ctimeLayout is ctime(3)'s date, which uWSGI's --log-date writes.
const ctimeLayout = "Mon Jan _2 15:04:05 2006"

// datedWriter starts each line written to w with the date.
type datedWriter struct {
	mu        sync.Mutex
	w         io.Writer
	format    *strftime.Strftime // nil: ctime's
	midLine   bool               // the last write did not end its line
	dateOfNow func() time.Time
}

// newDatedWriter returns w dated with format (a strftime(3) format, ""
// for ctime's).
func newDatedWriter(w io.Writer, format string) (*datedWriter, error) {
	d := &datedWriter{w: w, dateOfNow: time.Now}
	if format != "" {
		f, err := strftime.New(format)
		if err != nil {
			return nil, fmt.Errorf("server: --log-date %q: %w", format, err)
		}
		d.format = f
	}
	return d, nil
}

func (d *datedWriter) prefix() string {
	now := d.dateOfNow()
	if d.format == nil {
		return now.Format(ctimeLayout) + " - "
	}
	return d.format.FormatString(now) + " - "
}

func (d *datedWriter) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var b strings.Builder
	for rest := string(p); rest != ""; {
		line, after, ended := strings.Cut(rest, "\n")
		if !d.midLine {
			b.WriteString(d.prefix())
		}
		b.WriteString(line)
		if ended {
			b.WriteByte('\n')
		}
		d.midLine, rest = !ended, after
	}
	if _, err := io.WriteString(d.w, b.String()); err != nil {
		return 0, err
	}
	return len(p), nil
}

// undated returns the writer under w's dates, or w.
func undated(w io.Writer) io.Writer {
	if d, ok := w.(*datedWriter); ok {
		return d.w
	}
	return w
}
