// Command microchat is the Microchat server and its administration tool.
//
//	microchat [serve] [--config PATH]     run the server (the default command)
//	microchat agent add --email E --name N [--admin] [--password-file F]
//	microchat agent list
//	microchat mailbox check
//	microchat version
//
// Every command reads the same configuration: --config PATH, or the file
// named by MICROCHAT_CONFIG, or none (the built-in defaults), with the
// MICROCHAT_* environment variables on top.
//
// Exit codes: 0 success; 1 a failure at run time (database unreachable,
// invalid input such as a short password); 2 a usage or configuration
// error; 3 a feature not available in this build.
//
// Everything is reached through run, which takes its context, arguments and
// output streams as parameters, so that tests drive the real commands
// in-process. Only main knows about signals and os.Exit.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/microdeets/microchat/config"
)

// Exit codes.
const (
	exitOK          = 0
	exitFailure     = 1 // something failed at run time
	exitUsage       = 2 // bad arguments or configuration
	exitUnavailable = 3 // not available in this build
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise the module version from the build information is shown.
var version = ""

func main() {
	if len(os.Args) < 2 || os.Args[1] == "serve" || strings.HasPrefix(os.Args[1], "-") {
		reexecWithGodebug()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, restore the default handling so that a
		// second one ends a shutdown that takes too long.
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs one command line (without the program name) and returns the
// exit code. Cancelling ctx stops a running server gracefully.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	} else if len(args) > 0 && isHelpFlag(args[0]) {
		cmd = "help"
	}
	switch cmd {
	case "serve":
		return serveCmd(ctx, args, stderr)
	case "agent":
		return agentCmd(ctx, args, stdout, stderr)
	case "mailbox":
		return mailboxCmd(ctx, args, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, versionString())
		return exitOK
	case "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "microchat: unknown command %q (run \"microchat help\")\n", cmd)
	return exitUsage
}

const usage = `Microchat: one inbox for website live chat and a support mailbox.

Usage:
  microchat [serve] [--config PATH]   run the server (default command)
  microchat agent add --email E --name N [--admin] [--password-file F] [--config PATH]
                                      create an agent (or admin) account
  microchat agent list [--config PATH]
                                      list the agent accounts
  microchat mailbox check [--config PATH]
                                      check the configured mailboxes
  microchat version                   print the version
  microchat help                      print this help

The configuration file is --config PATH or $MICROCHAT_CONFIG; without one
the built-in defaults are used (listen on :8080, SQLite under ./data). Every
key can be overridden by MICROCHAT_<KEY>, e.g. MICROCHAT_LISTEN=":9000" or
MICROCHAT_DATABASE_URL="postgres://...". On first start, set
MICROCHAT_ADMIN_EMAIL and MICROCHAT_ADMIN_PASSWORD (and optionally
MICROCHAT_ADMIN_NAME, the name customers see) to create an admin, or use
the one-time setup link the server prints.

Run "microchat COMMAND -h" for the flags of a command.
`

func isHelpFlag(s string) bool {
	return s == "-h" || s == "-help" || s == "--help"
}

// versionString names the version of this binary and the Go it was built
// with.
func versionString() string {
	v := version
	if v == "" {
		v = "(devel)"
		if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" {
			v = info.Main.Version
		}
	}
	return fmt.Sprintf("microchat %s (%s %s/%s)", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// newFlagSet returns a flag set for a command whose -h prints synopsis and
// the flags to stderr.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// configFlag adds --config to fs. The path it returns is resolved by
// configPath.
func configFlag(fs *flag.FlagSet) *string {
	return fs.String("config", "", "configuration `file` (default $MICROCHAT_CONFIG, or none: built-in defaults)")
}

// parseFlags parses args and allows no positional arguments. ok is false
// when the command must stop with code (0 after -h, 2 after a bad flag).
func parseFlags(fs *flag.FlagSet, args []string) (code int, ok bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, false
		}
		return exitUsage, false // the flag package printed the problem
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "microchat %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		fs.Usage()
		return exitUsage, false
	}
	return exitOK, true
}

// parseWithConfig parses a command's flags, which include configFlag's
// --config, and loads the configuration. ok is false when the command must
// stop with code.
func parseWithConfig(fs *flag.FlagSet, configPath *string, args []string, stderr io.Writer) (cfg config.Config, code int, ok bool) {
	if code, ok := parseFlags(fs, args); !ok {
		return cfg, code, false
	}
	if cfg, ok = loadConfig(*configPath, stderr); !ok {
		return cfg, exitUsage, false
	}
	return cfg, exitOK, true
}

// subcommand runs the subcommand of a command group (agent, mailbox)
// named by args[0], or prints the group's usage.
func subcommand(group, usage string, cmds map[string]func(args []string) int, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	if cmd, ok := cmds[args[0]]; ok {
		return cmd(args[1:])
	}
	if args[0] == "help" || isHelpFlag(args[0]) {
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "microchat: unknown command \"%s %s\"\n%s", group, args[0], usage)
	return exitUsage
}

// fail prints one line "microchat: ..." to w. A message of several lines
// (pgx lists every address it tried) is folded onto one, without repeats.
func fail(w io.Writer, format string, args ...any) {
	fmt.Fprintln(w, "microchat: "+oneLine(fmt.Sprintf(format, args...)))
}

func oneLine(msg string) string {
	var b strings.Builder
	seen := map[string]bool{}
	for line := range strings.SplitSeq(msg, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || seen[line] {
			continue
		}
		seen[line] = true
		if b.Len() > 0 {
			if strings.HasSuffix(b.String(), ":") {
				b.WriteString(" ")
			} else {
				b.WriteString("; ")
			}
		}
		b.WriteString(line)
	}
	return b.String()
}

// loadConfig loads the configuration from path, or from $MICROCHAT_CONFIG
// when path is empty, or the defaults when both are. On error it prints
// each problem as one line "microchat: config: FILE:LINE: ..." and returns
// false.
func loadConfig(path string, stderr io.Writer) (config.Config, bool) {
	if path == "" {
		path = os.Getenv("MICROCHAT_CONFIG")
	}
	cfg, err := config.Load(path)
	if err != nil {
		// config reports one problem per line, each naming its place.
		for line := range strings.SplitSeq(err.Error(), "\n") {
			if line = strings.TrimSpace(line); line != "" {
				fail(stderr, "%s", line)
			}
		}
		return config.Config{}, false
	}
	return cfg, true
}
