package bench

import (
	"math"
	"slices"
	"time"
)

// durations summarises a set of samples.
type durations []time.Duration

// percentile interpolates linearly between the closest ranks (numpy's default),
// so with 50 samples p99 lies between the two largest.
func (d durations) percentile(p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	pos := p / 100 * float64(len(s)-1)
	lo := int(math.Floor(pos))
	hi := int(math.Ceil(pos))
	frac := pos - float64(lo)
	return s[lo] + time.Duration(frac*float64(s[hi]-s[lo]))
}

func (d durations) max() time.Duration { return slices.Max(d) }

func (d durations) min() time.Duration { return slices.Min(d) }

func (d durations) mean() time.Duration {
	var sum time.Duration
	for _, v := range d {
		sum += v
	}
	return sum / time.Duration(len(d))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
