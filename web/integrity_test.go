package web

import (
	"bytes"
	"context"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"testing"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// Issue 11 item 3, over every entry point: the visitor's client id
// "reply-1" does not answer an agent's reply with the same client id; the
// agent's reply is stored. The same author reusing a key for other
// content is a 409 over HTTP, an error frame with status 409 over the
// agents' socket and a conflict error frame over the widget's.
func TestClientIDScopedToAuthorOverTheAPI(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newEnv(t, url, nil)
		e.agent("alice@example.com", inbox.RoleAdmin)
		bob := e.agent("bob@example.com", inbox.RoleAgent)
		alice := e.login("alice@example.com")
		v := e.startVisitor("Vic")
		convID := v.start.Conversation.ID
		s, _ := v.connect(0)
		s.send(t, map[string]any{"type": "message", "client_id": "reply-1", "text": "where is my order?"})
		if f := s.find(t, "ack"); f.Message == nil || f.Message.Author != inbox.AuthorContact {
			t.Fatalf("visitor's ack = %s", f)
		}

		path := "/api/v1/conversations/" + itoa64(convID) + "/messages"
		var ans replyAnswer
		alice.do("POST", path, map[string]any{"client_id": "reply-1", "text": "on its way"}).want(http.StatusCreated).decode(&ans)
		if ans.Message.Author != inbox.AuthorAgent || ans.Message.Text != "on its way" {
			t.Fatalf("agent's reply with the visitor's client id = %+v, want it stored", ans.Message)
		}
		var again replyAnswer
		alice.do("POST", path, map[string]any{"client_id": "reply-1", "text": "on its way"}).want(http.StatusOK).decode(&again)
		if again.Message.ID != ans.Message.ID {
			t.Fatalf("agent's retry = %+v, want message %d", again.Message, ans.Message.ID)
		}
		if e := alice.do("POST", path, map[string]any{"client_id": "reply-1", "text": "cancelled"}).want(http.StatusConflict).apiErr(); e.Field != "client_id" {
			t.Fatalf("agent's reuse with other text = %+v, want 409 on client_id", e)
		}

		dash := e.agentSock(bob)
		dash.send(t, messageFrame(convID, "reply-1", "from bob"))
		if f, _ := dash.answer(t, "reply-1"); f.Type != "ack" || f.Message == nil || f.Message.AgentID == nil || *f.Message.AgentID != bob.ID {
			t.Fatalf("bob's reply with the same client id = %+v, want an ack of his own message", f)
		}
		dash.send(t, messageFrame(convID, "reply-1", "something else"))
		if f, _ := dash.answer(t, "reply-1"); f.Type != "error" || f.Status != http.StatusConflict || f.Field != "client_id" {
			t.Fatalf("bob's reuse with other text = %+v, want error 409 on client_id", f)
		}

		s.send(t, map[string]any{"type": "message", "client_id": "reply-1", "text": "never mind"})
		if f := s.find(t, "error"); f.Code != "conflict" || f.ClientID != "reply-1" {
			t.Fatalf("visitor's reuse with other text = %s, want a conflict error", f)
		}
		page, err := e.store.Messages(context.Background(), convID, inbox.MessageQuery{})
		if err != nil || len(page.Messages) != 3 {
			t.Fatalf("Messages() = %d, %v; want the visitor's, alice's and bob's", len(page.Messages), err)
		}
	})
}

// Issue 11 item 4, over the API: an agent's unsent upload is a 404 for the
// visitor and for another agent, and neither can attach it (400 on
// attachment_ids, invalid on the socket); once the agent sends it, the
// visitor downloads it.
func TestUnsentAttachmentIsTheUploaders(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newEnv(t, url, nil)
		e.agent("alice@example.com", inbox.RoleAdmin)
		e.agent("bob@example.com", inbox.RoleAgent)
		alice := e.login("alice@example.com")
		bob := e.login("bob@example.com")
		v := e.startVisitor("Vic")
		convID := v.start.Conversation.ID
		conv := "/api/v1/conversations/" + itoa64(convID)

		var up attachmentAnswer
		alice.upload(conv+"/attachments", "draft.png", pngBytes).want(http.StatusCreated).decode(&up)
		aid := itoa64(up.Attachment.ID)
		v.do("GET", "/api/v1/widget/attachments/"+aid, nil).want(http.StatusNotFound)
		bob.do("GET", conv+"/attachments/"+aid, nil).want(http.StatusNotFound)
		alice.do("GET", conv+"/attachments/"+aid, nil).want(http.StatusOK)

		s, _ := v.connect(0)
		s.send(t, map[string]any{"type": "message", "client_id": "c1", "text": "mine", "attachment_ids": []int64{up.Attachment.ID}})
		if f := s.find(t, "error"); f.Code != "invalid" || f.ClientID != "c1" {
			t.Fatalf("visitor attaching the agent's upload = %s, want invalid", f)
		}
		bob.do("POST", conv+"/messages", map[string]any{"text": "mine", "attachment_ids": []int64{up.Attachment.ID}}).
			want(http.StatusBadRequest).wantField("attachment_ids")

		alice.do("POST", conv+"/messages", map[string]any{"text": "here", "attachment_ids": []int64{up.Attachment.ID}}).want(http.StatusCreated)
		v.do("GET", "/api/v1/widget/attachments/"+aid, nil).want(http.StatusOK)
		bob.do("GET", conv+"/attachments/"+aid, nil).want(http.StatusOK)

		// The visitor's own upload: theirs before it is sent.
		var mine attachmentAnswer
		v.upload("/api/v1/widget/uploads", "photo.png", pngBytes).want(http.StatusCreated).decode(&mine)
		v.do("GET", "/api/v1/widget/attachments/"+itoa64(mine.Attachment.ID), nil).want(http.StatusOK)
		alice.do("GET", conv+"/attachments/"+itoa64(mine.Attachment.ID), nil).want(http.StatusNotFound)
	})
}

// uploadNamed posts a file whose name, encoded as RFC 2231 allows, may
// hold any byte.
func (c *client) uploadNamed(path, encodedName string, data []byte) *result {
	c.e.t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="file"; filename*=UTF-8''`+encodedName)
	h.Set("Content-Type", "application/octet-stream")
	fw, err := w.CreatePart(h)
	if err != nil {
		c.e.t.Fatal(err)
	}
	fw.Write(data)
	w.Close()
	req, _ := http.NewRequest("POST", c.e.ts.URL+path, &b)
	req.Header.Set("Content-Type", w.FormDataContentType())
	return c.send(req)
}

// Issue 11 item 5: a NUL at any entry point is a 400 naming the field
// over HTTP, an invalid error frame over the widget's socket and an error
// frame with status 400 over the agents' socket, on both databases; never
// a 500 or unavailable, and nothing is stored.
func TestNULRefusedOverTheAPI(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newEnv(t, url, nil)
		aliceAgent := e.agent("alice@example.com", inbox.RoleAdmin)
		alice := e.login("alice@example.com")
		v := e.startVisitor("Vic")
		convID := v.start.Conversation.ID
		conv := "/api/v1/conversations/" + itoa64(convID)
		page := map[string]string{"url": "https://shop.example/", "title": "Sh\x00op"}

		e.client().do("POST", "/api/v1/auth/login", map[string]string{"email": "alice@example.com\x00", "password": testPassword}).
			want(http.StatusBadRequest).wantField("email")
		alice.do("POST", "/api/v1/agents", map[string]string{"email": "dan@example.com", "name": "D\x00an", "password": testPassword}).
			want(http.StatusBadRequest).wantField("name")
		alice.do("PATCH", "/api/v1/agents/me", map[string]string{"name": "Al\x00ice"}).want(http.StatusBadRequest).wantField("name")
		e.client().do("POST", "/api/v1/setup", map[string]string{"token": "t", "email": "root@example.com", "name": "Ro\x00ot", "password": testPassword}).
			want(http.StatusBadRequest).wantField("name")
		e.client().do("POST", "/api/v1/widget/conversations", map[string]any{"name": "Ev\x00e"}).
			want(http.StatusBadRequest).wantField("name")
		e.client().do("POST", "/api/v1/widget/conversations", map[string]any{"name": "Eve", "pages": []any{page}}).
			want(http.StatusBadRequest).wantField("title")
		v.do("POST", "/api/v1/widget/conversations", map[string]any{"name": "Vic", "pages": []any{page}}).
			want(http.StatusBadRequest).wantField("title")
		alice.do("POST", conv+"/messages", map[string]any{"text": "hi\x00"}).want(http.StatusBadRequest).wantField("text")
		alice.do("POST", conv+"/messages", map[string]any{"text": "hi", "client_id": "k\x00"}).want(http.StatusBadRequest).wantField("client_id")
		alice.uploadNamed(conv+"/attachments", "a%00.png", pngBytes).want(http.StatusBadRequest).wantField("filename")
		v.uploadNamed("/api/v1/widget/uploads", "a%00.png", pngBytes).want(http.StatusBadRequest).wantField("filename")

		s, _ := v.connect(0)
		for _, f := range []map[string]any{
			{"type": "message", "client_id": "c1", "text": "hi\x00"},
			{"type": "message", "client_id": "c\x00", "text": "hi"},
			{"type": "page_view", "url": "https://shop.example/\x00", "title": "Shop"},
			{"type": "page_view", "url": "https://shop.example/", "title": "Sh\x00op"},
		} {
			s.send(t, f)
			if got := s.find(t, "error"); got.Code != "invalid" {
				t.Fatalf("visitor frame %q = %s, want an invalid error", f, got)
			}
		}
		dash := e.agentSock(aliceAgent)
		dash.send(t, messageFrame(convID, "a1", "hi\x00"))
		if f, _ := dash.answer(t, "a1"); f.Type != "error" || f.Status != http.StatusBadRequest || f.Field != "text" {
			t.Fatalf("agent frame with NUL = %+v, want error 400 on text", f)
		}

		// The rating's comment, once the conversation is closed.
		ctx := context.Background()
		noError(t, "Join()", e.store.Join(ctx, convID, aliceAgent.ID))
		noError(t, "Leave()", e.store.Leave(ctx, convID, aliceAgent.ID))
		v.do("POST", "/api/v1/widget/rating", map[string]any{"score": 5, "comment": "great\x00"}).want(http.StatusBadRequest).wantField("comment")

		msgs, err := e.store.Messages(ctx, convID, inbox.MessageQuery{})
		if err != nil || len(msgs.Messages) != 0 {
			t.Fatalf("Messages() = %+v, %v; want none stored", msgs.Messages, err)
		}
	})
}
