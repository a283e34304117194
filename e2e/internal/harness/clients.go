// Clients for the end-to-end tests: an HTTP client with deadlines, raw TCP
// connections, and readers of responses sent on a raw socket.
package harness

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Client returns an HTTP client with a deadline for every request; it does
// not follow redirects when noRedirect is set.
func Client(noRedirect bool) *http.Client {
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableCompression: true}}
	if noRedirect {
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	return c
}

// Get fetches url and returns the response and its whole body.
func Get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	return Do(t, Client(false), MustRequest(t, http.MethodGet, url, nil))
}

// GetText fetches url and returns the status and the body as text.
func GetText(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, body := Get(t, url)
	return resp.StatusCode, string(body)
}

// MustRequest builds a request, failing the test when it cannot.
func MustRequest(t *testing.T, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	require.NoError(t, err)
	return req
}

// Do sends req with c and reads the whole body.
func Do(t *testing.T, c *http.Client, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := c.Do(req)
	require.NoError(t, err, "%s %s", req.Method, req.URL)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err, "reading the body of %s %s", req.Method, req.URL)
	return resp, body
}

// Dial opens a raw TCP connection with an overall deadline.
func Dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	require.NoError(t, err)
	require.NoError(t, conn.SetDeadline(time.Now().Add(30*time.Second)))
	t.Cleanup(func() { conn.Close() })
	return conn.(*net.TCPConn)
}

// ReadResponses reads n responses from r, each with its whole body.
func ReadResponses(t *testing.T, r *bufio.Reader, n int, method string) []*RawResponse {
	t.Helper()
	var out []*RawResponse
	for i := 0; i < n; i++ {
		resp, err := http.ReadResponse(r, &http.Request{Method: method})
		require.NoError(t, err, "response %d of %d", i+1, n)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err, "body of response %d of %d", i+1, n)
		out = append(out, &RawResponse{Response: resp, Body: body})
	}
	return out
}

// RawResponse is a response read off a raw socket, with its body.
type RawResponse struct {
	*http.Response
	Body []byte
}

// WaitEOF reports whether the peer closes conn (a FIN or a reset) within
// timeout without sending more bytes; it returns whatever did arrive.
func WaitEOF(conn net.Conn, r *bufio.Reader, timeout time.Duration) (bool, []byte) {
	_ = conn.SetReadDeadline(time.Now().Add(timeout))
	rest, err := io.ReadAll(r)
	var netErr net.Error
	timedOut := errors.As(err, &netErr) && netErr.Timeout()
	return !timedOut && len(rest) == 0, rest
}

// BackgroundReader drains a connection into memory as bytes arrive and
// hands them out through Read; a reset after the last byte reads as EOF.
type BackgroundReader struct {
	mu   sync.Mutex
	more *sync.Cond
	buf  bytes.Buffer
	err  error
}

func NewBackgroundReader(conn net.Conn) *BackgroundReader {
	br := &BackgroundReader{}
	br.more = sync.NewCond(&br.mu)
	go func() {
		chunk := make([]byte, 32<<10)
		for {
			n, err := conn.Read(chunk)
			br.mu.Lock()
			br.buf.Write(chunk[:n])
			if err != nil {
				if errors.Is(err, syscall.ECONNRESET) {
					err = io.EOF
				}
				br.err = err
			}
			br.more.Broadcast()
			br.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return br
}

func (br *BackgroundReader) Read(p []byte) (int, error) {
	br.mu.Lock()
	defer br.mu.Unlock()
	for br.buf.Len() == 0 && br.err == nil {
		br.more.Wait()
	}
	if br.buf.Len() > 0 {
		return br.buf.Read(p)
	}
	return 0, br.err
}
