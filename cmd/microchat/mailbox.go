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
	return subcommand("mailbox", mailboxUsage, map[string]func([]string) int{
		"check": func(args []string) int { return mailboxCheckCmd(ctx, args, stdout, stderr) },
	}, args, stdout, stderr)
}

func mailboxCheckCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("mailbox check", "microchat mailbox check [--config PATH]", stderr)
	configPath := configFlag(fs)
	cfg, code, ok := parseWithConfig(fs, configPath, args, stderr)
	if !ok {
		return code
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
