// Command testapp is the application image of the end-to-end tests (test/e2e): one
// static binary, no shell, with a few behaviours chosen by its first argument.
//
//	testapp print MSG...        print "MSG" with the time, then sleep until killed
//	testapp run SECONDS         sleep that long, print "done", exit 0 (a migration Job)
//	testapp sleep               sleep until killed (a database)
//	testapp touch-after SECONDS FILE   create FILE after that long, then sleep
//	testapp exists FILE         exit 0 when FILE exists, else 1 (an exec readiness probe)
//	testapp cat FILE            print the contents of FILE, then sleep until killed
package main

import (
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: testapp print|run|sleep|touch-after|exists|cat ...")
		os.Exit(2)
	}
	switch args := os.Args[2:]; os.Args[1] {
	case "print":
		fmt.Printf("%s (pid %d, at %s)\n", strings.Join(args, " "), os.Getpid(), time.Now().UTC().Format(time.RFC3339Nano))
		sleep()
	case "run":
		time.Sleep(seconds(args))
		fmt.Println("done")
	case "sleep":
		sleep()
	case "touch-after":
		if len(args) != 2 {
			os.Exit(2)
		}
		time.Sleep(seconds(args))
		if err := os.WriteFile(args[1], nil, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("touched %s (at %s)\n", args[1], time.Now().UTC().Format(time.RFC3339Nano))
		sleep()
	case "exists":
		if len(args) != 1 {
			os.Exit(2)
		}
		if _, err := os.Stat(args[0]); err != nil {
			os.Exit(1)
		}
	case "cat":
		if len(args) != 1 {
			os.Exit(2)
		}
		b, err := os.ReadFile(args[0])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("%s:\n%s\n", args[0], b)
		sleep()
	default:
		fmt.Fprintf(os.Stderr, "testapp: unknown mode %q\n", os.Args[1])
		os.Exit(2)
	}
}

func seconds(args []string) time.Duration {
	if len(args) == 0 {
		return 0
	}
	f, err := strconv.ParseFloat(args[0], 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	return time.Duration(f * float64(time.Second))
}

// sleep waits for SIGTERM or SIGINT and exits 0 (pid 1 gets no default handlers).
func sleep() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	<-ch
}
