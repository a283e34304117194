// uWSGI's log encoders (--log-encoder, --log-req-encoder): each line, the
// master's own, the app's output and the request lines, goes through the
// chain in order before a logger writes it. gowsgi builds uWSGI's
// embedded ones: prefix, suffix, nl, format and json, the last two with
// ${msg} ${msgnl} ${unix} ${micros} ${millis} ${strftime:FORMAT}; json
// escapes what it places (encoding/json's escaping), so a quote or a
// backslash in a request line cannot break the object. "NAME:LOGGER"
// applies an encoder to that named logger's lines only, as in uWSGI.
package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/lestrrat-go/strftime"
)

// logEncoder is one link of an encoder chain.
type logEncoder struct {
	kind    string // prefix, suffix, nl, format or json
	args    string
	parts   []encoderPart // format and json: args split at ${…}
	useFor  string        // a named logger; "" for the unnamed ones and the default output
	nowFunc func() time.Time
}

// encoderPart is a literal piece of a format or json template, or one
// ${variable}.
type encoderPart struct {
	literal  string
	variable string
	strftime *strftime.Strftime // for ${strftime:FORMAT}
}

// builtEncoders are the encoders gowsgi has; uWSGI's gzip, compress and
// the plugins' (msgpack, …) are not among them.
var builtEncoders = map[string]bool{"prefix": true, "suffix": true, "nl": true, "format": true, "json": true}

// parseLogEncoder reads one value of option (--log-encoder or
// --log-req-encoder): "NAME[:LOGGER][ ARGS]".
func parseLogEncoder(option, value string) (*logEncoder, error) {
	head, args, _ := strings.Cut(value, " ")
	kind, useFor, _ := strings.Cut(head, ":")
	if !builtEncoders[kind] {
		return nil, fmt.Errorf("%s %s: gowsgi has no %q encoder, only prefix, suffix, nl, format and json; drop the line or use one of these",
			option, value, kind)
	}
	e := &logEncoder{kind: kind, args: args, useFor: useFor, nowFunc: time.Now}
	if kind == "format" || kind == "json" {
		parts, err := parseEncoderTemplate(args)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", option, value, err)
		}
		e.parts = parts
	}
	return e, nil
}

// parseEncoderTemplate splits a template at its ${variable}s; a "$" not
// followed by "{", or a "${" without "}", stays literal, as in uWSGI.
func parseEncoderTemplate(template string) ([]encoderPart, error) {
	var parts []encoderPart
	for _, p := range splitVariables(template, "${", '}') {
		part := encoderPart{literal: p.literal, variable: p.variable}
		if format, ok := strings.CutPrefix(part.variable, "strftime:"); ok {
			f, err := strftime.New(format)
			if err != nil {
				return nil, err
			}
			part.strftime = f
		}
		parts = append(parts, part)
	}
	return parts, nil
}

// appliesTo reports whether e encodes the lines of the logger named name
// ("" for an unnamed logger or the default output).
func (e *logEncoder) appliesTo(name string) bool {
	return e.useFor == "" || e.useFor == name
}

// encode returns msg, one line with its newline, encoded.
func (e *logEncoder) encode(msg []byte) []byte {
	switch e.kind {
	case "prefix":
		return append([]byte(e.args), msg...)
	case "suffix":
		return append(bytes.Clone(msg), e.args...)
	case "nl":
		return append(bytes.Clone(msg), '\n')
	}
	var b []byte
	for _, part := range e.parts {
		if part.variable == "" {
			b = append(b, part.literal...)
			continue
		}
		b = append(b, e.variable(part, msg)...)
	}
	return b
}

// variable returns one ${variable}'s value, JSON-escaped for json; an
// unknown one is empty, as in uWSGI.
func (e *logEncoder) variable(part encoderPart, msg []byte) []byte {
	now := e.nowFunc()
	var value []byte
	escape := false
	switch {
	case part.variable == "msg":
		value, escape = bytes.TrimSuffix(msg, []byte("\n")), true
	case part.variable == "msgnl":
		value, escape = msg, true
	case part.variable == "unix":
		value = strconv.AppendInt(nil, now.Unix(), 10)
	case part.variable == "micros":
		value = strconv.AppendInt(nil, now.UnixMicro(), 10)
	case part.variable == "millis":
		value = strconv.AppendInt(nil, now.UnixMilli(), 10)
	case part.strftime != nil:
		value, escape = []byte(part.strftime.FormatString(now)), true
	}
	if escape && e.kind == "json" {
		return jsonEscape(value)
	}
	return value
}

// jsonEscape returns s escaped for the inside of a JSON string.
// encoding/json writes bytes that are not UTF-8 as U+FFFD.
func jsonEscape(s []byte) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(string(s)) // a string always encodes
	out := bytes.TrimSuffix(b.Bytes(), []byte("\n"))
	return out[1 : len(out)-1]
}

// encoderChain is the --log-encoder or --log-req-encoder chain.
type encoderChain []*logEncoder

// encode runs line through every encoder that applies to the logger
// named name, in order.
func (c encoderChain) encode(line []byte, name string) []byte {
	for _, e := range c {
		if e.appliesTo(name) {
			line = e.encode(line)
		}
	}
	return line
}

// parseEncoderChain reads the values of one chain, given as option.
func parseEncoderChain(option string, values []string) (encoderChain, error) {
	var chain encoderChain
	for _, v := range values {
		e, err := parseLogEncoder(option, v)
		if err != nil {
			return nil, err
		}
		chain = append(chain, e)
	}
	return chain, nil
}
