package main

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
)

// memoryLimitEnv holds the container's memory limit in bytes, as the chart sets
// it from the downward API (resourceFieldRef limits.memory).
const memoryLimitEnv = "MEMORY_LIMIT"

// goMemoryLimit decides Go's soft memory limit from the environment: nine tenths
// of the container's memory limit in MEMORY_LIMIT, so that the garbage collector
// works harder before the kernel's OOM killer steps in, leaving a tenth for what
// Go does not count (stacks of cgo, the binary, the kernel's page tables). It
// returns 0 and why when it sets nothing: GOMEMLIMIT set (the runtime already
// follows it), MEMORY_LIMIT unset, or not a positive byte count. Without a limit
// on the container the downward API gives the node's allocatable memory, which
// makes a limit too high to matter, never one too low.
func goMemoryLimit(gomemlimit, memoryLimit string) (int64, string) {
	if strings.TrimSpace(gomemlimit) != "" {
		return 0, "GOMEMLIMIT is set"
	}
	v := strings.TrimSpace(memoryLimit)
	if v == "" {
		return 0, memoryLimitEnv + " is not set"
	}
	q, err := resource.ParseQuantity(v)
	if err != nil {
		return 0, fmt.Sprintf("%s=%q is not a byte count", memoryLimitEnv, memoryLimit)
	}
	limit, ok := q.AsInt64()
	if !ok || limit <= 0 {
		return 0, fmt.Sprintf("%s=%q is not a positive byte count", memoryLimitEnv, memoryLimit)
	}
	return limit - limit/10, ""
}
