package web

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// GET /contacts/{id} lists the contact's conversations, the newest first,
// at most 50, with what the visitor panel shows of each; another
// contact's are not among them. No session is 401, an unknown contact
// 404.
func TestContactConversations(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		ctx := context.Background()
		e := newEnv(t, url, nil)
		c := e.login(e.agent("bob@example.com", inbox.RoleAgent).Email)
		ct, err := e.store.CreateContact(ctx, inbox.NewContact{Name: "Vic", Email: "vic@example.com"})
		if err != nil {
			t.Fatalf("CreateContact() = %v", err)
		}
		other := e.conversation("Other", "")
		var ids []int64
		for i := range 52 {
			ch, subject := inbox.ChannelChat, ""
			if i == 51 {
				ch, subject = inbox.ChannelEmail, "Printer on fire"
			}
			conv, err := e.store.StartConversation(ctx, ct.ID, ch, subject)
			if err != nil {
				t.Fatalf("StartConversation() = %v", err)
			}
			ids = append(ids, conv.ID)
		}

		var d struct {
			inbox.ContactDetail
			Raw []map[string]any `json:"conversations"`
		}
		r := c.do("GET", "/api/v1/contacts/"+itoa64(ct.ID), nil).want(http.StatusOK)
		r.decode(&d.ContactDetail)
		r.decode(&d)
		convs := d.ContactDetail.Conversations
		if d.ID != ct.ID || len(convs) != 50 {
			t.Fatalf("contact %d with %d conversations, want %d with 50", d.ID, len(convs), ct.ID)
		}
		for i, cv := range convs {
			if cv.ID != ids[51-i] || cv.ID == other.ID {
				t.Fatalf("conversation %d = %d, want %d: the newest first", i, cv.ID, ids[51-i])
			}
		}
		newest := convs[0]
		if newest.Channel != inbox.ChannelEmail || newest.Subject != "Printer on fire" || !newest.HasEmail || newest.Status != inbox.StatusOpen ||
			newest.CreatedAt.IsZero() || newest.LastActivityAt.IsZero() || newest.CreatedAt.Location() != time.UTC {
			t.Fatalf("newest conversation = %+v", newest)
		}
		for _, key := range []string{"id", "status", "subject", "channel", "has_email", "last_activity_at", "created_at"} {
			if _, ok := d.Raw[1][key]; !ok {
				t.Fatalf("conversation JSON %v lacks %s", d.Raw[1], key)
			}
		}

		// A contact without conversations has an empty list, not null.
		lone, err := e.store.CreateContact(ctx, inbox.NewContact{Name: "Lone"})
		if err != nil {
			t.Fatalf("CreateContact() = %v", err)
		}
		if r := c.do("GET", "/api/v1/contacts/"+itoa64(lone.ID), nil).want(http.StatusOK); !strings.Contains(string(r.body), `"conversations":[]`) {
			t.Fatalf("contact without conversations = %s", r.body)
		}
		e.client().do("GET", "/api/v1/contacts/"+itoa64(ct.ID), nil).want(http.StatusUnauthorized)
		c.do("GET", "/api/v1/contacts/999999", nil).want(http.StatusNotFound)
	})
}
