package web

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/microdeets/microchat/config"
	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// Saved replies: every agent lists them, by shortcut; only admins create,
// change and delete them. A shortcut is 1 to 32 of a-z, 0-9, _ and -
// (stored in lower case) and unique (409 naming it); title and text are
// required, the text at most limits.max_message_bytes. Bad input is 400
// naming the field, no session 401, an agent's write 403, an unknown
// reply 404.
func TestSavedReplies(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		// The store has the server's message limit, as serve gives it.
		e := newEnvStore(t, inboxtest.Open(t, url, &inbox.Options{MaxMessageBytes: 1000}),
			func(c *config.Config) { c.Limits.MaxMessageBytes = 1000 })
		admin := e.login(e.agent("admin@example.com", inbox.RoleAdmin).Email)
		agent := e.login(e.agent("bob@example.com", inbox.RoleAgent).Email)
		none := e.client()

		var hello inbox.SavedReply
		admin.do("POST", "/api/v1/saved-replies", map[string]string{"shortcut": "Hello", "title": " Greeting ", "text": "Hello!\nHow can I help?\n"}).
			want(http.StatusCreated).decode(&hello)
		if hello.ID == 0 || hello.Shortcut != "hello" || hello.Title != "Greeting" || hello.Text != "Hello!\nHow can I help?" || hello.UpdatedAt.IsZero() {
			t.Fatalf("created = %+v", hello)
		}
		var bye inbox.SavedReply
		admin.do("POST", "/api/v1/saved-replies", map[string]string{"shortcut": "bye_2-x", "title": "Bye", "text": "Goodbye."}).want(http.StatusCreated).decode(&bye)

		var list savedReplyList
		agent.do("GET", "/api/v1/saved-replies", nil).want(http.StatusOK).decode(&list)
		if len(list.Items) != 2 || list.Items[0].ID != bye.ID || list.Items[1].ID != hello.ID {
			t.Fatalf("list = %+v, want bye_2-x and hello, by shortcut", list.Items)
		}
		none.do("GET", "/api/v1/saved-replies", nil).want(http.StatusUnauthorized)

		// Agents may not write; without a session nobody may.
		body := map[string]string{"shortcut": "x", "title": "X", "text": "x"}
		agent.do("POST", "/api/v1/saved-replies", body).want(http.StatusForbidden)
		agent.do("PATCH", "/api/v1/saved-replies/"+itoa64(hello.ID), map[string]string{"text": "changed"}).want(http.StatusForbidden)
		agent.do("DELETE", "/api/v1/saved-replies/"+itoa64(hello.ID), nil).want(http.StatusForbidden)
		none.do("POST", "/api/v1/saved-replies", body).want(http.StatusUnauthorized)
		none.do("DELETE", "/api/v1/saved-replies/"+itoa64(hello.ID), nil).want(http.StatusUnauthorized)

		// Bad input names the field.
		for _, tc := range []struct {
			body  map[string]any
			field string
		}{
			{map[string]any{"title": "X", "text": "x"}, "shortcut"},
			{map[string]any{"shortcut": "", "title": "X", "text": "x"}, "shortcut"},
			{map[string]any{"shortcut": "two words", "title": "X", "text": "x"}, "shortcut"},
			{map[string]any{"shortcut": "/hi", "title": "X", "text": "x"}, "shortcut"},
			{map[string]any{"shortcut": "é", "title": "X", "text": "x"}, "shortcut"},
			{map[string]any{"shortcut": strings.Repeat("a", 33), "title": "X", "text": "x"}, "shortcut"},
			{map[string]any{"shortcut": 7, "title": "X", "text": "x"}, "shortcut"},
			{map[string]any{"shortcut": "x", "text": "x"}, "title"},
			{map[string]any{"shortcut": "x", "title": "  ", "text": "x"}, "title"},
			{map[string]any{"shortcut": "x", "title": strings.Repeat("t", 101), "text": "x"}, "title"},
			{map[string]any{"shortcut": "x", "title": "X"}, "text"},
			{map[string]any{"shortcut": "x", "title": "X", "text": " \n "}, "text"},
			{map[string]any{"shortcut": "x", "title": "X", "text": strings.Repeat("y", 1001)}, "text"},
			{map[string]any{"shortcut": "x", "title": "X", "text": "a\x00b"}, "text"},
			{map[string]any{"shortcut": "x", "title": "X", "text": "x", "owner": 1}, "owner"},
		} {
			admin.do("POST", "/api/v1/saved-replies", tc.body).wantField(tc.field)
		}
		admin.do("POST", "/api/v1/saved-replies", nil).want(http.StatusBadRequest)

		// A shortcut is unique, whatever its case.
		r := admin.do("POST", "/api/v1/saved-replies", map[string]string{"shortcut": "HELLO", "title": "Again", "text": "again"}).want(http.StatusConflict)
		if f := r.apiErr().Field; f != "shortcut" {
			t.Fatalf("duplicate shortcut: field %q", f)
		}
		admin.do("PATCH", "/api/v1/saved-replies/"+itoa64(bye.ID), map[string]string{"shortcut": "hello"}).want(http.StatusConflict)

		// Change some fields; the others stay.
		var changed inbox.SavedReply
		admin.do("PATCH", "/api/v1/saved-replies/"+itoa64(hello.ID), map[string]string{"text": "Hi there."}).want(http.StatusOK).decode(&changed)
		if changed.Shortcut != "hello" || changed.Title != "Greeting" || changed.Text != "Hi there." || changed.UpdatedAt.Before(hello.UpdatedAt) {
			t.Fatalf("changed = %+v", changed)
		}
		admin.do("PATCH", "/api/v1/saved-replies/"+itoa64(hello.ID), map[string]string{"title": ""}).wantField("title")
		admin.do("PATCH", "/api/v1/saved-replies/999999", map[string]string{"text": "x"}).want(http.StatusNotFound)

		admin.do("DELETE", "/api/v1/saved-replies/"+itoa64(hello.ID), nil).want(http.StatusNoContent)
		admin.do("DELETE", "/api/v1/saved-replies/"+itoa64(hello.ID), nil).want(http.StatusNotFound)
		admin.do("GET", "/api/v1/saved-replies", nil).want(http.StatusOK).decode(&list)
		if fmt.Sprint(len(list.Items)) != "1" || list.Items[0].ID != bye.ID {
			t.Fatalf("list after delete = %+v", list.Items)
		}
		// The shortcut is free again.
		admin.do("POST", "/api/v1/saved-replies", map[string]string{"shortcut": "hello", "title": "Hello", "text": "Hello."}).want(http.StatusCreated)
	})
}
