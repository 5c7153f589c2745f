package inbox

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Continuity and the survey by email (issue 12 item 7):
//
//   - Rule 7: the agent chat messages that an offline contact has not read
//     after a delay go to their email address, one mail per conversation
//     (EnqueueDigests, a row of kind digest in the outbox carrying them):
//     when the oldest of them is due, the digest carries every one unread
//     then, and those written later wait their own delay for the next.
//     Those are the chat messages written while the contact was online
//     (sent or delivered) who then left, and those written while they
//     were offline (queued: the agent chose chat, or email could not
//     reach them then). A digest carries a message once; a queued one
//     stays queued for the chat, and turns sent when the contact comes
//     back (SetContactsOnline). The address need not be verified:
//     answering that mail is how a visitor proves it (item 5).
//   - Rule 3: when the last participant leaves, a contact who is offline,
//     or whose conversation is one the widget does not show (it came by
//     email), is sent the survey: five signed, single-use links, one per
//     score, to a page that records the rating (RateByToken).
//   - No automatic mail answers automatic mail (issue 12 item 8, RFC 3834
//     section 2): neither is sent while the conversation's latest contact
//     message is an auto-reply, a bounce or list mail
//     (email_messages.auto). Nor to an address whose last mail from us
//     in the conversation was refused or bounced, until the contact
//     writes again (automaticMailStop).
//   - Both go where the contact asked answers to go (recipient: the
//     Reply-To of their newest mail), as replies do.

// digestHorizon is how old an unread agent chat message may be and still
// go out in a digest: continuity mail is about the chat that just ended,
// and the bound keeps EnqueueDigests' scan to the messages of one week
// (messages_continuity), however many old chats ended unread.
const digestHorizon = 7 * 24 * time.Hour

// EnqueueDigests enqueues the continuity mail of rule 7: for each
// conversation whose contact is offline and has an email address, and
// whose oldest agent chat message not read (queued, sent or delivered)
// and not carried by a digest yet was created at least after ago (and
// within digestHorizon before that), one outbox row of kind digest
// carrying all those messages, the ones not due yet too: one mail per
// conversation, not one per message. The messages written after it wait
// their own delay for the next digest. It returns how many rows it
// enqueued.
//
// A conversation gets none while a digest of it is still pending or
// sending (the SMTP server is away, say): the messages that come due
// meanwhile go in the next digest once that one is sent or given up, so
// that digests never overtake one another. Nor while the rules of
// automatic mail hold it back (automaticMailStop: the latest contact
// message is automatic mail, issue 12 item 8; the last mail to the
// address failed). With no mailbox configured nothing is enqueued.
//
// It is meant to run every second on every node: the scan reads the
// partial index messages_continuity (unread agent chat messages by time),
// and each conversation found is enqueued in its own transaction that
// locks it and looks again, so that two nodes never enqueue the same
// messages twice.
func (s *Store) EnqueueDigests(ctx context.Context, after time.Duration) (int, error) {
	if len(s.opts.Mailboxes) == 0 {
		return 0, nil
	}
	if after < 0 {
		return 0, invalid("after", "must not be negative")
	}
	cutoff := s.now().Add(-after)
	from := cutoff.Add(-digestHorizon)
	var convs []int64
	if err := s.rdb.WithContext(ctx).Raw(digestScan, from, cutoff).Scan(&convs).Error; err != nil {
		return 0, dbErr(err)
	}
	n := 0
	for _, id := range convs {
		// Looked at without a lock first: a conversation held back
		// stays in the scan, and costs no write transaction each second.
		held, err := s.digestHeld(s.rdb.WithContext(ctx), id)
		if err != nil {
			return n, dbErr(err)
		}
		if held {
			continue
		}
		queued, err := s.enqueueDigest(ctx, id, from)
		if err != nil {
			return n, err
		}
		if queued {
			n++
		}
	}
	return n, nil
}

// digestCandidates is the condition on messages m of the partial index
// messages_continuity (migration 0008), spelled as the index spells it so
// that SQLite sees that the index applies, and the messages no digest
// carried yet, created after the one argument.
const digestCandidates = `m.author = 'agent' AND m.channel = 'chat' AND m.state IN ('queued', 'sent', 'delivered')
	AND m.created_at > ?
	AND NOT EXISTS (SELECT 1 FROM email_outbox_messages o WHERE o.message_id = m.id)`

// digestScan finds the conversations with messages due for a digest:
// created between its two arguments.
const digestScan = `SELECT DISTINCT m.conversation_id FROM messages m
	JOIN conversations c ON c.id = m.conversation_id
	JOIN contacts ct ON ct.id = c.contact_id
	WHERE ` + digestCandidates + ` AND m.created_at <= ? AND NOT ct.online AND ct.email <> ''
	ORDER BY m.conversation_id`

// digestHeld reports whether the conversation may not get a digest now:
// one of it is still pending or sending, or automaticMailStop holds
// automatic mail to its recipient back.
func (s *Store) digestHeld(db *gorm.DB, conversationID int64) (bool, error) {
	var inFlight []int64
	if err := db.Raw(`SELECT id FROM email_outbox WHERE conversation_id = ? AND kind = ? AND state IN (?, ?) LIMIT 1`,
		conversationID, OutboundDigest, outboxPending, outboxSending).Scan(&inFlight).Error; err != nil {
		return false, err
	}
	if len(inFlight) > 0 {
		return true, nil
	}
	to, err := s.recipient(db, conversationID)
	if err != nil || to.Addr == "" {
		return true, err
	}
	stop, err := automaticMailStop(db, conversationID, to.Addr, 0)
	return stop != "", err
}

// enqueueDigest enqueues one conversation's digest, carrying all its
// messages for one created after from, if it still has one due and may
// get it once locked.
func (s *Store) enqueueDigest(ctx context.Context, conversationID int64, from time.Time) (bool, error) {
	queued := false
	err := s.write(ctx, func(tx *gorm.DB, _ *[]Event) error {
		queued = false
		conv, err := lockConversation(tx, conversationID)
		if errors.Is(err, ErrNotFound) {
			return errNoop // deleted since
		} else if err != nil {
			return err
		}
		var contact Contact
		if err := tx.First(&contact, conv.ContactID).Error; err != nil {
			return err
		}
		if contact.Online || contact.Email == "" {
			return errNoop
		}
		if held, err := s.digestHeld(tx, conversationID); err != nil || held {
			return orNoop(err)
		}
		var ids []int64
		if err := tx.Raw(`SELECT m.id FROM messages m WHERE m.conversation_id = ? AND `+digestCandidates+` ORDER BY m.seq`,
			conversationID, from).Scan(&ids).Error; err != nil {
			return err
		}
		if len(ids) == 0 {
			return errNoop
		}
		if _, err := s.enqueueOutbox(tx, OutboundDigest, conversationID, nil, ids); err != nil {
			return err
		}
		queued = true
		return nil
	})
	return queued, err
}

// orNoop is err, or errNoop when there is none: a transaction that found
// nothing to do.
func orNoop(err error) error {
	if err == nil {
		return errNoop
	}
	return err
}

// latestContactAuto reports whether the conversation's latest contact
// message is automatic mail (email_messages.auto: an auto-reply, a
// bounce, list mail), which no automatic mail of ours may answer.
func latestContactAuto(db *gorm.DB, conversationID int64) (bool, error) {
	var autos []bool
	err := db.Raw(`SELECT COALESCE(em.auto, false) FROM messages m LEFT JOIN email_messages em ON em.message_id = m.id
		WHERE m.conversation_id = ? AND m.author = ? ORDER BY m.seq DESC LIMIT 1`, conversationID, AuthorContact).
		Scan(&autos).Error
	return len(autos) > 0 && autos[0], err
}

// enqueueSurvey enqueues the survey mail of a conversation just closed
// (rule 3), in the transaction that closed it, when the contact has an
// email address and the widget cannot offer it: the contact is offline,
// or the conversation came by email (the widget shows only its chat). Not
// with no mailbox configured, nor when automaticMailStop holds automatic
// mail to the recipient back (after automatic mail, to an address that
// failed).
func (s *Store) enqueueSurvey(tx *gorm.DB, conversationID int64) error {
	if len(s.opts.Mailboxes) == 0 {
		return nil
	}
	var to []struct {
		Channel string
		Online  bool
		Email   string
	}
	// The contact is read, not locked: the conversation is locked
	// already, and locking the contact after it would reverse the order
	// of the transactions that lock both (contacts first: replies,
	// presence). No lock is needed either: unlike a queued reply, a
	// survey has nothing that coming online would deliver, so the
	// contact as read now is as good as the contact at the commit.
	if err := tx.Raw(`SELECT c.channel, ct.online, ct.email FROM conversations c JOIN contacts ct ON ct.id = c.contact_id
		WHERE c.id = ?`, conversationID).Scan(&to).Error; err != nil {
		return err
	}
	if len(to) == 0 || to[0].Email == "" || (to[0].Online && to[0].Channel == ChannelChat) {
		return nil
	}
	rcpt, err := s.recipient(tx, conversationID)
	if err != nil || rcpt.Addr == "" {
		return err
	}
	if stop, err := automaticMailStop(tx, conversationID, rcpt.Addr, 0); err != nil || stop != "" {
		return err
	}
	_, err = s.enqueueOutbox(tx, OutboundSurvey, conversationID, nil, nil)
	return err
}

// Rating links. A survey mail carries five links, base_url + "/rate/" +
// token, one per score. A token is "r<conversation>-<survey>-<score>-<sig>"
// with sig the signature (Store.Sign) of the three numbers, so that none
// can be made or altered without the server secret; survey is the survey's
// outbox row, whose rated_at makes its links single-use: the first one
// used rates, and every link of that mail is spent.

// RatingLink is what a valid rating link says: rate ConversationID with
// Score (1 to 5).
type RatingLink struct {
	ConversationID int64 `json:"conversation_id"`
	Score          int   `json:"score"`
	surveyID       int64
}

// errRatingUsed answers a rating link used before.
var errRatingUsed = &ConflictError{Field: "token", Reason: "this rating link was already used"}

func (s *Store) ratingTokens(ctx context.Context, conversationID, surveyID int64) ([]string, error) {
	c, sv := strconv.FormatInt(conversationID, 10), strconv.FormatInt(surveyID, 10)
	out := make([]string, 0, 5)
	for score := 1; score <= 5; score++ {
		sc := strconv.Itoa(score)
		sig, err := s.Sign(ctx, "rating", c, sv, sc)
		if err != nil {
			return nil, err
		}
		out = append(out, "r"+c+"-"+sv+"-"+sc+"-"+sig)
	}
	return out, nil
}

// parseRatingToken checks a token's form and signature; anything else is
// ErrNotFound, as for an unknown link.
func (s *Store) parseRatingToken(ctx context.Context, token string) (RatingLink, error) {
	rest, ok := strings.CutPrefix(strings.ToLower(token), "r")
	parts := strings.Split(rest, "-")
	if !ok || len(parts) != 4 || len(parts[3]) != tokenSigLen {
		return RatingLink{}, ErrNotFound
	}
	var nums [3]int64
	for i, p := range parts[:3] {
		n, err := strconv.ParseInt(p, 10, 64)
		if err != nil || n <= 0 || strconv.FormatInt(n, 10) != p {
			return RatingLink{}, ErrNotFound
		}
		nums[i] = n
	}
	if nums[2] > 5 {
		return RatingLink{}, ErrNotFound
	}
	good, err := s.Verify(ctx, parts[3], "rating", parts[0], parts[1], parts[2])
	if err != nil {
		return RatingLink{}, err
	}
	if !good {
		return RatingLink{}, ErrNotFound
	}
	return RatingLink{ConversationID: nums[0], surveyID: nums[1], Score: int(nums[2])}, nil
}

// CheckRatingLink says what a rating link would record, without using it:
// ErrNotFound for a token that is malformed, altered or of a survey that
// no longer exists; a ConflictError (ErrConflict) for one already used.
func (s *Store) CheckRatingLink(ctx context.Context, token string) (RatingLink, error) {
	l, err := s.parseRatingToken(ctx, token)
	if err != nil {
		return RatingLink{}, err
	}
	var survey []outboxRow
	if err := s.rdb.WithContext(ctx).Where("id = ? AND conversation_id = ? AND kind = ?",
		l.surveyID, l.ConversationID, OutboundSurvey).Find(&survey).Error; err != nil {
		return RatingLink{}, dbErr(err)
	}
	switch {
	case len(survey) == 0:
		return RatingLink{}, ErrNotFound
	case survey[0].RatedAt != nil:
		return RatingLink{}, errRatingUsed
	}
	return l, nil
}

// RateByToken records the rating of a survey link (rule 3) with an
// optional comment, as Rate does, and spends the survey's links in the
// same transaction. ErrNotFound: the token is malformed, altered or its
// survey or conversation is gone. A ConflictError (ErrConflict): a link
// of that survey was used already; nothing changes.
func (s *Store) RateByToken(ctx context.Context, token, comment string) (Rating, error) {
	l, err := s.parseRatingToken(ctx, token)
	if err != nil {
		return Rating{}, err
	}
	if comment, err = checkRating(l.Score, comment); err != nil {
		return Rating{}, err
	}
	var r Rating
	err = s.write(ctx, func(tx *gorm.DB, evs *[]Event) error {
		res := tx.Model(&outboxRow{}).Where("id = ? AND conversation_id = ? AND kind = ? AND rated_at IS NULL",
			l.surveyID, l.ConversationID, OutboundSurvey).Update("rated_at", s.now())
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			var n int64
			if err := tx.Model(&outboxRow{}).Where("id = ? AND conversation_id = ? AND kind = ?",
				l.surveyID, l.ConversationID, OutboundSurvey).Count(&n).Error; err != nil {
				return err
			}
			if n > 0 {
				return errRatingUsed
			}
			return ErrNotFound
		}
		var err error
		r, err = s.rate(tx, l.ConversationID, l.Score, comment, evs)
		return err
	})
	return r, err
}
