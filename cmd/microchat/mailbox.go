package main

import (
	"context"
	"fmt"
	"io"

	"github.com/microdeets/microchat/config"
)

const mailboxUsage = `Usage:
  microchat mailbox check [--config PATH]
`

func mailboxCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, mailboxUsage)
		return exitUsage
	}
	switch args[0] {
	case "check":
		return mailboxCheckCmd(ctx, args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, mailboxUsage)
		return exitOK
	}
	fmt.Fprintf(stderr, "microchat: unknown command \"mailbox %s\"\n%s", args[0], mailboxUsage)
	return exitUsage
}

func mailboxCheckCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("mailbox check", "microchat mailbox check [--config PATH]", stderr)
	configPath := configFlag(fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	cfg, ok := loadConfig(*configPath, stderr)
	if !ok {
		return exitUsage
	}
	return mailboxCheck(ctx, cfg, stdout, stderr)
}

// mailboxCheck logs in to every configured mailbox and says what works.
// The email channel does not exist yet: this says so, and the email issue
// replaces this function.
func mailboxCheck(_ context.Context, cfg config.Config, stdout, stderr io.Writer) int {
	if len(cfg.Mailboxes) == 0 {
		fmt.Fprintln(stdout, "no mailbox configured (add one under mailboxes: in the config file)")
		return exitOK
	}
	fail(stderr, "mailbox check is not available in this build yet")
	return exitUnavailable
}
