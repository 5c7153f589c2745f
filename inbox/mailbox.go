package inbox

import "strings"

// OwnMailbox returns the mailbox of mbs whose address addr is: the same
// addr-spec compared case-insensitively, or a plus-addressed variant of it
// ("support+c42-...@example.com" is support@example.com's, whether or not
// the mailbox has plus addressing: its server may deliver it all the same).
// Mail From such an address is our own coming back, and mail To it comes
// back to us: either way a mail loop (issue 12 item 8), which IngestEmail
// and ClaimOutbox stop. addr is a bare address, "support@example.com".
func OwnMailbox(mbs []MailboxInfo, addr string) (MailboxInfo, bool) {
	addr = strings.ToLower(strings.TrimSpace(addr))
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 {
		return MailboxInfo{}, false
	}
	local, domain := addr[:at], addr[at:]
	for _, mb := range mbs {
		own := strings.ToLower(mb.Address)
		i := strings.LastIndexByte(own, '@')
		if i <= 0 || own[i:] != domain {
			continue
		}
		if local == own[:i] || strings.HasPrefix(local, own[:i]+"+") {
			return mb, true
		}
	}
	return MailboxInfo{}, false
}
