package webchat

import (
	"bytes"
	"encoding/json"

	"github.com/microdeets/microchat/inbox"
)

// What the widget sees of a message (issue 12, item 5). The widget shows
// only chat conversations, but an email can land in one: the contact's
// answer to our continuity mail or survey, or the answer of a colleague
// they copied (an address on the thread); and an agent's reply to an
// offline contact goes out by email, with the thread's Cc. So a message
// reaches the visitor, over GET /widget/state and /widget/messages and
// in the socket's events, as its text and its attachments, like a chat
// message, and never with:
//
//   - its email envelope (Message.Email: subject, From, To, Cc, notices):
//     the headers of other people's mail and the addresses of the people
//     on the thread are the agents' business;
//   - its HTML (the widget shows text; remote images in it would tell the
//     sender that the page was opened);
//   - the error of a failed send (Message.Error, MessageState.Error): a
//     remote mail server's answer about an address the visitor typed,
//     which need not be theirs;
//   - the delivery report of a bounce (an attachment uploaded by
//     AuthorSystem), which quotes the bounced mail's headers.
//
// The full text, full HTML and raw source are never in a message at all
// (inbox.EmailDetails, EmailRaw: agents' and admins' API only).
//
// An agent's private note (inbox.ChannelNote) never reaches the visitor
// at all: /state and /messages do not read it (inbox.MessageQuery.Contact)
// and its message_added event is not sent (VisitorSees). The visitor's
// events therefore skip the note's seq; the widget takes an event with
// any seq after the last it holds (docs/widget-protocol.md).

// VisitorMessages returns the messages as the widget may see them (see
// VisitorMessage), changing msgs in place.
func VisitorMessages(msgs []inbox.Message) []inbox.Message {
	for i := range msgs {
		msgs[i] = VisitorMessage(msgs[i])
	}
	return msgs
}

// VisitorMessage returns m without what the widget must not see: its
// email envelope, HTML, error, and the delivery reports among its
// attachments.
func VisitorMessage(m inbox.Message) inbox.Message {
	m.Email, m.HTML, m.Error = nil, "", ""
	for i, a := range m.Attachments {
		if a.Uploader == inbox.AuthorSystem {
			// A copy: the slice may be the store's or an event's.
			kept := append([]inbox.Attachment(nil), m.Attachments[:i]...)
			for _, a := range m.Attachments[i+1:] {
				if a.Uploader != inbox.AuthorSystem {
					kept = append(kept, a)
				}
			}
			m.Attachments = kept
			break
		}
	}
	return m
}

// noteKey is the JSON of a private note's channel as encoding/json writes
// a Message; user text cannot contain it, as for hiddenKeys.
var noteKey = []byte(`"channel":"` + inbox.ChannelNote + `"`)

// VisitorSees reports whether the visitor may be sent ev at all: any
// event but the message_added of a private note (inbox.ChannelNote). An
// event without noteKey, the common case, is not decoded; one that holds
// it and does not decode is not sent either.
func VisitorSees(ev *inbox.Event) bool {
	if ev.Type != inbox.EventMessageAdded || !bytes.Contains(ev.Data, noteKey) {
		return true
	}
	var p inbox.MessageAdded
	return ev.Decode(&p) == nil && p.Message.Channel != inbox.ChannelNote
}

// hiddenKeys are the JSON of the fields VisitorMessage clears, as
// encoding/json writes them when they are set (a key's quotes inside a
// JSON string are escaped, so user text cannot contain these): an event
// without any of them is sent as it is, the common case of chat, without
// decoding it.
var hiddenKeys = [][]byte{[]byte(`"email":{`), []byte(`"html":"`), []byte(`"error":"`), []byte(`"uploader":"system"`)}

// VisitorEvent returns ev as the widget may see it: a message_added
// event's message through VisitorMessage, a message_state event without
// its error. Other events, and these when they hold nothing to hide, are
// ev itself; otherwise ev is copied (events are shared by every
// subscriber), and ok is false only if its data does not decode, which
// json.Marshal's output always does: the event must then not be sent.
func VisitorEvent(ev *inbox.Event) (_ *inbox.Event, ok bool) {
	if ev.Type != inbox.EventMessageAdded && ev.Type != inbox.EventMessageState {
		return ev, true
	}
	hidden := false
	for _, k := range hiddenKeys {
		if bytes.Contains(ev.Data, k) {
			hidden = true
			break
		}
	}
	if !hidden {
		return ev, true
	}
	var data []byte
	var err error
	if ev.Type == inbox.EventMessageAdded {
		var p inbox.MessageAdded
		if err = ev.Decode(&p); err == nil {
			p.Message = VisitorMessage(p.Message)
			data, err = json.Marshal(p)
		}
	} else {
		var p inbox.MessageState
		if err = ev.Decode(&p); err == nil {
			p.Error = ""
			data, err = json.Marshal(p)
		}
	}
	if err != nil {
		return nil, false
	}
	out := *ev
	out.Data = data
	return &out, true
}
