package server

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/gowsgi/gowsgi/wsgi"
)

func TestParseLogFormat(t *testing.T) {
	for _, tc := range []struct {
		format string
		want   []logPart
	}{
		{"%(addr) - %(status)", []logPart{{variable: "addr"}, {literal: " - "}, {variable: "status"}}},
		{"plain", []logPart{{literal: "plain"}}},
		{"50%(", []logPart{{literal: "50%("}}},
		{"[%(uri)]", []logPart{{literal: "["}, {variable: "uri"}, {literal: "]"}}},
		{"", nil},
	} {
		assert.Equal(t, tc.want, parseLogFormat(tc.format), tc.format)
	}
}

func TestAccessLogWants(t *testing.T) {
	for _, tc := range []struct {
		name  string
		log   *accessLog
		entry entry
		want  bool
	}{
		{"nil logs nothing", nil, entry{status: 500}, false},
		{"all", &accessLog{all: true}, entry{status: 200}, true},
		{"4xx only, 404", &accessLog{log4xx: true}, entry{status: 404}, true},
		{"4xx only, 500", &accessLog{log4xx: true}, entry{status: 500}, false},
		{"5xx only, 502", &accessLog{log5xx: true}, entry{status: 502}, true},
		{"5xx only, 200", &accessLog{log5xx: true}, entry{status: 200}, false},
		{"slow, slower", &accessLog{slow: time.Second}, entry{status: 200, took: time.Second, bodyBytes: 1}, true},
		{"slow, faster", &accessLog{slow: time.Second}, entry{status: 200, took: time.Second - 1, bodyBytes: 1}, false},
		{"zero, empty", &accessLog{zero: true}, entry{status: 204}, true},
		{"zero, a body", &accessLog{zero: true}, entry{status: 200, bodyBytes: 1}, false},
		{"big, bigger", &accessLog{big: 10}, entry{status: 200, bodyBytes: 10}, true},
		{"big, smaller", &accessLog{big: 10}, entry{status: 200, bodyBytes: 9}, false},
	} {
		assert.Equal(t, tc.want, tc.log.wants(&tc.entry), tc.name)
	}
}

func TestHeadSize(t *testing.T) {
	var headers wsgi.Vars
	headers.Add("Content-Type", "text/plain")
	// "HTTP/1.1 200 OK\r\n" + "Content-Type: text/plain\r\n" + "\r\n"
	assert.Equal(t, int64(17+26+2), headSize("200 OK", headers.Block()))
}
