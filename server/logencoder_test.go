package server

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLogEncoders(t *testing.T) {
	now := time.Date(2026, 12, 3, 9, 45, 7, 123456000, time.UTC)
	line := []byte(`127.0.0.1 GET / ua=evil"agent\` + "\n")
	for _, tc := range []struct {
		encoders []string
		want     string
	}{
		{[]string{"prefix [app] "}, "[app] " + string(line)},
		{[]string{"suffix <end>"}, string(line) + "<end>"},
		{[]string{"nl"}, string(line) + "\n"},
		{[]string{"format ${unix} ${micros} ${millis} ${strftime:%Y-%m-%d} ${msg}|"},
			"1796291107 1796291107123456 1796291107123 2026-12-03 " + string(line[:len(line)-1]) + "|"},
		{[]string{"format <${msgnl}>"}, "<" + string(line) + ">"},
		{[]string{`json {"msg":"${msg}","date":"${strftime:%d/%m}"}`}, `{"msg":"127.0.0.1 GET / ua=evil\"agent\\","date":"03/12"}`},
		{[]string{`json {"m":"${msgnl}"}`}, `{"m":"127.0.0.1 GET / ua=evil\"agent\\\n"}`},
		{[]string{"format $x ${nope} ${msg", "nl"}, "$x  ${msg\n"},
		{[]string{`json {"msg":"${msg}"}`, "nl", "prefix >"}, `>{"msg":"127.0.0.1 GET / ua=evil\"agent\\"}` + "\n"},
		{[]string{"prefix only-for-app:", "prefix:app never "}, "only-for-app:" + string(line)},
	} {
		chain, err := parseEncoderChain("--log-encoder", tc.encoders)
		require.NoError(t, err, tc.encoders)
		for _, e := range chain {
			e.nowFunc = func() time.Time { return now }
		}
		assert.Equal(t, tc.want, string(chain.encode(line, "")), "%q", tc.encoders)
	}
}

func TestLogEncoderJSONIsValidForAnyLine(t *testing.T) {
	chain, err := parseEncoderChain("--log-encoder", []string{`json {"msg":"${msg}"}`})
	require.NoError(t, err)
	for _, line := range []string{"plain\n", "quote\" backslash\\ tab\t\n", "ctl \x01\x1f\n", "not utf-8 \xff\xfe\n", "<html> & </html>\n"} {
		var got struct{ Msg string }
		require.NoError(t, json.Unmarshal(chain.encode([]byte(line), ""), &got), "%q", line)
		assert.NotEmpty(t, got.Msg)
	}
}

func TestLogEncoderUseFor(t *testing.T) {
	chain, err := parseEncoderChain("--log-encoder", []string{"prefix:app [app] ", "prefix * "})
	require.NoError(t, err)
	assert.Equal(t, "* [app] x\n", string(chain.encode([]byte("x\n"), "app")))
	assert.Equal(t, "* x\n", string(chain.encode([]byte("x\n"), "")))
}

func TestLogEncodersGowsgiDoesNotBuild(t *testing.T) {
	for _, value := range []string{"gzip", "compress", "msgpack {}", "json:app"} {
		_, err := parseEncoderChain("--log-req-encoder", []string{value})
		if value == "json:app" {
			assert.NoError(t, err)
			continue
		}
		require.Error(t, err, value)
		assert.Contains(t, err.Error(), "--log-req-encoder "+value+": gowsgi has no")
	}
}
