package main

import (
	"strings"
	"testing"
)

func TestGoMemoryLimit(t *testing.T) {
	for _, tc := range []struct {
		name                    string
		gomemlimit, memoryLimit string
		want                    int64
		why                     string // substring of the reason when want is 0
	}{
		{name: "the controller's limit, 640Mi in bytes", memoryLimit: "671088640", want: 603979776},
		{name: "the webhook's limit, 128Mi in bytes", memoryLimit: "134217728", want: 120795956},
		{name: "surrounding space", memoryLimit: " 134217728\n", want: 120795956},
		{name: "a quantity", memoryLimit: "640Mi", want: 603979776},
		{name: "GOMEMLIMIT wins", gomemlimit: "500MiB", memoryLimit: "671088640", why: "GOMEMLIMIT is set"},
		{name: "no limit", why: "MEMORY_LIMIT is not set"},
		{name: "zero", memoryLimit: "0", why: "not a positive byte count"},
		{name: "negative", memoryLimit: "-5", why: "not a positive byte count"},
		{name: "garbage", memoryLimit: "lots", why: "not a byte count"},
		{name: "too large for int64", memoryLimit: "100E", why: "not a positive byte count"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, why := goMemoryLimit(tc.gomemlimit, tc.memoryLimit)
			if got != tc.want {
				t.Fatalf("goMemoryLimit(%q, %q) = %d (%s), want %d", tc.gomemlimit, tc.memoryLimit, got, why, tc.want)
			}
			if tc.want == 0 && !strings.Contains(why, tc.why) {
				t.Errorf("reason %q does not say %q", why, tc.why)
			}
			if tc.want > 0 && why != "" {
				t.Errorf("a limit and a reason not to set one: %q", why)
			}
		})
	}
}
