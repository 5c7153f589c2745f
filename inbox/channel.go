package inbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Channel is one way of reaching a contact: the web chat
// (channels/webchat) or email (channels/email). The Store holds this
// node's channels (Options.Channels, SetChannels) and decides with them,
// inside the transaction that stores an agent reply, which channel the
// reply goes by (spec rule 5); after the commit it hands the reply to
// that channel's Deliver. Each implementation has a compile-time check
// beside it:
//
//	var _ inbox.Channel = (*Channel)(nil)
type Channel interface {
	// Name is ChannelChat or ChannelEmail: the Channel of the messages
	// it carries.
	Name() string
	// Reaches reports whether a reply on this channel can reach c now.
	// It is called inside the transaction that stores the reply, with the
	// contact as that transaction reads it (ID, Name, Email and Online
	// are set): it must be pure and quick, and must not call the Store.
	Reaches(c Contact) bool
	// Deliver is handed each agent message of this channel once it is
	// committed and its event published: a reply by email was committed
	// with its email_outbox row, a chat reply to an offline contact is
	// queued (StateQueued) until SetContactsOnline delivers it. It runs
	// on the store's committing goroutine and must not block (hand slow
	// work to a goroutine of the channel's own); an error is logged, and
	// the message stays as committed.
	Deliver(ctx context.Context, m Message) error
}

// channelSet is the store's channels by name; nil where none is given.
type channelSet struct {
	chat, email Channel
}

func newChannelSet(chs []Channel) (*channelSet, error) {
	cs := &channelSet{}
	for _, ch := range chs {
		if ch == nil {
			return nil, errors.New("inbox: a nil channel")
		}
		var slot *Channel
		switch ch.Name() {
		case ChannelChat:
			slot = &cs.chat
		case ChannelEmail:
			slot = &cs.email
		default:
			return nil, fmt.Errorf("inbox: channel %q: want %q or %q", ch.Name(), ChannelChat, ChannelEmail)
		}
		if *slot != nil {
			return nil, fmt.Errorf("inbox: two %s channels", ch.Name())
		}
		*slot = ch
	}
	return cs, nil
}

// SetChannels replaces the store's channels (Options.Channels): at most
// one of each name, ChannelChat and ChannelEmail. cmd/microchat calls it
// once the channels, which need the store, are built. A batch of replies
// being stored keeps the channels it started with.
//
// Without a chat channel, chat reaches a contact while they are online
// (rule 6, as the store keeps it); without an email channel, no reply
// goes by email (rule 5: no mailbox is configured).
func (s *Store) SetChannels(chs ...Channel) error {
	cs, err := newChannelSet(chs)
	if err != nil {
		return err
	}
	s.chans.Store(cs)
	return nil
}

// channels returns the store's current channels.
func (s *Store) channels() *channelSet { return s.chans.Load() }

// byName returns the channel of a message's Channel, nil if none.
func (cs *channelSet) byName(name string) Channel {
	switch name {
	case ChannelChat:
		return cs.chat
	case ChannelEmail:
		return cs.email
	}
	return nil
}

// chatReaches reports whether a chat reply reaches c now.
func (cs *channelSet) chatReaches(c Contact) bool {
	if cs.chat != nil {
		return cs.chat.Reaches(c)
	}
	return c.Online
}

// ReplyDecision is where an agent reply goes and why (rule 5).
type ReplyDecision struct {
	Channel string `json:"channel"`
	// State is the message's first delivery state: queued when it waits
	// for the contact to come back or for the mailbox to send it.
	State  string `json:"state"`
	Reason string `json:"reason"`
}

// Reply channels an agent may request (NewMessage.Channel of an agent
// message): ReplyAuto (or "") follows rule 5; ChannelChat and ChannelEmail
// are the agent's choice; ChannelNote is a private note, which goes
// nowhere.
const ReplyAuto = "auto"

// ReasonNote is the reason of a private note's decision.
const ReasonNote = "private note"

// noteDecision is where a private note goes: nowhere, so it is sent
// once stored. No Channel is asked: a note must not depend on, nor tell
// anything to, the ways of reaching the contact.
var noteDecision = ReplyDecision{Channel: ChannelNote, State: StateSent, Reason: ReasonNote}

// reasonRetry is the reason of a reply whose client id was already
// stored: it keeps the channel it was stored with.
const reasonRetry = "already stored under this client_id; sent as first decided"

// decide applies rule 5 to a reply to c on the requested channel
// ("", ReplyAuto, ChannelChat, ChannelEmail or ChannelNote). Auto is chat
// if chat reaches c, else email if an email channel exists and reaches c,
// else chat, queued until the contact comes back. An explicit email that
// cannot go is an InvalidError for "channel". A note is noteDecision,
// whatever c and the channels are.
func (cs *channelSet) decide(c Contact, requested string) (ReplyDecision, error) {
	if requested == ChannelNote {
		return noteDecision, nil
	}
	chat := func(reason string) ReplyDecision {
		if cs.chatReaches(c) {
			return ReplyDecision{ChannelChat, StateSent, reason}
		}
		return ReplyDecision{ChannelChat, StateQueued, reason + "; the contact is offline, so it is kept and delivered when they come back"}
	}
	email := ReplyDecision{ChannelEmail, StateQueued, ""}
	switch requested {
	case ChannelChat:
		return chat("chat chosen by the agent"), nil
	case ChannelEmail:
		switch {
		case cs.email == nil:
			return ReplyDecision{}, invalid("channel", "no mailbox is configured to send email")
		case c.Email == "":
			return ReplyDecision{}, invalid("channel", "the contact has no email address")
		case !cs.email.Reaches(c):
			return ReplyDecision{}, invalid("channel", "email cannot reach the contact")
		}
		email.Reason = "email chosen by the agent"
		return email, nil
	case "", ReplyAuto:
		switch {
		case cs.chatReaches(c):
			return chat("the contact is online"), nil
		case cs.email != nil && cs.email.Reaches(c):
			email.Reason = "the contact is offline and has an email address"
			return email, nil
		case c.Email == "":
			return chat("the contact has no email address"), nil
		case cs.email == nil:
			return chat("no mailbox is configured to send email"), nil
		default:
			return chat("email cannot reach the contact"), nil
		}
	}
	return ReplyDecision{}, invalid("channel", "must be auto, chat, email or note")
}

// ReplyChannel says where an agent reply to the conversation would go
// now, and why, for the composer to show before sending: requested is
// as NewMessage.Channel of an agent message. It is a preview: the reply
// itself is decided again, by the same rule, in the transaction that
// stores it (AddReply).
func (s *Store) ReplyChannel(ctx context.Context, conversationID int64, requested string) (ReplyDecision, error) {
	var c Contact
	err := s.rdb.WithContext(ctx).Raw(`SELECT c.id, c.name, c.online, COALESCE(c.email, '') FROM contacts c
		JOIN conversations v ON v.contact_id = c.id WHERE v.id = ?`, conversationID).Row().Scan(&c.ID, &c.Name, &c.Online, &c.Email)
	if errors.Is(err, sql.ErrNoRows) {
		return ReplyDecision{}, ErrNotFound
	}
	if err != nil {
		return ReplyDecision{}, dbErr(err)
	}
	return s.channels().decide(c, requested)
}

// deliver hands the batch's new agent messages to their channels, after
// the commit (Channel.Deliver); a private note goes to none.
func (s *Store) deliver(cs *channelSet, batch []*appendReq) {
	for _, r := range batch {
		if r.err != nil || !r.created || r.in.Author != AuthorAgent || r.msg.Channel == ChannelNote {
			continue
		}
		ch := cs.byName(r.msg.Channel)
		if ch == nil {
			continue
		}
		if err := ch.Deliver(context.Background(), r.msg); err != nil {
			s.log.Warn("handing a reply to its channel", "channel", r.msg.Channel, "message", r.msg.ID, "err", err)
		}
	}
}
