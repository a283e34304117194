package gateways

import (
	"bufio"
	"io"
	"strings"
	"testing"

	"github.com/gowsgi/gowsgi/wsgi"
)

// wrkHead is the request wrk sends for the bench's hello row.
const wrkHead = "GET /hello HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n"

// browserHead is a head as a browser sends it.
const browserHead = "GET /path/to/page?query=1&b=%20x HTTP/1.1\r\nHost: example.com\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n" +
	"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n" +
	"Accept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\n" +
	"Connection: keep-alive\r\nCookie: a=1; b=2\r\nUpgrade-Insecure-Requests: 1\r\n\r\n"

// BenchmarkHTTP1Head reads, checks and translates one request head into
// CGI variables, as the connection loop does for every request.
func BenchmarkHTTP1Head(b *testing.B) {
	for _, bc := range []struct{ name, head string }{{"wrk", wrkHead}, {"browser", browserHead}} {
		b.Run(bc.name, func(b *testing.B) {
			src := strings.NewReader(bc.head)
			r := bufio.NewReaderSize(src, http1ReadBuffer)
			info := connInfo{serverName: "127.0.0.1", serverPort: "8000", remoteAddr: "127.0.0.1", remotePort: "50000"}
			var (
				head, name []byte
				parsed     requestHead
				vars       wsgi.Vars
			)
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.head)))
			for b.Loop() {
				src.Reset(bc.head)
				r.Reset(src)
				var err error
				if head, err = readHead(r, head, 64<<10); err != nil {
					b.Fatal(err)
				}
				if herr := parsed.parse(head); herr != nil {
					b.Fatal(herr)
				}
				vars.Reset()
				name = addHeadVars(&vars, &parsed, &info, 0, name)
			}
		})
	}
}

// BenchmarkHTTP1ResponseHead writes a small response, head and body, as
// the response writer does for every request.
func BenchmarkHTTP1ResponseHead(b *testing.B) {
	var headers wsgi.Vars
	headers.Add("Content-Type", "text/plain")
	block := headers.Block()
	body := []byte("Hello World!\n")
	w := bufio.NewWriterSize(io.Discard, http1WriteBuffer)
	var resp http1Response
	b.ReportAllocs()
	for b.Loop() {
		resp.begin(w, nil, nil, responseParams{http11: true})
		if err := resp.WriteHead("200 OK", block); err != nil {
			b.Fatal(err)
		}
		if err := resp.WriteBody(body); err != nil {
			b.Fatal(err)
		}
		if _, err := resp.finish(); err != nil {
			b.Fatal(err)
		}
	}
}
