package web

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// newMailEnv is a server whose store has the mailbox "support".
func newMailEnv(t *testing.T, url string) *env {
	t.Helper()
	store := inboxtest.Open(t, url, &inbox.Options{Mailboxes: []inbox.MailboxInfo{{Name: "support", Address: "support@example.com"}}})
	return newEnvStore(t, store, nil)
}

var mailSeq atomic.Int64

// testMail is a parsed mail to support@example.com, as the IMAP ingest
// hands it to the store, with a raw source to match.
func testMail(from, subject, text string) inbox.IncomingEmail {
	id := fmt.Sprintf("m%d.%d@mua.test", mailSeq.Add(1), time.Now().UnixNano())
	raw := []byte(fmt.Sprintf("From: %s\r\nTo: support@example.com\r\nSubject: %s\r\nMessage-ID: <%s>\r\n\r\n%s\r\n", from, subject, id, text))
	sum := sha256.Sum256(raw)
	return inbox.IncomingEmail{Mailbox: "support", Folder: "INBOX", MessageID: id, RawHash: hex.EncodeToString(sum[:]),
		From: inbox.Address{Addr: from}, To: []inbox.Address{{Addr: "support@example.com"}},
		Recipients: []string{"support@example.com"}, Subject: subject, Text: text, FullText: text, Raw: raw}
}

// ingest stores a mail as the IMAP ingest does.
func (e *env) ingest(in inbox.IncomingEmail) inbox.IngestResult {
	e.t.Helper()
	res, err := e.store.IngestEmail(context.Background(), in)
	if err != nil || res.Duplicate {
		e.t.Fatalf("IngestEmail(%s) = %+v, %v", in.MessageID, res, err)
	}
	return res
}

// scriptFree fails if sanitized HTML kept anything that runs script.
func scriptFree(t *testing.T, what, html string) {
	t.Helper()
	lower := strings.ToLower(html)
	for _, bad := range []string{"<script", "onerror", "onmouseover", "javascript:", "alert("} {
		if strings.Contains(lower, bad) {
			t.Fatalf("%s = %q, holds %q", what, html, bad)
		}
	}
}

// messagePathOf is the API path of a message.
func messagePathOf(conversationID, messageID int64) string {
	return "/api/v1/conversations/" + itoa64(conversationID) + "/messages/" + itoa64(messageID)
}

// wantDownload fails unless r is the raw source raw, offered as a
// download named name and never rendered.
func wantDownload(t *testing.T, r *result, name string, raw []byte) {
	t.Helper()
	r.want(http.StatusOK)
	h := r.header
	if string(r.body) != string(raw) || h.Get("Content-Type") != "message/rfc822" ||
		h.Get("Content-Disposition") != "attachment; filename="+name || h.Get("X-Content-Type-Options") != "nosniff" ||
		!strings.HasPrefix(h.Get("Content-Security-Policy"), "sandbox") {
		t.Fatalf("%s = %v %q, want %q as the download %s", r.req, h, r.body, raw, name)
	}
}

// An email message's envelope is in the thread, the list and the
// agents' events (rule 8); its details are one GET away for agents, with
// the HTML sanitized; its raw source is a download for admins only; a
// chat message, an unknown one, or one of another conversation is 404.
func TestEmailEnvelopeAPI(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newMailEnv(t, url)
		e.agent("ada@example.com", inbox.RoleAdmin)
		alice := e.agent("alice@example.com", inbox.RoleAgent)
		admin, agent, nobody := e.login("ada@example.com"), e.login("alice@example.com"), e.client()
		sock := e.agentSock(alice)

		in := testMail("ann@customer.test", "Printer broken", "It is broken.")
		in.From.Name = "Ann"
		in.Cc = []inbox.Address{{Name: "Dave", Addr: "dave@customer.test"}}
		in.ReplyTo = &inbox.Address{Name: "Ann at Work", Addr: "ann.work@work.test"}
		in.InReplyTo = []string{"b.1@elsewhere.test"}
		in.References = []string{"a.0@elsewhere.test", "b.1@elsewhere.test"}
		in.FullText = "It is broken.\n\n> On Monday you wrote:\n> hello"
		in.HTML = `<p>It is <b>broken</b></p><script>alert(1)</script><img src="x" onerror="alert(2)"><a href="javascript:alert(3)">link</a>`
		in.FullHTML = in.HTML + `<blockquote onmouseover="alert(4)">On Monday you wrote</blockquote>`
		in.Auto, in.AutoReason = true, "Auto-Submitted: auto-replied"
		in.Notices = []string{"a part in charset x-unknown was kept as far as it could be read"}
		res := e.ingest(in)
		conv, mid := res.ConversationID, res.MessageID
		chat := e.conversation("Vic", "")
		chatMsg := e.contactSays(chat.ID, "hello by chat")

		// The agents' socket: the message_added event carries the envelope.
		f := agentNext(t, sock, "event", func(f agentFrame) bool {
			return f.Event.Type == inbox.EventMessageAdded && f.Event.ConversationID == conv
		})
		checkEnvelope := func(where string, m inbox.Message) {
			t.Helper()
			em := m.Email
			if em == nil || em.Subject != "Printer broken" || em.From != (inbox.Address{Name: "Ann", Addr: "ann@customer.test"}) ||
				len(em.To) != 1 || em.To[0].Addr != "support@example.com" || len(em.Cc) != 1 || em.Cc[0].Addr != "dave@customer.test" ||
				!em.Trimmed || !em.Auto || len(em.Notices) != 1 {
				t.Fatalf("%s: message %d Email = %+v, want the envelope", where, m.ID, em)
			}
			if m.Channel != inbox.ChannelEmail || m.Text != "It is broken." || !strings.Contains(m.HTML, "<b>broken</b>") {
				t.Fatalf("%s: message = %+v", where, m)
			}
			scriptFree(t, where+": html", m.HTML)
		}
		checkEnvelope("agent socket", addedMessage(t, f.Event))

		// The thread, the replayed events, the list and the conversation.
		var page inbox.MessagePage
		agent.do("GET", "/api/v1/conversations/"+itoa64(conv)+"/messages", nil).want(http.StatusOK).decode(&page)
		if len(page.Messages) != 1 {
			t.Fatalf("messages = %+v", page)
		}
		checkEnvelope("GET messages", page.Messages[0])
		var evs eventList
		agent.do("GET", "/api/v1/conversations/"+itoa64(conv)+"/events?after=0", nil).want(http.StatusOK).decode(&evs)
		for _, ev := range evs.Events {
			if ev.Type == inbox.EventMessageAdded {
				checkEnvelope("GET events", addedMessage(t, &ev))
			}
		}
		var chatPage inbox.MessagePage
		agent.do("GET", "/api/v1/conversations/"+itoa64(chat.ID)+"/messages", nil).want(http.StatusOK).decode(&chatPage)
		if len(chatPage.Messages) != 1 || chatPage.Messages[0].Email != nil {
			t.Fatalf("chat messages = %+v, want no envelope", chatPage)
		}
		var list conversationList
		agent.do("GET", "/api/v1/conversations?column=open", nil).want(http.StatusOK).decode(&list)
		seen := 0
		for _, it := range list.Items {
			switch it.ID {
			case conv:
				seen++
				if !it.HasEmail || it.LastMessage == nil {
					t.Fatalf("list item %+v, want has_email and the last message", it)
				}
				checkEnvelope("list", *it.LastMessage)
			case chat.ID:
				seen++
				if it.HasEmail || it.LastMessage == nil || it.LastMessage.Email != nil {
					t.Fatalf("chat list item %+v, want no envelope", it)
				}
			}
		}
		if seen != 2 {
			t.Fatalf("list = %+v, want both conversations", list.Items)
		}
		var item inbox.ConversationItem
		agent.do("GET", "/api/v1/conversations/"+itoa64(conv), nil).want(http.StatusOK).decode(&item)
		if !item.HasEmail || item.Subject != "Printer broken" {
			t.Fatalf("conversation = %+v, want has_email", item)
		}

		// The details: every field, under its documented name.
		r := agent.do("GET", messagePathOf(conv, mid)+"/email", nil).want(http.StatusOK)
		var keys map[string]any
		r.decode(&keys)
		for _, k := range []string{"message_id", "conversation_id", "mailbox", "header_id", "in_reply_to", "references", "reply_to", "subject",
			"from", "to", "cc", "trimmed", "auto", "notices", "full_text", "full_html", "auto_reason", "raw_size", "created_at"} {
			if _, ok := keys[k]; !ok {
				t.Fatalf("GET email = %s, has no %q", r.body, k)
			}
		}
		var d inbox.EmailDetails
		r.decode(&d)
		if d.MessageID != mid || d.ConversationID != conv || d.Mailbox != "support" || d.HeaderID != in.MessageID ||
			!slices.Equal(d.InReplyTo, in.InReplyTo) || !slices.Equal(d.References, in.References) ||
			d.Subject != "Printer broken" || d.From.Addr != "ann@customer.test" || len(d.Cc) != 1 || d.Cc[0].Name != "Dave" ||
			d.ReplyTo == nil || *d.ReplyTo != *in.ReplyTo ||
			d.FullText != in.FullText || !d.Auto || d.AutoReason != in.AutoReason || d.RawSize != int64(len(in.Raw)) ||
			!slices.Equal(d.Notices, in.Notices) || !strings.Contains(d.FullHTML, "On Monday you wrote") {
			t.Fatalf("GET email = %+v", d)
		}
		scriptFree(t, "full_html", d.FullHTML)
		admin.do("GET", messagePathOf(conv, mid)+"/email", nil).want(http.StatusOK)

		// The raw source: admins only, a download.
		wantDownload(t, admin.do("GET", messagePathOf(conv, mid)+"/raw", nil), "message-"+itoa64(mid)+".eml", in.Raw)
		agent.do("GET", messagePathOf(conv, mid)+"/raw", nil).want(http.StatusForbidden)

		// Access and the 404s.
		for _, suffix := range []string{"/email", "/raw"} {
			nobody.do("GET", messagePathOf(conv, mid)+suffix, nil).want(http.StatusUnauthorized)
			for _, path := range []string{
				messagePathOf(chat.ID, chatMsg.ID), // a chat message
				messagePathOf(chat.ID, mid),        // the email, under another conversation
				messagePathOf(conv, chatMsg.ID),    // another conversation's message
				messagePathOf(conv, mid+1000),      // no such message
				messagePathOf(conv+1000, mid),      // no such conversation
				"/api/v1/conversations/" + itoa64(conv) + "/messages/x" + itoa64(mid),
				"/api/v1/conversations/" + itoa64(conv) + "/messages/-" + itoa64(mid),
			} {
				admin.do("GET", path+suffix, nil).want(http.StatusNotFound).apiErr()
			}
		}
	})
}

// The quarantine: admins list it (without the raw sources) and download
// each mail raw; an agent is refused, and so is a request without a
// session.
func TestQuarantineAPI(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newMailEnv(t, url)
		e.agent("ada@example.com", inbox.RoleAdmin)
		e.agent("alice@example.com", inbox.RoleAgent)
		admin, agent, nobody := e.login("ada@example.com"), e.login("alice@example.com"), e.client()

		var list quarantineList
		admin.do("GET", "/api/v1/quarantine", nil).want(http.StatusOK).decode(&list)
		if list.Emails == nil || len(list.Emails) != 0 {
			t.Fatalf("empty quarantine = %+v, want emails: []", list)
		}

		ctx := context.Background()
		raws := [][]byte{
			[]byte("From: <>\r\nContent-Type: multipart/mixed; boundary=\"x\r\n\r\n--x\r\n"),
			[]byte("Content-Type: text/html\r\n\r\n<html><script>alert(1)</script></html>\r\n"),
		}
		var stored []inbox.QuarantinedEmail
		for i, raw := range raws {
			q, err := e.store.Quarantine(ctx, inbox.QuarantinedEmail{Mailbox: "support", Folder: "INBOX", UIDValidity: 7,
				UID: uint32(10 + i), Reason: fmt.Sprintf("reason %d", i), Raw: raw})
			if err != nil {
				t.Fatalf("Quarantine() = %v", err)
			}
			stored = append(stored, q)
		}

		r := admin.do("GET", "/api/v1/quarantine", nil).want(http.StatusOK)
		r.decode(&list)
		if len(list.Emails) != 2 || list.Emails[0].ID != stored[1].ID || list.Emails[1].ID != stored[0].ID {
			t.Fatalf("quarantine = %+v, want both, the newest first", list)
		}
		if q := list.Emails[1]; q.Mailbox != "support" || q.Folder != "INBOX" || q.UIDValidity != 7 || q.UID != 10 ||
			q.Reason != "reason 0" || q.Size != int64(len(raws[0])) || q.CreatedAt.IsZero() {
			t.Fatalf("quarantined = %+v", q)
		}
		if strings.Contains(string(r.body), "raw") || strings.Contains(string(r.body), "boundary") {
			t.Fatalf("GET quarantine = %s, carries raw sources", r.body)
		}
		for i, q := range stored {
			path := "/api/v1/quarantine/" + itoa64(q.ID) + "/raw"
			wantDownload(t, admin.do("GET", path, nil), "quarantine-"+itoa64(q.ID)+".eml", raws[i])
			agent.do("GET", path, nil).want(http.StatusForbidden)
			nobody.do("GET", path, nil).want(http.StatusUnauthorized)
		}
		agent.do("GET", "/api/v1/quarantine", nil).want(http.StatusForbidden)
		nobody.do("GET", "/api/v1/quarantine", nil).want(http.StatusUnauthorized)
		admin.do("GET", "/api/v1/quarantine/"+itoa64(stored[1].ID+1000)+"/raw", nil).want(http.StatusNotFound)
		admin.do("GET", "/api/v1/quarantine/x/raw", nil).want(http.StatusNotFound)
	})
}

// drain returns the frames a widget socket has been sent until the pong
// of a ping sent now (the socket answers in order, so everything due by
// now came before it), without presence frames.
func (s *vsock) drain(t *testing.T) []vframe {
	t.Helper()
	s.send(t, map[string]any{"type": "ping"})
	var got []vframe
	for {
		switch f := s.next(t); f.Type {
		case "pong":
			return got
		case "presence":
		default:
			got = append(got, f)
		}
	}
}

// An email that lands in a visitor's chat conversation (their answer to
// our mail, a colleague's they copied) and the agents' email replies
// reach the widget as text and attachments only: never the envelope
// (subject, From, To, Cc), the HTML, the error of a failed send or a
// bounce's report, live, replayed, in /state or in /messages. Agents see
// all of it.
func TestWidgetEmailView(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newMailEnv(t, url)
		alice := e.agent("alice@example.com", inbox.RoleAgent)
		agent := e.login("alice@example.com")
		ctx := context.Background()

		c := e.client()
		v := &visitor{client: c}
		c.do("POST", "/api/v1/widget/conversations", map[string]any{"name": "Uma", "email": "uma@example.com"}).
			want(http.StatusCreated).decode(&v.start)
		v.token = v.start.Token
		c.header.Set("Authorization", "Bearer "+v.token)
		conv := v.start.Conversation.ID
		sock, _ := v.connect(v.start.Conversation.Seq)

		// What the visitor must never be sent; and what agents see.
		secret := []string{`"email":{`, `"html":`, `"error":`, "corp.test", "Your chat", "quoted digest", "tracker",
			"mx.internal", "delivery-status", "@mua.test"}
		noSecrets := func(where, body string) {
			t.Helper()
			for _, s := range secret {
				if strings.Contains(body, s) {
					t.Fatalf("%s carries %q: %s", where, s, body)
				}
			}
		}

		token, err := e.store.ConversationToken(ctx, conv)
		if err != nil {
			t.Fatalf("ConversationToken() = %v", err)
		}
		// Uma answers our mail, copying Dave; Dave answers all.
		uma := testMail("uma@example.com", "Re: Your chat [#"+token+"]", "Thanks, that works.")
		uma.Cc = []inbox.Address{{Name: "Dave", Addr: "dave@corp.test"}}
		uma.FullText = "Thanks, that works.\n\n> the quoted digest"
		uma.HTML = `<p>Thanks, <b>that works</b>.</p><img src="https://tracker.corp.test/p.gif">`
		dave := testMail("dave@corp.test", "Re: Your chat [#"+token+"]", "I agree with Uma.")
		dave.To = []inbox.Address{{Addr: "uma@example.com"}, {Addr: "support@example.com"}}
		dave.Cc = []inbox.Address{{Addr: "boss@corp.test"}}
		for _, in := range []inbox.IncomingEmail{uma, dave} {
			if res := e.ingest(in); res.ConversationID != conv {
				t.Fatalf("IngestEmail(from %s) = %+v, want conversation %d", in.From.Addr, res, conv)
			}
			f := sock.nextOf(t, "event")
			noSecrets("the visitor's event", f.raw)
			if m := addedMessage(t, f.Event); m.Text != in.Text || m.Channel != inbox.ChannelEmail {
				t.Fatalf("the visitor's message = %+v, want the text %q", m, in.Text)
			}
		}

		sock.quiet(t)

		// Agents see all of it.
		var page inbox.MessagePage
		agent.do("GET", "/api/v1/conversations/"+itoa64(conv)+"/messages", nil).want(http.StatusOK).decode(&page)
		if len(page.Messages) != 2 || page.Messages[0].Email == nil || page.Messages[0].Email.Cc[0].Addr != "dave@corp.test" ||
			!strings.Contains(page.Messages[0].HTML, "<b>that works</b>") ||
			page.Messages[1].Email == nil || page.Messages[1].Email.Cc[0].Addr != "boss@corp.test" {
			t.Fatalf("agents' messages = %+v, want the envelopes", page.Messages)
		}

		// The widget: text only, over HTTP and replayed on a new socket.
		wantTexts := []string{uma.Text, dave.Text}
		checkMessages := func(where string, body []byte, msgs []inbox.Message) {
			t.Helper()
			noSecrets(where, string(body))
			var texts []string
			for _, m := range msgs {
				texts = append(texts, m.Text)
				if m.Email != nil || m.HTML != "" || m.Error != "" {
					t.Fatalf("%s: message %+v", where, m)
				}
			}
			if !slices.Equal(texts, wantTexts) {
				t.Fatalf("%s: texts %q, want %q", where, texts, wantTexts)
			}
		}
		r := v.do("GET", "/api/v1/widget/state", nil).want(http.StatusOK)
		var state stateAnswer
		r.decode(&state)
		checkMessages("GET /widget/state", r.body, state.Messages)
		r = v.do("GET", "/api/v1/widget/messages", nil).want(http.StatusOK)
		var older widgetMessagesAnswer
		r.decode(&older)
		checkMessages("GET /widget/messages", r.body, older.Messages)

		again, _ := v.connect(v.start.Conversation.Seq)
		var replayed []inbox.Message
		var raws []string
		for _, f := range again.drain(t) {
			raws = append(raws, f.raw)
			if f.Event != nil && f.Event.Type == inbox.EventMessageAdded {
				replayed = append(replayed, addedMessage(t, f.Event))
			}
		}
		checkMessages("the replayed events", []byte(strings.Join(raws, "\n")), replayed)

		// An agent's email reply, sent with Dave in Cc, then bounced with
		// the server's answer and its report: as the outbox and a bounce
		// publish them (until replies by email are enqueued with the
		// message, the store cannot make them here; these events are the
		// last the sockets see, as they are not stored).
		cur, err := e.store.Conversation(ctx, conv)
		if err != nil {
			t.Fatalf("Conversation() = %v", err)
		}
		msgID := int64(1 << 40)
		at := time.Now().UTC()
		added, _ := json.Marshal(inbox.MessageAdded{Message: inbox.Message{ID: msgID, ConversationID: conv, Seq: cur.Seq + 1,
			Author: inbox.AuthorAgent, Channel: inbox.ChannelEmail, Text: "Here is the fix.", HTML: "<p>Here is the fix.</p>",
			State: inbox.StateFailed, Error: "550 5.1.1 no such user (mx.internal.corp.test)", CreatedAt: at,
			Email: &inbox.EmailInfo{Subject: "Re: Your chat", From: inbox.Address{Addr: "support@example.com"},
				To: []inbox.Address{{Addr: "uma@example.com"}}, Cc: []inbox.Address{{Addr: "dave@corp.test"}}},
			Attachments: []inbox.Attachment{{ID: 1 << 40, ConversationID: conv, MessageID: &msgID, Uploader: inbox.AuthorSystem,
				Name: "delivery-status-notification.eml", ContentType: "message/rfc822", CreatedAt: at}}}})
		failed, _ := json.Marshal(inbox.MessageState{MessageIDs: []int64{msgID}, State: inbox.StateFailed,
			Error: "550 5.1.1 <uma@example.com>: no such user (mx.internal.corp.test)"})
		agentSock := e.agentSock(alice)
		e.store.Hub().Publish([]inbox.Event{
			{ID: 1 << 40, ConversationID: conv, Seq: cur.Seq + 1, Type: inbox.EventMessageAdded, Data: added, At: at},
			{ID: 1<<40 + 1, ConversationID: conv, Seq: cur.Seq + 2, Type: inbox.EventMessageState, Data: failed, At: at},
		})
		for _, s := range []*vsock{sock, again} {
			f := s.nextOf(t, "event")
			noSecrets("the visitor's reply event", f.raw)
			if m := addedMessage(t, f.Event); m.Text != "Here is the fix." || len(m.Attachments) != 0 || m.State != inbox.StateFailed {
				t.Fatalf("the visitor's reply = %+v", m)
			}
			f = s.nextOf(t, "event")
			noSecrets("the visitor's failed state", f.raw)
			var st inbox.MessageState
			if f.Event.Type != inbox.EventMessageState || f.Event.Decode(&st) != nil || st.State != inbox.StateFailed || st.MessageIDs[0] != msgID {
				t.Fatalf("the visitor's event = %s, want the failed state", f)
			}
		}
		for _, typ := range []string{inbox.EventMessageAdded, inbox.EventMessageState} {
			f := agentNext(t, agentSock, "event", func(f agentFrame) bool { return f.Event.Type == typ })
			if string(f.Event.Data) != map[string]string{inbox.EventMessageAdded: string(added), inbox.EventMessageState: string(failed)}[typ] {
				t.Fatalf("agents' %s event = %s, want it whole", typ, f.Event.Data)
			}
		}
	})
}

// openAPISchema is a schema of openapi.yaml, as far as its properties go.
type openAPISchema struct {
	Properties map[string]any  `yaml:"properties"`
	AllOf      []openAPISchema `yaml:"allOf"`
	Ref        string          `yaml:"$ref"`
}

// jsonFields returns the JSON names of a struct type's fields as
// encoding/json writes them, embedded structs flattened.
func jsonFields(t reflect.Type) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct:
			// encoding/json promotes the fields of an embedded struct,
			// exported or not.
			out = append(out, jsonFields(f.Type)...)
		case name == "-" || !f.IsExported():
		case name == "":
			out = append(out, f.Name)
		default:
			out = append(out, name)
		}
	}
	return out
}

// The schemas of openapi.yaml name every field the API answers with, and
// only those: the email envelope and details, the quarantine, a failed
// message's error and a contact's verified email among them.
func TestOpenAPISchemas(t *testing.T) {
	spec, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatalf("ReadFile() = %v", err)
	}
	var doc struct {
		Components struct {
			Schemas map[string]openAPISchema `yaml:"schemas"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(spec, &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	// A flow mapping whose plain description holds a comma parses as a
	// description cut short and a key without value: never meant.
	var whole any
	if err := yaml.Unmarshal(spec, &whole); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if x == nil && strings.Contains(k, " ") {
					t.Errorf("openapi.yaml %s: key %q without value (quote the text before it)", path, k)
				}
				walk(path+"."+k, x)
			}
		case []any:
			for i, x := range v {
				walk(fmt.Sprintf("%s[%d]", path, i), x)
			}
		}
	}
	walk("", whole)

	schemas := doc.Components.Schemas
	var props func(name string, s openAPISchema, into map[string]bool)
	props = func(name string, s openAPISchema, into map[string]bool) {
		if ref, ok := strings.CutPrefix(s.Ref, "#/components/schemas/"); ok {
			s = schemas[ref]
		}
		for p := range s.Properties {
			into[p] = true
		}
		for _, sub := range s.AllOf {
			props(name, sub, into)
		}
	}
	for name, v := range map[string]any{
		"Message":               inbox.Message{},
		"EmailInfo":             inbox.EmailInfo{},
		"EmailDetails":          inbox.EmailDetails{},
		"Address":               inbox.Address{},
		"QuarantinedEmail":      inbox.QuarantinedEmail{},
		"QuarantineList":        quarantineList{},
		"Contact":               inbox.Contact{},
		"Conversation":          inbox.Conversation{},
		"Attachment":            inbox.Attachment{},
		"MessageState":          inbox.MessageState{},
		"MessageAdded":          inbox.MessageAdded{},
		"Agent":                 inbox.AgentJSON{},
		"AgentSettings":         inbox.AgentSettings{},
		"Session":               sessionAnswer{},
		"ContactDetail":         inbox.ContactDetail{},
		"ContactConversation":   inbox.ContactConversation{},
		"SavedReply":            inbox.SavedReply{},
		"OperatorsReport":       inbox.OperatorsReport{},
		"OperatorStats":         inbox.OperatorStats{},
		"RatingStats":           inbox.RatingStats{},
		"RatingComment":         inbox.RatingComment{},
		"OperatorDay":           inbox.OperatorDay{},
		"PasswordRequest":       passwordRequest{},
		"SelfRequest":           selfRequest{},
		"AgentRequest":          agentRequest{},
		"SavedReplyRequest":     savedReplyRequest{},
		"ConversationItem":      inbox.ConversationItem{},
		"APIToken":              inbox.APIToken{},
		"CreatedAPIToken":       createdAPIToken{},
		"APITokenRequest":       apiTokenRequest{},
		"ContactRequest":        contactRequest{},
		"Webhook":               inbox.Webhook{},
		"WebhookAnswer":         webhookAnswer{},
		"CreatedWebhook":        createdWebhook{},
		"WebhookRequest":        webhookRequest{},
		"RotateRequest":         rotateRequest{},
		"ReplayAnswer":          replayAnswer{},
		"Delivery":              inbox.Delivery{},
		"HookPayload":           inbox.HookPayload{},
		"HookConversationData":  inbox.HookConversationData{},
		"HookAssignedData":      inbox.HookAssignedData{},
		"HookClosedData":        inbox.HookClosedData{},
		"HookReopenedData":      inbox.HookReopenedData{},
		"HookMessageData":       inbox.HookMessageData{},
		"HookMessageFailedData": inbox.HookMessageFailedData{},
		"HookRatingData":        inbox.HookRatingData{},
		"HookContactData":       inbox.HookContactData{},
		"HookContactErasedData": inbox.HookContactErasedData{},
	} {
		s, ok := schemas[name]
		if !ok {
			t.Errorf("openapi.yaml has no schema %s", name)
			continue
		}
		documented := map[string]bool{}
		props(name, s, documented)
		fields := jsonFields(reflect.TypeOf(v))
		for _, f := range fields {
			if !documented[f] {
				t.Errorf("schema %s does not document %q", name, f)
			}
		}
		for p := range documented {
			if !slices.Contains(fields, p) {
				t.Errorf("schema %s documents %q, which %T does not have", name, p, v)
			}
		}
	}
}
