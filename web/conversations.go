package web

import (
	"context"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/microdeets/microchat/inbox"
)

// conversationList is a page of a dashboard column with the sizes of all
// columns.
type conversationList struct {
	Items      []inbox.ConversationItem `json:"items"`
	NextCursor string                   `json:"next_cursor,omitempty"`
	Counts     map[string]int64         `json:"counts"`
}

// listConversations returns a page of a column: unassigned, mine, open or
// closed.
func (s *Server) listConversations(c echo.Context) error {
	limit, err := queryInt(c, "limit")
	if err != nil {
		return err
	}
	agent := agentOf(c)
	ctx := c.Request().Context()
	page, err := s.store.ListConversations(ctx, inbox.ListQuery{
		Column: c.QueryParam("column"), AgentID: agent.ID, Search: c.QueryParam("q"), Cursor: c.QueryParam("cursor"), Limit: int(min(limit, 1000)),
	})
	if err != nil {
		return err
	}
	counts, err := s.store.ColumnCounts(ctx, agent.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, conversationList{Items: page.Items, NextCursor: page.NextCursor, Counts: counts})
}

// getConversation returns one conversation as the list shows it.
func (s *Server) getConversation(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	item, err := s.store.ConversationItem(c.Request().Context(), id, agentOf(c).ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, item)
}

// deleteConversation removes a conversation for good (admins).
func (s *Server) deleteConversation(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	if err := s.store.DeleteConversation(c.Request().Context(), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// listMessages returns a page of messages by sequence number: before or
// after one, or the newest.
func (s *Server) listMessages(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	var q inbox.MessageQuery
	if q.Before, err = queryInt(c, "before"); err != nil {
		return err
	}
	if q.After, err = queryInt(c, "after"); err != nil {
		return err
	}
	limit, err := queryInt(c, "limit")
	if err != nil {
		return err
	}
	q.Limit = int(min(limit, 1000))
	page, err := s.store.Messages(c.Request().Context(), id, q)
	if err != nil {
		return err
	}
	if page.Messages == nil {
		page.Messages = []inbox.Message{}
	}
	return c.JSON(http.StatusOK, page)
}

type eventList struct {
	Events []inbox.Event `json:"events"`
}

// listEvents returns the conversation's events after sequence number
// after, for a client that missed some. 409 with resync true means they
// are no longer kept: reload the conversation.
func (s *Server) listEvents(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	after, err := queryInt(c, "after")
	if err != nil {
		return err
	}
	evs, err := s.store.EventsSince(c.Request().Context(), id, after, 0)
	if err != nil {
		return err
	}
	if evs == nil {
		evs = []inbox.Event{}
	}
	return c.JSON(http.StatusOK, eventList{Events: evs})
}

// replyChannel says where a reply would go now and why, for the composer
// to show before sending.
func (s *Server) replyChannel(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	d, err := s.store.ReplyChannel(c.Request().Context(), id, c.QueryParam("channel"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, d)
}

type replyRequest struct {
	Text     string `json:"text"`
	Channel  string `json:"channel"`
	ClientID string `json:"client_id"`
	// AttachmentIDs are files uploaded to the conversation with POST
	// .../attachments and not sent yet.
	AttachmentIDs []int64 `json:"attachment_ids"`
}

type replyAnswer struct {
	Message inbox.Message `json:"message"`
	Channel string        `json:"channel"`
	Reason  string        `json:"reason"`
}

// postMessage sends an agent's reply on the channel rule 5 picks (or the
// one asked for): 201, or 200 when a message with the same client_id was
// already stored.
func (s *Server) postMessage(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	var req replyRequest
	if err := bindJSON(c, &req, true); err != nil {
		return err
	}
	ans, created, err := s.reply(c.Request().Context(), agentOf(c).ID, id, req)
	if err != nil {
		return err
	}
	code := http.StatusCreated
	if !created {
		code = http.StatusOK
	}
	return c.JSON(code, ans)
}

// reply stores an agent's reply to a conversation, once the request is
// decoded: the POST above and the agents' socket's message frame
// (agentws.go) both send through it. The store decides the channel in
// the transaction that stores the reply (inbox.Store.AddReply), and the
// answer says which and why. created is false when a message with the
// same client id was already stored; the answer is then that message.
func (s *Server) reply(ctx context.Context, agentID, conversationID int64, req replyRequest) (ans replyAnswer, created bool, err error) {
	if wait, ok := s.replies.Allow(strconv.FormatInt(agentID, 10), s.store.Now()); !ok {
		return replyAnswer{}, false, &rateLimited{msg: "too many replies; wait a moment", wait: wait}
	}
	if len(req.AttachmentIDs) == 0 {
		if err := required("text", req.Text); err != nil {
			return replyAnswer{}, false, err
		}
	}
	msg, d, created, err := s.store.AddReply(ctx, inbox.NewMessage{
		ConversationID: conversationID, ClientID: req.ClientID, Author: inbox.AuthorAgent, AgentID: &agentID,
		Channel: req.Channel, Text: req.Text, AttachmentIDs: req.AttachmentIDs,
	})
	if err != nil {
		return replyAnswer{}, false, err
	}
	return replyAnswer{Message: msg, Channel: d.Channel, Reason: d.Reason}, created, nil
}

// join makes the agent a participant and returns the conversation after.
func (s *Server) join(c echo.Context) error {
	return s.participate(c, s.store.Join)
}

// leave removes the agent and returns the conversation after; 409 if they
// were not in it.
func (s *Server) leave(c echo.Context) error {
	return s.participate(c, s.store.Leave)
}

func (s *Server) participate(c echo.Context, change func(ctx context.Context, conversationID, agentID int64) error) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	agentID := agentOf(c).ID
	if err := change(ctx, id, agentID); err != nil {
		return err
	}
	item, err := s.store.ConversationItem(ctx, id, agentID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, item)
}

type readRequest struct {
	// UpTo is the sequence number read up to; 0 means everything.
	UpTo int64 `json:"up_to"`
}

// markRead records how far the agent read the conversation.
func (s *Server) markRead(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	var req readRequest
	if err := bindJSON(c, &req, false); err != nil {
		return err
	}
	if req.UpTo < 0 {
		return &inbox.InvalidError{Field: "up_to", Reason: "must not be negative"}
	}
	if err := s.store.MarkRead(c.Request().Context(), id, agentOf(c).ID, req.UpTo); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
