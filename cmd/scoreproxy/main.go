// Command scoreproxy is a Prometheus remote-write proxy for VictoriaMetrics:
// it renames model outputs per vmanomaly's metric_format, routes every series
// to its tenant and forwards snappy remote write. This package only parses
// flags, loads the config, sets up logging and signals, and runs the server
// that internal/app wires (app.Serve).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/scoreproxy/scoreproxy/config"
	"github.com/scoreproxy/scoreproxy/internal/app"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// options are the command-line flags.
type options struct {
	configPath string
	listen     string
	logLevel   string
	logFormat  string
	version    bool
	// dryRun (-dry-run, or the check subcommand) validates the config and
	// shows what happens to each of series instead of serving (dryrun.go).
	dryRun bool
	series []string
	// cpuProfile is a file for a CPU profile of the whole run (profile.go).
	cpuProfile string
	// memProfile is a file for a heap profile written at shutdown (profile.go).
	memProfile string
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("scoreproxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.configPath, "config", "", "path of the YAML config file (required); see README.md and examples/")
	fs.StringVar(&o.listen, "listen", "", "address to listen on, overriding the config's listen key (e.g. 127.0.0.1:8490)")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	fs.BoolVar(&o.dryRun, "dry-run", false, "validate the config, print what each -series would become and where it would go, and exit")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the run to this file when the proxy stops (for go tool pprof)")
	fs.StringVar(&o.memProfile, "memprofile", "", "write a heap profile to this file when the proxy stops (for go tool pprof)")
	fs.Func("series", `a sample series for -dry-run, e.g. 'anomaly_score{for="q1",vm_account_id="5"}' (repeatable)`,
		func(s string) error { o.series = append(o.series, s); return nil })
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: scoreproxy -config FILE [flags]\n"+
			"       scoreproxy check -config FILE [-series SERIES]... (same as -dry-run)\n\n"+
			"scoreproxy receives Prometheus remote write, renames series per vmanomaly's metric_format,\n"+
			"routes them to VictoriaMetrics tenants and forwards them upstream.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if len(args) > 0 && args[0] == "check" { // `scoreproxy check ...` is `scoreproxy -dry-run ...`
		o.dryRun, args = true, args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q: scoreproxy takes only flags (see -help)", fs.Arg(0))
	}
	if o.configPath == "" && !o.version {
		return o, errors.New("missing -config FILE: write a config (see examples/) and pass its path")
	}
	return o, nil
}

// run is main without the process exit, so tests can drive the binary's code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	opts, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "scoreproxy:", err)
		return 2
	}
	if opts.version {
		fmt.Fprintln(stdout, "scoreproxy", version)
		return 0
	}
	logger, err := newLogger(stderr, opts.logLevel, opts.logFormat)
	if err != nil {
		fmt.Fprintln(stderr, "scoreproxy:", err)
		return 2
	}
	if opts.dryRun {
		return dryRun(opts, stdout, stderr)
	}
	cfg, warnings, err := config.Load(opts.configPath)
	if err != nil {
		fmt.Fprintf(stderr, "scoreproxy: invalid config:\n%s\n", indent(err.Error()))
		return 1
	}
	for _, w := range warnings {
		logger.Warn("config: " + w)
	}
	if opts.listen != "" {
		cfg.Listen = opts.listen
	}
	stopProfile, err := startCPUProfile(opts.cpuProfile)
	if err != nil {
		fmt.Fprintln(stderr, "scoreproxy:", err)
		return 1
	}
	defer stopProfile()
	writeHeap, err := heapProfile(opts.memProfile)
	if err != nil {
		fmt.Fprintln(stderr, "scoreproxy:", err)
		return 1
	}
	defer writeHeap()
	app.Version, app.DebugOutput = version, stdout
	hup := make(chan os.Signal, 1) // SIGHUP reloads the config file, see internal/app/reload.go
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	ro := app.ReloadOptions{ConfigPath: opts.configPath, Listen: opts.listen, Signals: hup}
	if err := app.ServeReloadable(ctx, cfg, logger, nil, ro); err != nil {
		logger.Error("scoreproxy stopped", "error", err)
		return 1
	}
	return 0
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("-log-level %q: use debug, info, warn or error", level)
	}
	hopts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, hopts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, hopts)), nil
	}
	return nil, fmt.Errorf("-log-format %q: use text or json", format)
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}
