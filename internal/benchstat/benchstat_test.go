package benchstat

import (
	"testing"
	"time"
)

func TestDurations(t *testing.T) {
	ms := func(v ...int) Durations {
		var d Durations
		for _, x := range v {
			d = append(d, time.Duration(x)*time.Millisecond)
		}
		return d
	}
	tests := []struct {
		name          string
		d             Durations
		p             float64
		want          time.Duration
		wantMin, wMax time.Duration
	}{
		{"none", nil, 50, 0, 0, 0},
		{"one", ms(7), 99, 7 * time.Millisecond, 7 * time.Millisecond, 7 * time.Millisecond},
		{"median of an even count interpolates", ms(4, 1, 3, 2), 50, 2500 * time.Microsecond, time.Millisecond, 4 * time.Millisecond},
		{"p0 is the minimum", Durations{10, 1, 9, 2, 8, 3, 7, 4, 6, 5}, 0, 1, 1, 10},
		{"p100 is the maximum", Durations{10, 1, 9, 2, 8, 3, 7, 4, 6, 5}, 100, 10, 1, 10},
		{"p90 interpolates", Durations{0, 1000}, 90, 900, 0, 1000},
		{"p99 of 50 lies between the two largest", append(ms(make([]int, 48)...), 100*time.Millisecond, 200*time.Millisecond), 99, 151 * time.Millisecond, 0, 200 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.d.Percentile(tt.p); (got - tt.want).Abs() > time.Microsecond {
				t.Errorf("Percentile(%g) = %v, want %v", tt.p, got, tt.want)
			}
			if got := tt.d.Min(); got != tt.wantMin {
				t.Errorf("Min = %v, want %v", got, tt.wantMin)
			}
			if got := tt.d.Max(); got != tt.wMax {
				t.Errorf("Max = %v, want %v", got, tt.wMax)
			}
		})
	}
	if got := ms(1, 2, 6).Mean(); got != 3*time.Millisecond {
		t.Errorf("Mean = %v, want 3ms", got)
	}
	if got := Durations(nil).Mean(); got != 0 {
		t.Errorf("Mean of none = %v", got)
	}
	if got := MS(1500 * time.Microsecond); got != 1.5 {
		t.Errorf("MS(1.5ms) = %v", got)
	}
}
