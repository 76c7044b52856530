// Command bench is scoreproxy's benchmark harness: a remote-write load
// generator (load), a counting receiver (sink) and a side-by-side run of
// scoreproxy and vmagent against that receiver (compare). These talk HTTP to
// processes on this machine only and never import the proxy's packages.
// The exception is demo, which runs scoreproxy in-process through
// internal/app (the binary's own wiring) to show it working with only Go.
//
// Usage:
//
//	go run ./bench demo
//	go run ./bench load -url http://127.0.0.1:8490/api/v1/write -duration 10s
//	go run ./bench load -url http://127.0.0.1:8490/api/v1/import -format import -duration 10s
//	go run ./bench sink -listen 127.0.0.1:8428
//	go run ./bench compare -scoreproxy /tmp/scoreproxy -vmagent $(which vmagent)
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// usage is printed for -help and for an unknown subcommand.
const usage = `usage: go run ./bench <subcommand> [flags]

subcommands:
  demo     run scoreproxy in-process with an example config, a counting upstream and a
           three-tenant model-runner load; print what each tenant received
  load     send Prometheus remote write 1.0 (or JSON-lines import) to a loopback URL and summarise
  sink     receive remote write, count samples per path, tenant and name
  compare  run scoreproxy and vmagent in turn on the same workload and sink

Run "go run ./bench <subcommand> -help" for the flags of a subcommand.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches a subcommand and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "load":
		err = loadCommand(args[1:], stdout)
	case "sink":
		err = sinkCommand(args[1:], stdout)
	case "compare":
		err = compareCommand(args[1:], stdout)
	case "demo":
		err = demoCommand(args[1:], stdout)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "bench: unknown subcommand %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "bench %s: %v\n", args[0], err)
		return 2
	default:
		fmt.Fprintf(stderr, "bench %s: %v\n", args[0], err)
		return 1
	}
}

// errUsage marks errors caused by wrong flags (exit code 2).
var errUsage = errors.New("usage")

// usageErrorf returns an error wrapping errUsage with a message.
func usageErrorf(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, a...))
}
