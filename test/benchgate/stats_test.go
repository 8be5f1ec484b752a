package benchgate

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
	lo, hi := int(math.Floor(pos)), int(math.Ceil(pos))
	return s[lo] + time.Duration((pos-float64(lo))*float64(s[hi]-s[lo]))
}

func (d durations) max() time.Duration {
	if len(d) == 0 {
		return 0
	}
	return slices.Max(d)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
