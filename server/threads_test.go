package server

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestMasterThreads(t *testing.T) {
	cases := []struct {
		available int
		env       string
		want      int
	}{
		{1, "", 1},
		{2, "", 1},
		{7, "", 1},
		{8, "", 2},
		{64, "", 16},
		{2, "2", 2}, // GOMAXPROCS=2 set by the user: Go already applied it
		{8, "8", 8},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, masterThreads(c.available, c.env), "%d CPUs, GOMAXPROCS=%q", c.available, c.env)
	}
}
