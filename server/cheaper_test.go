package server

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestCheaperSpare steps uWSGI's spare algorithm through cycles of
// (active, busy) workers and checks what it asks for after each.
func TestCheaperSpare(t *testing.T) {
	c := &Cheaper{Min: 1, Step: 2, Overload: 2}
	tests := []struct {
		name   string
		cycles [][2]int // active, busy
		want   []int
	}{
		{"all busy for overload cycles adds step", [][2]int{{1, 1}, {1, 1}, {1, 1}}, []int{0, 2, 0}},
		{"one spare worker is stable", [][2]int{{3, 2}, {3, 2}, {3, 2}}, []int{0, 0, 0}},
		{"idle for overload cycles stops one", [][2]int{{3, 0}, {3, 0}, {3, 0}, {3, 0}}, []int{0, -1, 0, -1}},
		{"a busy cycle delays the add", [][2]int{{2, 2}, {2, 1}, {2, 2}, {2, 2}}, []int{0, 0, 0, 2}},
	}
	for _, tt := range tests {
		var s cheaperState
		var got []int
		for _, cycle := range tt.cycles {
			got = append(got, s.spare(c, cycle[0], cycle[1]))
		}
		assert.Equal(t, tt.want, got, tt.name)
	}
}

func TestCheaperBusyness(t *testing.T) {
	c := &Cheaper{Step: 1, Overload: 2, BusynessMax: 50, BusynessMin: 25}
	tests := []struct {
		name   string
		shares []float64
		want   []int
	}{
		{"above max over the window adds", []float64{1, 0.5}, []int{0, 1}},
		{"below min over the window stops one", []float64{0.2, 0.2}, []int{0, -1}},
		{"between stays", []float64{0.5, 0.3}, []int{0, 0}},
		{"windows start afresh", []float64{1, 1, 0, 0}, []int{0, 1, 0, -1}},
	}
	for _, tt := range tests {
		var s cheaperState
		var got []int
		for _, share := range tt.shares {
			got = append(got, s.busyness(c, share))
		}
		assert.Equal(t, tt.want, got, tt.name)
	}
}

func TestClampDelta(t *testing.T) {
	assert.Equal(t, 1, clampDelta(2, 3, 1, 4))
	assert.Equal(t, 0, clampDelta(-1, 1, 1, 4))
	assert.Equal(t, -1, clampDelta(-1, 2, 1, 4))
}
