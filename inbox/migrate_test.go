package inbox_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// An empty database migrated only to the first schema and filled the way
// that schema allows is upgraded by Open to the newest, keeping its data.
func TestUpgradeFromFirstSchema(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		ids := inbox.MigrationIDs()
		old, err := inbox.OpenBare(url)
		if err != nil {
			t.Fatalf("OpenBare() = %v", err)
		}
		if err := old.MigrateTo(ids[0]); err != nil {
			t.Fatalf("MigrateTo(%s) = %v", ids[0], err)
		}
		db := old.Gorm()
		if db.Migrator().HasTable("sessions") {
			t.Fatalf("the first schema already has sessions")
		}
		now := time.Now().UTC()
		for _, q := range []string{
			`INSERT INTO contacts (name, email, phone, online, created_at) VALUES ('Eve', 'eve@example.com', '', false, ?)`,
			`INSERT INTO agents (email, name, role, password_hash, created_at) VALUES ('old@example.com', 'Old', 'admin', 'x', ?)`,
		} {
			if err := db.Exec(q, now).Error; err != nil {
				t.Fatalf("fill first schema: %v", err)
			}
		}
		old.CloseBare()

		s := inboxtest.Open(t, url, nil)
		var contact inbox.Contact
		if err := s.Gorm().Where("email = ?", "eve@example.com").First(&contact).Error; err != nil {
			t.Fatalf("contact of the first schema lost: %v", err)
		}
		c, err := s.StartConversation(ctx, contact.ID, inbox.ChannelChat, "")
		if err != nil {
			t.Fatalf("StartConversation() on the upgraded schema = %v", err)
		}
		if _, _, err := s.AddMessage(ctx, inbox.NewMessage{ConversationID: c.ID, Author: inbox.AuthorContact, Text: "hi"}); err != nil {
			t.Fatalf("AddMessage() on the upgraded schema = %v", err)
		}
		var agent inbox.Agent
		if err := s.Gorm().Where("email = ?", "old@example.com").First(&agent).Error; err != nil {
			t.Fatalf("agent of the first schema lost: %v", err)
		}
		if _, _, err := s.CreateSession(ctx, agent.ID, time.Hour); err != nil {
			t.Fatalf("CreateSession() on the upgraded schema = %v", err)
		}
		if err := s.Gorm().Where("email = ?", "eve@example.com").First(&contact).Error; err != nil || contact.Browser != "" {
			t.Fatalf("contact after 0003 = %+v, %v", contact, err)
		}
		if agent.Presence != inbox.PresenceOffline {
			t.Fatalf("agent presence after 0003 = %q, want offline", agent.Presence)
		}
		if _, err := s.StartVisitor(ctx, inbox.NewVisitor{Name: "New", Pages: []inbox.NewPageView{{URL: "https://x.example/"}}}, time.Hour); err != nil {
			t.Fatalf("StartVisitor() on the upgraded schema = %v", err)
		}
		var applied []string
		s.Gorm().Table("schema_migrations").Order("id").Pluck("id", &applied)
		if fmt.Sprint(applied) != fmt.Sprint(ids) {
			t.Fatalf("schema_migrations = %v, want %v", applied, ids)
		}
		// Migrating again changes nothing.
		if err := s.Migrate(); err != nil {
			t.Fatalf("Migrate() again = %v", err)
		}
	})
}

// 0005_integrity keeps a conversation's stored client ids and sent attachments:
// the old contact message is still found by its retry, an agent may now
// use the same client id, the sent attachment is the message author's and
// visible, and an unsent upload of unknown uploader cannot be attached.
func TestUpgradeToIntegrity(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		old, err := inbox.OpenBare(url)
		if err != nil {
			t.Fatalf("OpenBare() = %v", err)
		}
		if err := old.MigrateTo("0004_agent_removal"); err != nil {
			t.Fatalf("MigrateTo(0004) = %v", err)
		}
		db := old.Gorm()
		now := time.Now().UTC()
		for _, q := range []string{
			`INSERT INTO contacts (id, name, email, phone, online, created_at) VALUES (1, 'Eve', '', '', false, ?)`,
			`INSERT INTO agents (id, email, name, role, password_hash, created_at) VALUES (1, 'a@example.com', 'A', 'agent', 'x', ?)`,
			`INSERT INTO conversations (id, contact_id, channel, status, subject, seq, token, has_email, last_activity_at, created_at)
				VALUES (1, 1, 'chat', 'open', '', 1, 'tok', false, ?, ?)`,
			`INSERT INTO messages (id, conversation_id, seq, client_id, author, channel, text, html, state, created_at)
				VALUES (1, 1, 1, 'k', 'contact', 'chat', 'hello', '', 'sent', ?)`,
			`INSERT INTO attachments (id, conversation_id, message_id, name, content_type, size, data, created_at) VALUES (1, 1, 1, 'a.txt', 'text/plain', 1, 'a', ?)`,
			`INSERT INTO attachments (id, conversation_id, name, content_type, size, data, created_at) VALUES (2, 1, 'b.txt', 'text/plain', 1, 'b', ?)`,
		} {
			args := []any{now}
			if strings.Count(q, "?") == 2 {
				args = append(args, now)
			}
			if err := db.Exec(q, args...).Error; err != nil {
				t.Fatalf("fill 0004 schema: %v", err)
			}
		}
		if old.Dialect() == "postgres" {
			// Explicit ids leave the sequences behind.
			for _, tbl := range []string{"contacts", "agents", "conversations", "messages", "attachments"} {
				if err := db.Exec(`SELECT setval(pg_get_serial_sequence('` + tbl + `', 'id'), 10)`).Error; err != nil {
					t.Fatalf("setval(%s): %v", tbl, err)
				}
			}
		}
		old.CloseBare()

		s := inboxtest.Open(t, url, nil)
		again, created, err := s.AddMessage(ctx, inbox.NewMessage{ConversationID: 1, ClientID: "k", Author: inbox.AuthorContact, Text: "hello", AttachmentIDs: []int64{1}})
		if err != nil || created || again.ID != 1 {
			t.Fatalf("contact's retry after 0005 = %+v, %v, %v; want message 1", again, created, err)
		}
		agentID := int64(1)
		reply, created, err := s.AddMessage(ctx, inbox.NewMessage{ConversationID: 1, ClientID: "k", Author: inbox.AuthorAgent, AgentID: &agentID, Text: "hi"})
		if err != nil || !created || reply.ID == 1 {
			t.Fatalf("agent's message with the contact's client id = %+v, %v, %v; want a new one", reply, created, err)
		}
		a, err := s.OpenContactAttachment(ctx, 1, 1)
		if err != nil || a.Uploader != inbox.AuthorContact {
			t.Fatalf("sent attachment after 0005 = %+v, %v", a, err)
		}
		if _, err := s.OpenContactAttachment(ctx, 1, 2); !errors.Is(err, inbox.ErrNotFound) {
			t.Fatalf("unsent attachment of unknown uploader = %v, want ErrNotFound", err)
		}
		_, _, err = s.AddMessage(ctx, inbox.NewMessage{ConversationID: 1, Author: inbox.AuthorContact, AttachmentIDs: []int64{2}})
		wantInvalid(t, "attaching an unsent upload of unknown uploader", err, "attachment_ids")
	})
}
