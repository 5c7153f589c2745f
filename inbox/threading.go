package inbox

import (
	"context"
	"encoding/json"
	"errors"
	"hash/fnv"
	"regexp"
	"strings"

	"gorm.io/gorm"
)

// Threading (rule 9) and the identity of a mail's sender (issue 12,
// items 4 and 5).
//
// An incoming mail joins a conversation by, in this order:
//
//  1. its In-Reply-To, then its References from the newest, against every
//     Message-ID Microchat received or sent (email_ids, both directions);
//  2. a conversation token in an address it was delivered to
//     (support+c42-...@example.com), when its mailbox has plus addressing
//     (MailboxInfo.PlusAddressing in Options.Mailboxes);
//  3. a token "[#c42-...]" in its subject;
//
// otherwise it starts a new conversation. Tokens are signed (secret.go):
// a guessed, forged or altered one names no conversation.
//
// A match must agree with the sender, compared case-insensitively on the
// addr-spec: the sender is the conversation's contact (by the contact's
// verified email), or an address already on the thread (From, To or Cc of
// one of its email messages, such as a colleague the customer copied). A
// stranger who quotes someone else's Message-ID or token is not merged
// into that customer's conversation: the next match is tried, and at the
// end the mail starts a conversation of its own. Whatever the From says,
// a mail is the contact's message, never an agent's: mail from an agent's
// own address is a contact message like any other (From is not
// authenticated, and an agent answers from the dashboard).
//
// Identity. Mail from an address belongs to the oldest contact whose
// email is verified as that address, else to a new email-only contact
// (verified: the mail came from it). An address typed into the widget is
// unverified, so a visitor cannot read someone else's mail by typing their
// address. Proof is a reply to mail we sent to the address: a match by
// one of our own Message-IDs (unguessable, and sent only to the
// conversation's addresses) or by a valid token. Such a reply from the
// contact's unverified address marks it verified and continues that
// conversation (the chat the continuity mail or survey came from).
// Automatic mail (an out-of-office answer) proves nothing: its sender did
// not choose to answer. Mail from the address without proof goes to the
// verified contact, in a new email conversation, which agents see and the
// widget does not (the widget shows only its chat conversations:
// CurrentConversation).

// Threaded values (IngestResult.Threaded).
const (
	threadedReferences = "references"
	threadedAddress    = "address"
	threadedSubject    = "subject"
	threadedBounce     = "bounce"
)

// Bounds of the work one mail can cause: References beyond the newest
// maxThreadRefs, tokens beyond maxTokens, and conversations beyond
// maxThreadCandidates are not looked at.
const (
	maxThreadRefs       = 100
	maxTokens           = 10
	maxThreadCandidates = 20
)

// threadHit is a conversation a mail may belong to and how it was found;
// proof says it was found by our own Message-ID or a signed token, which
// only the addresses we wrote to received.
type threadHit struct {
	conversationID int64
	how            string
	proof          bool
}

// threadPick is the conversation a mail joins, locked, and whether the
// mail proves its contact's email (verify).
type threadPick struct {
	conv    Conversation
	contact Contact
	how     string
	verify  bool
}

// referencedIDs returns the Message-IDs a mail answers, in the order they
// are tried: In-Reply-To, then References from the newest; each once.
func referencedIDs(in IncomingEmail) []string {
	var ids []string
	seen := map[string]bool{}
	add := func(id string) {
		if id != "" && !seen[id] && len(ids) < maxThreadRefs {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	for _, id := range in.InReplyTo {
		add(id)
	}
	for i := len(in.References) - 1; i >= 0; i-- {
		add(in.References[i])
	}
	return ids
}

// subjectToken finds "[#c42-<signature>]" in a subject.
var subjectToken = regexp.MustCompile(`(?i)\[#(c[0-9]{1,19}-[a-z2-7]{16})\]`)

// mailTokens returns the conversations named by valid tokens of a mail:
// in the plus part of the addresses it was delivered to (only when its
// mailbox has plus addressing) and in its subject. It runs before the
// mail's transaction: the server secret is read on the writer
// connection, which that transaction holds on SQLite.
func (s *Store) mailTokens(ctx context.Context, in IncomingEmail) (address, subject []int64, err error) {
	if s.plusAddressing(in.Mailbox) {
		for _, r := range in.Recipients {
			local, _, ok := strings.Cut(r, "@")
			if !ok {
				continue
			}
			_, tag, ok := strings.Cut(local, "+")
			if !ok || len(address) >= maxTokens {
				continue
			}
			id, ok, err := s.ParseConversationToken(ctx, tag)
			if err != nil {
				return nil, nil, err
			}
			if ok {
				address = append(address, id)
			}
		}
	}
	for _, m := range subjectToken.FindAllStringSubmatch(in.Subject, maxTokens) {
		id, ok, err := s.ParseConversationToken(ctx, m[1])
		if err != nil {
			return nil, nil, err
		}
		if ok {
			subject = append(subject, id)
		}
	}
	return address, subject, nil
}

// threadHits lists the conversations a mail may belong to, in the order
// of rule 9.
func threadHits(tx *gorm.DB, in IncomingEmail, addressTokens, subjectTokens []int64) ([]threadHit, error) {
	var hits []threadHit
	if ids := referencedIDs(in); len(ids) > 0 {
		keys := make([]string, len(ids))
		for i, id := range ids {
			keys[i] = emailKey(id)
		}
		var rows []emailIDRow
		if err := tx.Where(`"key" IN ? AND conversation_id IS NOT NULL`, keys).Find(&rows).Error; err != nil {
			return nil, err
		}
		byKey := make(map[string]emailIDRow, len(rows))
		for _, r := range rows {
			byKey[r.Key] = r
		}
		for _, k := range keys {
			if r, ok := byKey[k]; ok {
				hits = append(hits, threadHit{*r.ConversationID, threadedReferences, r.Direction == directionOut})
			}
		}
	}
	for _, id := range addressTokens {
		hits = append(hits, threadHit{id, threadedAddress, true})
	}
	for _, id := range subjectTokens {
		hits = append(hits, threadHit{id, threadedSubject, true})
	}
	return hits, nil
}

// pickThread returns the first conversation of hits that the sender
// agrees with (see the top of this file), locked; false if none does.
// Automatic mail proves nothing.
func (s *Store) pickThread(tx *gorm.DB, hits []threadHit, sender string, auto bool) (threadPick, bool, error) {
	proof := map[int64]bool{}
	for _, h := range hits {
		if h.proof && !auto {
			proof[h.conversationID] = true
		}
	}
	tried := map[int64]bool{}
	for _, h := range hits {
		if tried[h.conversationID] || len(tried) >= maxThreadCandidates {
			continue
		}
		tried[h.conversationID] = true
		var convs []Conversation
		if err := tx.Where("id = ?", h.conversationID).Limit(1).Find(&convs).Error; err != nil {
			return threadPick{}, false, err
		}
		if len(convs) == 0 {
			continue // a token of a deleted conversation
		}
		var contact Contact
		if err := tx.First(&contact, convs[0].ContactID).Error; err != nil {
			return threadPick{}, false, err
		}
		agree, verify, err := senderAgrees(tx, sender, convs[0].ID, contact, proof[h.conversationID])
		if err != nil {
			return threadPick{}, false, err
		}
		if !agree {
			continue
		}
		if verify {
			// The mail will mark the contact's email verified (ingest):
			// the contact is locked first, then the conversation, as
			// every transaction that locks both does (doc.go); in the
			// other order, a reply being stored or the contact coming
			// online (locking the contact, then the conversation) and
			// this mail would wait for each other. Decided again under
			// the lock.
			if contact, err = lockContact(tx, contact.ID); errors.Is(err, ErrNotFound) {
				continue // erased meanwhile
			} else if err != nil {
				return threadPick{}, false, err
			}
			if agree, verify, err = senderAgrees(tx, sender, convs[0].ID, contact, proof[h.conversationID]); err != nil {
				return threadPick{}, false, err
			}
			if !agree {
				continue
			}
			s.testBetweenLocks()
		}
		// Locked only now: a conversation that is not joined is never
		// locked, and the status is read under the lock.
		conv, err := lockConversation(tx, h.conversationID)
		if errors.Is(err, ErrNotFound) {
			continue // deleted meanwhile
		} else if err != nil {
			return threadPick{}, false, err
		}
		return threadPick{conv: conv, contact: contact, how: h.how, verify: verify}, true, nil
	}
	return threadPick{}, false, nil
}

// senderAgrees reports whether mail from sender may join the conversation
// of contact, and whether it proves the contact's email (verify). The
// contact's own address counts once verified, or with proof; any other
// address counts when it is already on the thread. The contact's
// unverified address does not count as on the thread: our own mail to
// it put it there.
func senderAgrees(tx *gorm.DB, sender string, conversationID int64, contact Contact, proof bool) (agree, verify bool, err error) {
	if contact.Email != "" && strings.EqualFold(contact.Email, sender) {
		switch {
		case contact.EmailVerified:
			return true, false, nil
		case proof:
			return true, true, nil
		}
		return false, false, nil
	}
	on, err := onThread(tx, conversationID, sender)
	return on, false, err
}

// onThread reports whether addr is the From, a To or a Cc of an email
// message of the conversation.
func onThread(tx *gorm.DB, conversationID int64, addr string) (bool, error) {
	var rows []struct{ FromAddr, ToAddrs, CcAddrs string }
	if err := tx.Raw(`SELECT em.from_addr, em.to_addrs, em.cc_addrs FROM email_messages em
		JOIN messages m ON m.id = em.message_id WHERE m.conversation_id = ?`, conversationID).Scan(&rows).Error; err != nil {
		return false, err
	}
	for _, r := range rows {
		var from Address
		var to, cc []Address
		// A column that does not decode holds no address to agree with.
		_ = json.Unmarshal([]byte(r.FromAddr), &from)
		_ = json.Unmarshal([]byte(r.ToAddrs), &to)
		_ = json.Unmarshal([]byte(r.CcAddrs), &cc)
		for _, a := range append(append(to, cc...), from) {
			if a.Addr != "" && strings.EqualFold(a.Addr, addr) {
				return true, nil
			}
		}
	}
	return false, nil
}

// contactForSender returns the contact that mail from the address
// belongs to: the oldest whose email is verified as it, else a new
// email-only contact, verified (the mail came from it), named by the
// From's display name.
func (s *Store) contactForSender(tx *gorm.DB, from Address) (Contact, error) {
	if tx.Dialector.Name() == "postgres" {
		// Two mails from a new address at once (two mailboxes) make
		// one contact: the second waits for the first's commit, then
		// finds it.
		h := fnv.New64a()
		h.Write([]byte("contact email\x00" + from.Addr))
		if err := tx.Exec(`SELECT pg_advisory_xact_lock(?)`, int64(h.Sum64())).Error; err != nil {
			return Contact{}, err
		}
	}
	var found []Contact
	if err := tx.Where("email = ? AND email_verified = ?", from.Addr, true).Order("id").Limit(1).Find(&found).Error; err != nil {
		return Contact{}, err
	}
	if len(found) > 0 {
		return found[0], nil
	}
	c := Contact{Name: from.Name, Email: from.Addr, EmailVerified: true, CreatedAt: s.now()}
	if err := tx.Create(&c).Error; err != nil {
		return Contact{}, err
	}
	return c, nil
}

// plusAddressing reports whether the mailbox of that config name receives
// mail sent to its address with a "+tag" (config plus_addressing), so
// that a conversation token there (support+c42-...@example.com) threads
// the mail (rule 9).
func (s *Store) plusAddressing(mailbox string) bool {
	for _, mb := range s.opts.Mailboxes {
		if mb.Name == mailbox {
			return mb.PlusAddressing
		}
	}
	return false
}
