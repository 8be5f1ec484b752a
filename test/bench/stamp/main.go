// Command stamp is the application the latency benchmark has the resolver exec.
// It prints the wall-clock time it started as "stamp <unix nanoseconds>" and
// exits 0. Because the resolver execs it, that time is the moment of the exec plus
// the start of a tiny Go program (well under a millisecond); the benchmark's own
// test binary would add the init of client-go, about 10 ms.
package main

import (
	"os"
	"strconv"
	"time"
)

func main() {
	now := time.Now().UnixNano()
	_, _ = os.Stdout.WriteString("stamp " + strconv.FormatInt(now, 10) + "\n")
}
