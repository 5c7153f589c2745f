package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/microdeets/microchat/config"
	"github.com/microdeets/microchat/inbox"
	"golang.org/x/term"
)

// stdin is where agent add reads a password that is not in a file. Tests
// replace it.
var stdin io.Reader = os.Stdin

const agentUsage = `Usage:
  microchat agent add --email E --name N [--admin] [--password-file F] [--config PATH]
  microchat agent list [--config PATH]
`

func agentCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return subcommand("agent", agentUsage, map[string]func([]string) int{
		"add":  func(args []string) int { return agentAdd(ctx, args, stdout, stderr) },
		"list": func(args []string) int { return agentList(ctx, args, stdout, stderr) },
	}, args, stdout, stderr)
}

func agentAdd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("agent add", "microchat agent add --email E --name N [--admin] [--password-file F] [--config PATH]", stderr)
	email := fs.String("email", "", "the agent's email address, which they log in with (required)")
	name := fs.String("name", "", "the agent's name, as contacts and colleagues see it (required)")
	admin := fs.Bool("admin", false, "make the account an admin")
	passwordFile := fs.String("password-file", "", "read the password from the first line of `file` (default: ask on the terminal, or read a line from stdin)")
	configPath := configFlag(fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if *email == "" || *name == "" {
		fail(stderr, "agent add: --email and --name are required")
		return exitUsage
	}
	cfg, ok := loadConfig(*configPath, stderr)
	if !ok {
		return exitUsage
	}
	password, err := readPassword(*passwordFile, stderr)
	if err != nil {
		fail(stderr, "agent add: password: %v", err)
		return exitFailure
	}
	store, ok := openCLIStore(ctx, cfg, stderr)
	if !ok {
		return exitFailure
	}
	defer store.Close()

	role := inbox.RoleAgent
	if *admin {
		role = inbox.RoleAdmin
	}
	a, err := store.CreateAgent(ctx, inbox.NewAgent{Email: *email, Name: *name, Role: role, Password: password})
	var invalid *inbox.InvalidError
	switch {
	case errors.As(err, &invalid):
		fail(stderr, "agent add: %v", err) // "password: must be at least 10 characters"
		return exitFailure
	case err != nil:
		fail(stderr, "database: %s", dbReason(err))
		return exitFailure
	}
	fmt.Fprintf(stdout, "created %s %s (id %d)\n", a.Role, a.Email, a.ID)
	return exitOK
}

func agentList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("agent list", "microchat agent list [--config PATH]", stderr)
	configPath := configFlag(fs)
	cfg, code, ok := parseWithConfig(fs, configPath, args, stderr)
	if !ok {
		return code
	}
	store, ok := openCLIStore(ctx, cfg, stderr)
	if !ok {
		return exitFailure
	}
	defer store.Close()
	agents, err := store.Agents(ctx)
	if err != nil {
		fail(stderr, "database: %s", dbReason(err))
		return exitFailure
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tEMAIL\tNAME\tROLE\tSTATUS")
	for _, a := range agents {
		status := "enabled"
		if a.Disabled() {
			status = "disabled"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", a.ID, a.Email, a.Name, a.Role, status)
	}
	tw.Flush()
	return exitOK
}

// openCLIStore opens the database for a command other than serve; only
// warnings and errors are logged, so that the command's own output stands
// out. On error it prints one line and returns false.
func openCLIStore(ctx context.Context, cfg config.Config, stderr io.Writer) (*inbox.Store, bool) {
	log := newLogger(cfg.Log, stderr)
	if cfg.Log.SlogLevel() < slog.LevelWarn {
		log = newLogger(config.Log{Level: "warn", Format: cfg.Log.Format}, stderr)
	}
	store, err := openStore(ctx, cfg, log)
	if err != nil {
		fail(stderr, "database: %s", dbReason(err))
		return nil, false
	}
	return store, true
}

// readPassword returns the password from the first line of file; without
// a file, it asks twice on the terminal without echo, or reads one line
// from stdin when that is not a terminal (a pipe in a script).
func readPassword(file string, stderr io.Writer) (string, error) {
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return "", err
		}
		line, _, _ := strings.Cut(string(data), "\n")
		if line = strings.TrimSuffix(line, "\r"); line == "" {
			return "", fmt.Errorf("%s: the first line is empty", file)
		}
		return line, nil
	}
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return promptPassword(int(f.Fd()), stderr)
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if line == "" {
		return "", errors.New("none given (use --password-file, or write it on standard input)")
	}
	return line, nil
}

// promptPassword asks for the password twice on the terminal fd.
func promptPassword(fd int, stderr io.Writer) (string, error) {
	fmt.Fprint(stderr, "Password: ")
	first, err := term.ReadPassword(fd)
	fmt.Fprintln(stderr)
	if err != nil {
		return "", err
	}
	fmt.Fprint(stderr, "Repeat password: ")
	second, err := term.ReadPassword(fd)
	fmt.Fprintln(stderr)
	if err != nil {
		return "", err
	}
	if string(first) != string(second) {
		return "", errors.New("the two passwords differ")
	}
	return string(first), nil
}
