package web

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/microdeets/microchat/channels/webchat"
	"github.com/microdeets/microchat/inbox"
)

// The widget's API under /api/v1/widget (docs/widget-protocol.md). The
// widget runs on customers' sites, so these routes answer CORS for the
// allowed origins and use no cookies: a visitor is known by the token
// minted when they start a chat, sent as Authorization: Bearer. A visitor
// reaches only their own contact's conversation and attachments; anything
// else is the same 404 as a missing one.

// ctxContact is the context key of the visitor's contact (requireVisitor).
const ctxContact = "web.contact"

// contactOf returns the contact of a request that passed requireVisitor.
func contactOf(c echo.Context) inbox.Contact {
	ct, _ := c.Get(ctxContact).(inbox.Contact)
	return ct
}

// bearer returns the token of an Authorization: Bearer header.
func bearer(r *http.Request) string {
	scheme, token, ok := strings.Cut(r.Header.Get(echo.HeaderAuthorization), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// requireVisitor lets a request through with a live visitor token, and
// puts the contact in the context.
func (s *Server) requireVisitor(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		token := bearer(c.Request())
		if token == "" {
			return echo.NewHTTPError(http.StatusUnauthorized, "visitor token required (Authorization: Bearer)")
		}
		contact, err := s.store.VisitorContact(c.Request().Context(), token, s.cfg.Widget.SessionTTL.D())
		if errors.Is(err, inbox.ErrUnauthenticated) {
			return echo.NewHTTPError(http.StatusUnauthorized, "the visitor token is wrong or expired; start a new chat")
		}
		if err != nil {
			return err
		}
		c.Set(ctxContact, contact)
		return next(c)
	}
}

// widgetOriginAllowed reports whether a page of this Origin may use the
// widget's API: any when widget.allowed_origins is empty, else those
// listed. A request without Origin is not from a browser page.
func (s *Server) widgetOriginAllowed(origin string) bool {
	if origin == "" || len(s.cfg.Widget.AllowedOrigins) == 0 {
		return true
	}
	for _, o := range s.cfg.Widget.AllowedOrigins {
		if strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
}

// widgetCORS answers CORS for the widget's routes: the request's Origin is
// allowed back when it may use the widget, and refused with 403 when not,
// since CORS alone does not stop a simple request from being served.
func (s *Server) widgetCORS(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		origin := c.Request().Header.Get(echo.HeaderOrigin)
		h := c.Response().Header()
		h.Add(echo.HeaderVary, echo.HeaderOrigin)
		if !s.widgetOriginAllowed(origin) {
			return echo.NewHTTPError(http.StatusForbidden, "this site may not use the chat widget")
		}
		if origin != "" {
			h.Set(echo.HeaderAccessControlAllowOrigin, origin)
			h.Set(echo.HeaderAccessControlExposeHeaders, echo.HeaderRetryAfter)
		}
		return next(c)
	}
}

// widgetPreflight answers the browser's CORS preflight of any widget
// route.
func (s *Server) widgetPreflight(c echo.Context) error {
	h := c.Response().Header()
	h.Set(echo.HeaderAccessControlAllowMethods, "GET, POST, OPTIONS")
	h.Set(echo.HeaderAccessControlAllowHeaders, "Authorization, Content-Type")
	h.Set(echo.HeaderAccessControlMaxAge, "600")
	return c.NoContent(http.StatusNoContent)
}

type pageRequest struct {
	URL      string    `json:"url"`
	Title    string    `json:"title"`
	Referrer string    `json:"referrer"`
	At       time.Time `json:"at"`
}

type startRequest struct {
	Name  string        `json:"name"`
	Email string        `json:"email"`
	Phone string        `json:"phone"`
	Pages []pageRequest `json:"pages"`
}

type startAnswer struct {
	Token        string             `json:"token"`
	ExpiresAt    time.Time          `json:"expires_at"`
	Contact      inbox.Contact      `json:"contact"`
	Conversation inbox.Conversation `json:"conversation"`
}

// startConversation is Start Chat: a new contact with a new token and
// conversation (201). With a live token, the same contact gets a new
// conversation only if they have none (201), else their current one
// (200); a wrong or expired token is ignored, as if there were none.
func (s *Server) startConversation(c echo.Context) error {
	var req startRequest
	if err := bindJSON(c, &req, true); err != nil {
		return err
	}
	if err := required("name", req.Name); err != nil {
		return err
	}
	pages := make([]inbox.NewPageView, 0, len(req.Pages))
	for _, p := range req.Pages {
		pages = append(pages, inbox.NewPageView{URL: p.URL, Title: p.Title, Referrer: p.Referrer, At: p.At})
	}
	ip := c.RealIP()
	if wait, ok := s.chat.Limits().AllowStart(ip); !ok {
		return &rateLimited{msg: "too many chats started from this address; wait a moment", wait: wait}
	}
	ctx := c.Request().Context()
	ttl := s.cfg.Widget.SessionTTL.D()
	facts := webchat.FactsOf(c.Request().UserAgent(), ip)
	if token := bearer(c.Request()); token != "" {
		contact, err := s.store.VisitorContact(ctx, token, ttl)
		if err == nil {
			return s.restartConversation(c, token, contact, facts, pages)
		}
		if !errors.Is(err, inbox.ErrUnauthenticated) {
			return err
		}
	}
	v, err := s.store.StartVisitor(ctx, inbox.NewVisitor{Name: req.Name, Email: req.Email, Phone: req.Phone, Facts: facts, Pages: pages}, ttl)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, startAnswer{Token: v.Token, ExpiresAt: v.ExpiresAt, Contact: v.Contact, Conversation: v.Conversation})
}

func (s *Server) restartConversation(c echo.Context, token string, contact inbox.Contact, facts inbox.Facts, pages []inbox.NewPageView) error {
	ctx := c.Request().Context()
	if _, err := s.store.SetContactFacts(ctx, contact.ID, facts); err != nil {
		return err
	}
	conv, created, err := s.store.StartVisitorConversation(ctx, contact.ID, pages)
	if err != nil {
		return err
	}
	contact, err = s.store.Contact(ctx, contact.ID)
	if err != nil {
		return err
	}
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	return c.JSON(code, startAnswer{Token: token, ExpiresAt: time.Now().UTC().Add(s.cfg.Widget.SessionTTL.D()), Contact: contact, Conversation: conv})
}

type stateAnswer struct {
	Contact      inbox.Contact       `json:"contact"`
	Conversation *inbox.Conversation `json:"conversation"` // null: none (deleted); Start Chat again
	Messages     []inbox.Message     `json:"messages"`
	// Events are the joined, left and closed events among these messages
	// (lineEvents), which the widget shows as lines between them.
	Events    []inbox.Event   `json:"events"`
	HasBefore bool            `json:"has_before"`
	Agents    []webchat.Agent `json:"agents"`
	// Authors names every agent in the history, those who left too.
	Authors []inbox.AgentName `json:"authors"`
	Rating  *inbox.Rating     `json:"rating,omitempty"`
	// Limits let the widget refuse an oversized file or message before
	// sending it.
	Limits widgetLimits `json:"limits"`
}

type widgetLimits struct {
	MaxUploadBytes  int64 `json:"max_upload_bytes"`
	MaxMessageBytes int64 `json:"max_message_bytes"`
}

// widgetState is what the widget shows when it opens: the conversation,
// its last 50 messages (private notes are not the visitor's) and its
// agents with their presence.
func (s *Server) widgetState(c echo.Context) error {
	ctx := c.Request().Context()
	contact := contactOf(c)
	ans := stateAnswer{Contact: contact, Messages: []inbox.Message{}, Events: []inbox.Event{}, Agents: []webchat.Agent{}, Authors: []inbox.AgentName{},
		Limits: widgetLimits{MaxUploadBytes: int64(s.cfg.Limits.MaxUploadBytes), MaxMessageBytes: int64(s.cfg.Limits.MaxMessageBytes)}}
	conv, err := s.store.CurrentConversation(ctx, contact.ID)
	if errors.Is(err, inbox.ErrNotFound) {
		return c.JSON(http.StatusOK, ans)
	}
	if err != nil {
		return err
	}
	ans.Conversation = &conv
	page, err := s.store.Messages(ctx, conv.ID, inbox.MessageQuery{Limit: 50, Contact: true}) // no private notes
	if err != nil {
		return err
	}
	if page.Messages != nil {
		ans.Messages = webchat.VisitorMessages(page.Messages) // no email envelope, HTML or error
	}
	ans.HasBefore = page.HasBefore
	if ans.Events, err = s.lineEvents(ctx, conv.ID, page, conv.Seq); err != nil {
		return err
	}
	parts, err := s.store.Participants(ctx, conv.ID)
	if err != nil {
		return err
	}
	ans.Agents = webchat.Agents(parts)
	if ans.Authors, err = s.store.Authors(ctx, conv.ID); err != nil {
		return err
	}
	if ans.Rating, err = s.store.Rating(ctx, conv.ID); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, ans)
}

// currentConversation returns the visitor's conversation; 404 if they
// have none.
func (s *Server) currentConversation(ctx context.Context, c echo.Context) (inbox.Conversation, error) {
	return s.store.CurrentConversation(ctx, contactOf(c).ID)
}

type widgetMessagesAnswer struct {
	Messages  []inbox.Message `json:"messages"`
	Events    []inbox.Event   `json:"events"` // as in stateAnswer
	HasBefore bool            `json:"has_before"`
}

// lineEvents returns the joined, left and closed events that belong to a
// page of messages whose last seq is at most to: from its first message
// (from the conversation's start when it is the first page) to to. Pages
// fetched one before the other (/state, then /messages?before=) so get
// every event once.
func (s *Server) lineEvents(ctx context.Context, conv int64, page inbox.MessagePage, to int64) ([]inbox.Event, error) {
	var from int64
	if page.HasBefore && len(page.Messages) > 0 {
		from = page.Messages[0].Seq
	}
	evs, err := s.store.LineEvents(ctx, conv, from, to, 200)
	if evs == nil {
		evs = []inbox.Event{}
	}
	return evs, err
}

// widgetMessages returns older messages of the visitor's conversation,
// private notes aside.
func (s *Server) widgetMessages(c echo.Context) error {
	before, err := queryInt(c, "before")
	if err != nil {
		return err
	}
	limit, err := queryInt(c, "limit")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	conv, err := s.currentConversation(ctx, c)
	if err != nil {
		return err
	}
	page, err := s.store.Messages(ctx, conv.ID, inbox.MessageQuery{Before: before, Limit: int(min(limit, 1000)), Contact: true})
	if err != nil {
		return err
	}
	if page.Messages == nil {
		page.Messages = []inbox.Message{}
	}
	to := conv.Seq
	if before > 0 {
		to = before - 1
	}
	evs, err := s.lineEvents(ctx, conv.ID, page, to)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, widgetMessagesAnswer{Messages: webchat.VisitorMessages(page.Messages), Events: evs, HasBefore: page.HasBefore})
}

// widgetUpload stores a visitor's file in their conversation, to be sent
// with a message that names it in attachment_ids.
func (s *Server) widgetUpload(c echo.Context) error {
	contact := contactOf(c)
	if wait, ok := s.chat.Limits().AllowUpload(contact.ID, c.RealIP()); !ok {
		return &rateLimited{msg: "too many files sent; wait a moment", wait: wait}
	}
	return s.storeUpload(c, inbox.Uploader{Author: inbox.AuthorContact}, func(ctx context.Context) (int64, error) {
		conv, err := s.currentConversation(ctx, c)
		return conv.ID, err
	})
}

// widgetAttachment sends an attachment of the visitor's own conversations
// that was sent with a message or that they uploaded; an agent's unsent
// upload is the same 404 as a missing one.
func (s *Server) widgetAttachment(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	a, err := s.store.OpenContactAttachment(c.Request().Context(), contactOf(c).ID, id)
	if err != nil {
		return err
	}
	return serveAttachment(c, a)
}

type ratingRequest struct {
	Score   int    `json:"score"`
	Comment string `json:"comment"`
}

type ratingAnswer struct {
	Rating inbox.Rating `json:"rating"`
}

// widgetRating stores the visitor's rating of their closed conversation,
// for every agent who took part (rule 3); 409 while it is open.
func (s *Server) widgetRating(c echo.Context) error {
	var req ratingRequest
	if err := bindJSON(c, &req, true); err != nil {
		return err
	}
	ctx := c.Request().Context()
	conv, err := s.currentConversation(ctx, c)
	if err != nil {
		return err
	}
	if conv.Status != inbox.StatusClosed {
		return echo.NewHTTPError(http.StatusConflict, "the conversation is still open; rate it once it is closed")
	}
	r, err := s.store.Rate(ctx, conv.ID, req.Score, req.Comment)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, ratingAnswer{Rating: r})
}
