// Package benchstat summarises the latency samples of the project's benchmarks
// (make bench, make bench-gate), so that every table computes its percentiles
// the same way.
package benchstat

import (
	"math"
	"slices"
	"time"
)

// Durations is a set of samples.
type Durations []time.Duration

// Percentile interpolates linearly between the closest ranks (numpy's default),
// so with 50 samples p99 lies between the two largest; 0 without samples.
func (d Durations) Percentile(p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	pos := p / 100 * float64(len(s)-1)
	lo, hi := int(math.Floor(pos)), int(math.Ceil(pos))
	return s[lo] + time.Duration((pos-float64(lo))*float64(s[hi]-s[lo]))
}

// Max is the largest sample; 0 without samples.
func (d Durations) Max() time.Duration {
	if len(d) == 0 {
		return 0
	}
	return slices.Max(d)
}

// Min is the smallest sample; 0 without samples.
func (d Durations) Min() time.Duration {
	if len(d) == 0 {
		return 0
	}
	return slices.Min(d)
}

// MS is d in milliseconds.
func MS(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Mean is the samples' average; 0 without samples.
func (d Durations) Mean() time.Duration {
	if len(d) == 0 {
		return 0
	}
	var sum time.Duration
	for _, v := range d {
		sum += v
	}
	return sum / time.Duration(len(d))
}
