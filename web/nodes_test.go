package web

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/microdeets/microchat/config"
	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// on returns a copy of c that sends its requests to node e: the same
// cookies (the jar keeps them per host, whatever the port) and headers.
func (c *client) on(e *env) *client {
	cp := *c
	cp.e = e
	return &cp
}

// TestTwoNodesShare: two nodes (Servers with their own Stores) on one
// database: what a client did on node A holds on node B. A file uploaded
// on A downloads on B, for the agent and the visitor alike; a session and
// a visitor token made on A work on B; and login attempts on both count
// against one budget per IP and per email (issue 14 item 4).
func TestTwoNodesShare(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		limit := func(c *config.Config) { c.Limits.LoginAttemptsPerMinute = 4 }
		a := newEnv(t, url, limit)
		b := newEnvStore(t, inboxtest.Open(t, url, nil), limit)
		v := a.startVisitor("Uma")
		a.agent("alice@example.com", inbox.RoleAgent)
		ac := a.login("alice@example.com")
		photo := append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR"), bytes.Repeat([]byte{7}, 100)...)
		conv := itoa64(v.start.Conversation.ID)

		var mine attachmentAnswer
		ac.upload("/api/v1/conversations/"+conv+"/attachments", "photo.png", photo).want(http.StatusCreated).decode(&mine)
		r := ac.on(b).do("GET", "/api/v1/conversations/"+conv+"/attachments/"+itoa64(mine.Attachment.ID), nil).want(http.StatusOK)
		if !bytes.Equal(r.body, photo) {
			t.Fatalf("agent's upload on A downloaded on B: %d bytes, want the %d uploaded", len(r.body), len(photo))
		}
		var theirs attachmentAnswer
		v.upload("/api/v1/widget/uploads", "photo.png", photo).want(http.StatusCreated).decode(&theirs)
		r = v.client.on(b).do("GET", "/api/v1/widget/attachments/"+itoa64(theirs.Attachment.ID), nil).want(http.StatusOK)
		if !bytes.Equal(r.body, photo) {
			t.Fatalf("visitor's upload on A downloaded on B: %d bytes, want the %d uploaded", len(r.body), len(photo))
		}

		// Login attempts: 4 a minute per IP and per email, whichever node
		// is asked; Alice's login on A above was the first.
		wrong := map[string]string{"email": "alice@example.com", "password": "wrong password"}
		c := a.client()
		for i, n := range []*env{b, a, b} {
			if got := c.on(n).do("POST", "/api/v1/auth/login", wrong).code; got != http.StatusUnauthorized {
				t.Fatalf("attempt %d = %d, want 401", i+1, got)
			}
		}
		for _, n := range []*env{a, b} {
			c.on(n).do("POST", "/api/v1/auth/login", wrong).want(http.StatusTooManyRequests)
		}
	})
}
