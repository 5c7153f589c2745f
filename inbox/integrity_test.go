package inbox_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// contactUpload is an upload by the conversation's contact.
var contactUpload = inbox.Uploader{Author: inbox.AuthorContact}

func agentUpload(a inbox.Agent) inbox.Uploader {
	return inbox.Uploader{Author: inbox.AuthorAgent, AgentID: a.ID}
}

func wantConflict(t *testing.T, what string, err error) {
	t.Helper()
	var ce *inbox.ConflictError
	if !errors.Is(err, inbox.ErrConflict) || !errors.As(err, &ce) || ce.Field != "client_id" {
		t.Fatalf("%s = %v, want a ConflictError on client_id", what, err)
	}
}

func wantInvalid(t *testing.T, what string, err error, field string) {
	t.Helper()
	var inv *inbox.InvalidError
	if !errors.As(err, &inv) || inv.Field != field {
		t.Fatalf("%s = %v, want InvalidError on %q", what, err, field)
	}
}

// Issue 11 item 3: a client id is its author's. The visitor's "reply-1"
// does not swallow the agent's "reply-1"; a retry by the same author with
// the same content is answered with the first message, with other content
// it is a conflict.
func TestClientIDScopedToAuthor(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newFixture(t, url)
		c := f.start(t)
		add := func(m inbox.NewMessage) (inbox.Message, bool, error) {
			m.ConversationID = c.ID
			return f.s.AddMessage(ctx, m)
		}
		visitor, created, err := add(inbox.NewMessage{ClientID: "reply-1", Author: inbox.AuthorContact, Text: "where is my order?"})
		if err != nil || !created {
			t.Fatalf("visitor's AddMessage() = %v, %v", created, err)
		}
		reply, created, err := add(inbox.NewMessage{ClientID: "reply-1", Author: inbox.AuthorAgent, AgentID: &f.alice.ID, Text: "on its way"})
		if err != nil || !created || reply.ID == visitor.ID || reply.Text != "on its way" {
			t.Fatalf("agent's AddMessage() with the visitor's client id = %+v, %v, %v; want a new message", reply, created, err)
		}
		other, created, err := add(inbox.NewMessage{ClientID: "reply-1", Author: inbox.AuthorAgent, AgentID: &f.bob.ID, Text: "on its way"})
		if err != nil || !created || other.ID == reply.ID {
			t.Fatalf("second agent's AddMessage() = %+v, %v, %v; want a new message", other, created, err)
		}
		// Retries: the same author and content is the first message.
		again, created, err := add(inbox.NewMessage{ClientID: "reply-1", Author: inbox.AuthorAgent, AgentID: &f.alice.ID, Text: "  on its way\n"})
		if err != nil || created || again.ID != reply.ID || again.Text != "on its way" {
			t.Fatalf("agent's retry = %+v, %v, %v; want the first reply", again, created, err)
		}
		again, created, err = add(inbox.NewMessage{ClientID: "reply-1", Author: inbox.AuthorContact, Text: "where is my order?"})
		if err != nil || created || again.ID != visitor.ID {
			t.Fatalf("visitor's retry = %+v, %v, %v; want the first message", again, created, err)
		}
		// Other content under a used key is a conflict, for each author.
		_, _, err = add(inbox.NewMessage{ClientID: "reply-1", Author: inbox.AuthorAgent, AgentID: &f.alice.ID, Text: "cancelled"})
		wantConflict(t, "agent's reuse with other text", err)
		_, _, err = add(inbox.NewMessage{ClientID: "reply-1", Author: inbox.AuthorContact, Text: "never mind"})
		wantConflict(t, "visitor's reuse with other text", err)

		page, err := f.s.Messages(ctx, c.ID, inbox.MessageQuery{})
		if err != nil || len(page.Messages) != 3 {
			t.Fatalf("Messages() = %d messages, %v; want 3", len(page.Messages), err)
		}
		if evs := events(t, f.s, c.ID); len(evs) != 4 {
			t.Fatalf("events = %v, want the creation and three messages", types(evs))
		}
	})
}

// The attachments are part of a retry's content.
func TestClientIDRetryWithAttachments(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newFixture(t, url)
		c := f.start(t)
		a1, err := f.s.AddAttachment(ctx, c.ID, contactUpload, "a.txt", "text/plain", []byte("a"))
		noErr(t, "AddAttachment()", err)
		a2, err := f.s.AddAttachment(ctx, c.ID, contactUpload, "b.txt", "text/plain", []byte("b"))
		noErr(t, "AddAttachment()", err)
		m := inbox.NewMessage{ConversationID: c.ID, ClientID: "k", Author: inbox.AuthorContact, Text: "files", AttachmentIDs: []int64{a2.ID, a1.ID}}
		first, created, err := f.s.AddMessage(ctx, m)
		if err != nil || !created || len(first.Attachments) != 2 {
			t.Fatalf("AddMessage() = %+v, %v, %v", first, created, err)
		}
		m.AttachmentIDs = []int64{a1.ID, a2.ID, a1.ID}
		again, created, err := f.s.AddMessage(ctx, m)
		if err != nil || created || again.ID != first.ID {
			t.Fatalf("retry with the same attachments = %+v, %v, %v; want the first message", again, created, err)
		}
		m.AttachmentIDs = []int64{a1.ID}
		_, _, err = f.s.AddMessage(ctx, m)
		wantConflict(t, "retry with fewer attachments", err)
	})
}

// Concurrent sends of one key land in one batch or several: either way one
// message is stored, equal retries get it, different content conflicts.
func TestClientIDConcurrentRetries(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newFixture(t, url)
		c := f.start(t)
		const n = 16
		type result struct {
			msg     inbox.Message
			created bool
			err     error
		}
		results := make([]result, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				text := "same"
				if i%4 == 3 {
					text = fmt.Sprint("different ", i)
				}
				m, created, err := f.s.AddMessage(ctx, inbox.NewMessage{ConversationID: c.ID, ClientID: "k", Author: inbox.AuthorContact, Text: text})
				results[i] = result{m, created, err}
			})
		}
		wg.Wait()
		page, err := f.s.Messages(ctx, c.ID, inbox.MessageQuery{})
		if err != nil || len(page.Messages) != 1 {
			t.Fatalf("Messages() = %d, %v; want one message", len(page.Messages), err)
		}
		stored := page.Messages[0]
		created := 0
		for i, r := range results {
			switch {
			case r.err != nil:
				wantConflict(t, fmt.Sprintf("send %d", i), r.err)
				if stored.Text == "same" && i%4 != 3 {
					t.Fatalf("send %d of the stored text conflicted: %v", i, r.err)
				}
			case r.msg.ID != stored.ID || r.msg.Text != stored.Text:
				t.Fatalf("send %d = %+v, want the stored %+v", i, r.msg, stored)
			case r.created:
				created++
			}
		}
		if created != 1 {
			t.Fatalf("%d sends created the message, want 1", created)
		}
	})
}

// Issue 11 item 4: an agent's unsent upload is theirs alone: the visitor
// cannot download or attach it, nor can another agent; once sent, everyone
// of the conversation can download it. The same holds for the visitor's
// upload, which the visitor sees before sending.
func TestAttachmentBelongsToUploaderUntilSent(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newFixture(t, url)
		c := f.start(t)
		a, err := f.s.AddAttachment(ctx, c.ID, agentUpload(f.alice), "invoice.pdf", "application/pdf", []byte("%PDF-1.4 draft"))
		noErr(t, "AddAttachment(alice)", err)
		if a.Uploader != inbox.AuthorAgent || a.UploaderAgentID == nil || *a.UploaderAgentID != f.alice.ID {
			t.Fatalf("attachment = %+v, want alice's", a)
		}
		if _, err := f.s.OpenContactAttachment(ctx, f.contact.ID, a.ID); !errors.Is(err, inbox.ErrNotFound) {
			t.Fatalf("OpenContactAttachment(agent's unsent) = %v, want ErrNotFound", err)
		}
		if _, err := f.s.OpenAttachment(ctx, c.ID, f.bob.ID, a.ID); !errors.Is(err, inbox.ErrNotFound) {
			t.Fatalf("OpenAttachment(co-agent's unsent) = %v, want ErrNotFound", err)
		}
		if got, err := f.s.OpenAttachment(ctx, c.ID, f.alice.ID, a.ID); err != nil || string(got.Data) != "%PDF-1.4 draft" {
			t.Fatalf("OpenAttachment(own unsent) = %q, %v", got.Data, err)
		}
		_, _, err = f.s.AddMessage(ctx, inbox.NewMessage{ConversationID: c.ID, Author: inbox.AuthorContact, Text: "mine now", AttachmentIDs: []int64{a.ID}})
		wantInvalid(t, "visitor attaching the agent's upload", err, "attachment_ids")
		_, _, err = f.s.AddMessage(ctx, inbox.NewMessage{ConversationID: c.ID, Author: inbox.AuthorAgent, AgentID: &f.bob.ID, Text: "mine", AttachmentIDs: []int64{a.ID}})
		wantInvalid(t, "co-agent attaching the agent's upload", err, "attachment_ids")
		if page, _ := f.s.Messages(ctx, c.ID, inbox.MessageQuery{}); len(page.Messages) != 0 {
			t.Fatalf("refused messages were stored: %+v", page.Messages)
		}

		m, _, err := f.s.AddMessage(ctx, inbox.NewMessage{ConversationID: c.ID, Author: inbox.AuthorAgent, AgentID: &f.alice.ID, Text: "your invoice", AttachmentIDs: []int64{a.ID}})
		if err != nil || len(m.Attachments) != 1 {
			t.Fatalf("alice sending her upload = %+v, %v", m, err)
		}
		if _, err := f.s.OpenContactAttachment(ctx, f.contact.ID, a.ID); err != nil {
			t.Fatalf("OpenContactAttachment(sent) = %v", err)
		}
		if _, err := f.s.OpenAttachment(ctx, c.ID, f.bob.ID, a.ID); err != nil {
			t.Fatalf("OpenAttachment(co-agent, sent) = %v", err)
		}

		// The visitor's own upload.
		v, err := f.s.AddAttachment(ctx, c.ID, contactUpload, "photo.png", "image/png", []byte("png"))
		noErr(t, "AddAttachment(contact)", err)
		if _, err := f.s.OpenContactAttachment(ctx, f.contact.ID, v.ID); err != nil {
			t.Fatalf("OpenContactAttachment(own unsent) = %v", err)
		}
		if _, err := f.s.OpenAttachment(ctx, c.ID, f.alice.ID, v.ID); !errors.Is(err, inbox.ErrNotFound) {
			t.Fatalf("OpenAttachment(contact's unsent) = %v, want ErrNotFound", err)
		}
		_, _, err = f.s.AddMessage(ctx, inbox.NewMessage{ConversationID: c.ID, Author: inbox.AuthorAgent, AgentID: &f.alice.ID, Text: "x", AttachmentIDs: []int64{v.ID}})
		wantInvalid(t, "agent attaching the visitor's upload", err, "attachment_ids")
		if _, _, err := f.s.AddMessage(ctx, inbox.NewMessage{ConversationID: c.ID, Author: inbox.AuthorContact, AttachmentIDs: []int64{v.ID}}); err != nil {
			t.Fatalf("visitor sending their upload = %v", err)
		}
		if _, err := f.s.OpenAttachment(ctx, c.ID, f.alice.ID, v.ID); err != nil {
			t.Fatalf("OpenAttachment(contact's, sent) = %v", err)
		}
	})
}

// Issue 11 item 5: NUL is refused at every inbox entry point with an
// InvalidError naming the field, on both databases (PostgreSQL cannot
// store it, SQLite would), and nothing is stored.
func TestNULRefusedAtEveryEntryPoint(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newFixture(t, url)
		c := f.start(t)
		v, err := f.s.StartVisitor(ctx, inbox.NewVisitor{Name: "Vic"}, time.Hour)
		noErr(t, "StartVisitor()", err)
		page := inbox.NewPageView{URL: "https://shop.example/", Title: "Shop"}
		cases := []struct {
			name, field string
			call        func() error
		}{
			{"visitor name", "name", func() error {
				_, err := f.s.StartVisitor(ctx, inbox.NewVisitor{Name: "Ev\x00e"}, time.Hour)
				return err
			}},
			{"visitor email", "email", func() error {
				_, err := f.s.StartVisitor(ctx, inbox.NewVisitor{Name: "Eve", Email: "eve\x00@example.com"}, time.Hour)
				return err
			}},
			{"contact phone", "phone", func() error {
				_, err := f.s.CreateContact(ctx, inbox.NewContact{Name: "Eve", Phone: "555\x001234"})
				return err
			}},
			{"start page title", "title", func() error {
				p := page
				p.Title = "Sh\x00op"
				_, err := f.s.StartVisitor(ctx, inbox.NewVisitor{Name: "Eve", Pages: []inbox.NewPageView{p}}, time.Hour)
				return err
			}},
			{"page view url", "url", func() error {
				p := page
				p.URL = "https://shop.example/\x00"
				return f.s.AddPageView(ctx, v.Contact.ID, p)
			}},
			{"page view referrer", "referrer", func() error {
				p := page
				p.Referrer = "https://ref.example/\x00"
				_, _, err := f.s.StartVisitorConversation(ctx, v.Contact.ID, []inbox.NewPageView{p})
				return err
			}},
			{"subject", "subject", func() error {
				_, err := f.s.StartConversation(ctx, f.contact.ID, inbox.ChannelEmail, "Re\x00: order")
				return err
			}},
			{"message text", "text", func() error {
				_, _, err := f.s.AddMessage(ctx, inbox.NewMessage{ConversationID: c.ID, Author: inbox.AuthorContact, Text: "hi\x00"})
				return err
			}},
			{"message html", "html", func() error {
				_, _, err := f.s.AddMessage(ctx, inbox.NewMessage{ConversationID: c.ID, Author: inbox.AuthorContact, Channel: inbox.ChannelEmail, HTML: "<p>\x00</p>"})
				return err
			}},
			{"client id", "client_id", func() error {
				_, _, err := f.s.AddMessage(ctx, inbox.NewMessage{ConversationID: c.ID, ClientID: "k\x00", Author: inbox.AuthorAgent, AgentID: &f.alice.ID, Text: "hi"})
				return err
			}},
			{"async message", "text", func() error {
				return f.s.AddMessageAsync(ctx, inbox.NewMessage{ConversationID: c.ID, Author: inbox.AuthorContact, Text: "\x00"}, func(inbox.Message, bool, error) {
					t.Errorf("AddMessageAsync stored a NUL")
				})
			}},
			{"attachment name", "name", func() error {
				_, err := f.s.AddAttachment(ctx, c.ID, contactUpload, "a\x00.txt", "text/plain", []byte("x"))
				return err
			}},
			{"rating comment", "comment", func() error {
				_, err := f.s.Rate(ctx, c.ID, 5, "great\x00")
				return err
			}},
			{"agent name", "name", func() error {
				_, err := f.s.CreateAgent(ctx, inbox.NewAgent{Email: "dan@example.com", Name: "D\x00an", Password: "long enough password"})
				return err
			}},
			{"agent email", "email", func() error {
				_, err := f.s.CreateAgent(ctx, inbox.NewAgent{Email: "dan\x00@example.com", Name: "Dan", Password: "long enough password"})
				return err
			}},
			{"agent password", "password", func() error {
				_, err := f.s.CreateAgent(ctx, inbox.NewAgent{Email: "dan@example.com", Name: "Dan", Password: "long enough\x00password"})
				return err
			}},
			{"bootstrap admin", "email", func() error {
				_, err := f.s.EnsureAdmin(ctx, inbox.NewAgent{Email: "root\x00@example.com", Password: "long enough password"})
				return err
			}},
			{"bootstrap admin name", "name", func() error {
				_, err := f.s.EnsureAdmin(ctx, inbox.NewAgent{Email: "root@example.com", Name: "Ro\x00ot", Password: "long enough password"})
				return err
			}},
			{"agent rename", "name", func() error {
				_, err := f.s.RenameAgent(ctx, f.bob.ID, "B\x00ob")
				return err
			}},
			{"setup", "name", func() error {
				_, err := f.s.CompleteSetup(ctx, "token", inbox.NewAgent{Email: "root@example.com", Name: "Ro\x00ot", Password: "long enough password"})
				return err
			}},
			{"login email", "email", func() error {
				_, err := f.s.Authenticate(ctx, "alice@example.com\x00", "correct horse")
				return err
			}},
		}
		for _, tc := range cases {
			wantInvalid(t, tc.name, tc.call(), tc.field)
		}
		if evs := events(t, f.s, c.ID); len(evs) != 1 {
			t.Fatalf("events = %v, want only the creation", types(evs))
		}
		if agents, _ := f.s.Agents(ctx); len(agents) != 2 || agents[1].Name != "Bob" {
			t.Fatalf("agents = %+v, want the fixture's 2 as they were", agents)
		}
	})
}

// Names and other single-line fields are stored without control, bidi
// override and zero-width characters, whatever the entry point.
func TestSingleLineFieldsStoredClean(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newFixture(t, url)
		const dirty = "\u202eEve\r\n\x1b[31m\a\u200b Smith\u2066"
		v, err := f.s.StartVisitor(ctx, inbox.NewVisitor{Name: dirty,
			Pages: []inbox.NewPageView{{URL: "https://shop.example/", Title: "Bad\rtitle\u202e"}}}, time.Hour)
		noErr(t, "StartVisitor()", err)
		if v.Contact.Name != "Eve[31m Smith" {
			t.Fatalf("visitor name stored as %q", v.Contact.Name)
		}
		if views, err := f.s.PageViews(ctx, v.Contact.ID, 10); err != nil || len(views) != 1 || views[0].Title != "Badtitle" {
			t.Fatalf("PageViews() = %+v, %v", views, err)
		}
		a, err := f.s.CreateAgent(ctx, inbox.NewAgent{Email: " Dan@Example.com\u200b", Name: dirty, Password: "long enough password"})
		noErr(t, "CreateAgent()", err)
		if a.Name != "Eve[31m Smith" || a.Email != "dan@example.com" {
			t.Fatalf("agent stored as %q <%s>", a.Name, a.Email)
		}
		if _, err := f.s.CreateAgent(ctx, inbox.NewAgent{Email: "x@example.com", Name: "\u200b\u202e\r\n", Password: "long enough password"}); err == nil {
			t.Fatalf("CreateAgent() with an invisible name succeeded")
		}
		if r, err := f.s.RenameAgent(ctx, a.ID, "\u202eDan\a\r\n"); err != nil || r.Name != "Dan" {
			t.Fatalf("RenameAgent() = %q, %v; want Dan", r.Name, err)
		}
		c := f.start(t)
		m, _, err := f.s.AddMessage(ctx, inbox.NewMessage{ConversationID: c.ID, Author: inbox.AuthorContact, Text: "line one\r\n\tline two\x1b\a"})
		noErr(t, "AddMessage()", err)
		if m.Text != "line one\n\tline two" {
			t.Fatalf("message text stored as %q", m.Text)
		}
	})
}
