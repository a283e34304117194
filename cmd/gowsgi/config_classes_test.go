package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestEveryUWSGIOptionIsClassified: each option uWSGI 2.0.21 knows is
// implemented (in the option table or config logic), a tuning knob that
// is warned about, or refused with a text that says what to do.
func TestEveryUWSGIOptionIsClassified(t *testing.T) {
	p := newConfigParser(nil, t.TempDir())
	counts := map[string]int{}
	for name := range uwsgiOptions() {
		switch rule := classify(name); {
		case p.byName["--"+name] != nil || isLogicKey(name):
			counts["implemented"]++
		case rule.class == classTuning:
			counts["tuning"]++
		case rule.class == classRefused:
			counts["refused"]++
			assert.NotEmpty(t, rule.text, name)
		default:
			t.Errorf("uWSGI's option %q is not classified (config_classes.go)", name)
		}
	}
	t.Logf("uWSGI options: %v", counts)
}

// TestClassRulesNameNoImplementedOption: a rule's exact name is never an
// option gowsgi implements, which the table would shadow.
func TestClassRulesNameNoImplementedOption(t *testing.T) {
	p := newConfigParser(nil, t.TempDir())
	for _, rule := range optionClasses {
		for _, name := range rule.names {
			if !strings.Contains(name, "*") {
				assert.Nil(t, p.byName["--"+name], "%s is implemented but also classified", name)
			}
		}
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		key  string
		want optionClass
	}{
		{"so-keepalive", classTuning},
		{"log-maxsize", classTuning},
		{"log-alarm", classRefused}, // the longer pattern wins over log-*
		{"touch-logrotate", classTuning},
		{"touch-exec", classRefused},
		{"static-cache-paths", classTuning},
		{"static-index", classRefused},
		{"spooler-external", classRefused},
		{"master-fifo", classRefused},
		{"cheaper-algos-list", classRefused}, // uWSGI prints it and exits
		{"loggers-list", classRefused},
		{"log-req-route", classTuning},
		{"no-such-option", classUnclassified},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, classify(tt.key).class, tt.key)
	}
}
