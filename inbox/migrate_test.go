package inbox_test

import (
	"fmt"
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
