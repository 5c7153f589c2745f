package main

import (
	"context"
	"fmt"
	"io"

	"github.com/microdeets/microchat/channels/email"
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

// mailboxCheck logs in to every configured mailbox over IMAP and SMTP and
// prints one line for each thing that works or does not (email.Check);
// it exits non-zero when any failed. A missing IDLE is a warning, not a
// failure: the mailbox is then polled.
func mailboxCheck(ctx context.Context, cfg config.Config, stdout, stderr io.Writer) int {
	if len(cfg.Mailboxes) == 0 {
		fmt.Fprintln(stdout, "no mailbox configured (add one under mailboxes: in the config file)")
		return exitOK
	}
	failed := 0
	for _, mb := range cfg.Mailboxes {
		for _, r := range email.Check(ctx, mb, nil) {
			fmt.Fprintln(stdout, r)
			if r.Failed() {
				failed++
			}
		}
	}
	if failed > 0 {
		fail(stderr, "mailbox check: %d failed; see the FAILED lines", failed)
		return exitFailure
	}
	return exitOK
}
