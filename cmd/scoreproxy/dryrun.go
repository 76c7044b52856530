package main

import (
	"fmt"
	"io"

	"github.com/scoreproxy/scoreproxy/config"
	"github.com/scoreproxy/scoreproxy/internal/app"
)

// dryRun is `scoreproxy -dry-run` (or `scoreproxy check`): it validates the
// config like a start would, printing every error (exit 2) or "valid" with
// the warnings, then prints for each -series what every writer would send
// and to which URL, through the same routers the server runs
// (app.DryRun). Nothing is sent, no port or queue is opened.
func dryRun(opts options, stdout, stderr io.Writer) int {
	cfg, warnings, err := config.Load(opts.configPath)
	if err != nil {
		fmt.Fprintf(stderr, "scoreproxy: invalid config:\n%s\n", indent(err.Error()))
		return 2
	}
	fmt.Fprintf(stdout, "config %s is valid\n", opts.configPath)
	for _, w := range warnings {
		fmt.Fprintf(stdout, "warning: %s\n", w)
	}
	if err := app.DryRun(cfg, opts.series, stdout); err != nil {
		fmt.Fprintln(stderr, "scoreproxy:", err)
		return 2
	}
	return 0
}
