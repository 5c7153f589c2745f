package web

import (
	"mime"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/microdeets/microchat/inbox"
)

// The email of a conversation beyond what the thread shows (issue 12,
// items 3 and 9; spec rule 8): an email message's whole envelope and
// body for agents, and the raw source of a message or of a quarantined
// mail for admins. The thread itself (GET .../messages, the list, the
// agents' socket) carries each email message's envelope as Message.Email.
//
// A raw source is a stranger's mail, headers and HTML included: it is
// only ever a download (Content-Disposition: attachment, nosniff, and a
// sandbox CSP should a browser open it all the same), never shown inline.

// emailDetails returns an email message's envelope, headers and whole
// text and HTML (sanitized as Message.HTML), for an agent who opens what
// the thread trimmed. A chat message, an email reply not sent yet, or a
// message of another conversation is 404.
func (s *Server) emailDetails(c echo.Context) error {
	id, mid, err := messagePath(c)
	if err != nil {
		return err
	}
	d, err := s.store.EmailDetails(c.Request().Context(), id, mid)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, d)
}

// emailRaw sends an email message's raw source as it was fetched or sent
// (admins), as message-{mid}.eml; 404 as emailDetails, and when no
// source was kept.
func (s *Server) emailRaw(c echo.Context) error {
	id, mid, err := messagePath(c)
	if err != nil {
		return err
	}
	raw, err := s.store.EmailRaw(c.Request().Context(), id, mid)
	if err != nil {
		return err
	}
	if len(raw) == 0 {
		return echo.NewHTTPError(http.StatusNotFound, "no raw source is kept for this message")
	}
	return serveRaw(c, "message-"+strconv.FormatInt(mid, 10)+".eml", raw)
}

// quarantineList is the answer of GET /quarantine.
type quarantineList struct {
	Emails []inbox.QuarantinedEmail `json:"emails"`
}

// listQuarantine returns the mail that could not be parsed, the newest
// first, without the raw sources (admins).
func (s *Server) listQuarantine(c echo.Context) error {
	list, err := s.store.ListQuarantine(c.Request().Context())
	if err != nil {
		return err
	}
	if list == nil {
		list = []inbox.QuarantinedEmail{}
	}
	return c.JSON(http.StatusOK, quarantineList{Emails: list})
}

// quarantinedRaw sends a quarantined mail's raw source (admins), as
// quarantine-{id}.eml.
func (s *Server) quarantinedRaw(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	q, err := s.store.QuarantinedEmail(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return serveRaw(c, "quarantine-"+strconv.FormatInt(id, 10)+".eml", q.Raw)
}

// messagePath returns the conversation id and the message id (mid) of
// the path; a malformed one is 404 like an unknown one.
func messagePath(c echo.Context) (id, mid int64, err error) {
	if id, err = pathID(c); err != nil {
		return 0, 0, err
	}
	mid, err = inbox.ParseID(c.Param("mid"))
	return id, mid, err
}

// serveRaw sends a mail's raw source as a download of type message/rfc822
// (RFC 2046 section 5.2.1) named name: never rendered inline, never
// sniffed into HTML, and sandboxed should a browser open it anyway.
func serveRaw(c echo.Context, name string, raw []byte) error {
	h := c.Response().Header()
	h.Set(echo.HeaderContentSecurityPolicy, "sandbox; default-src 'none'")
	h.Set(echo.HeaderXContentTypeOptions, "nosniff")
	h.Set(echo.HeaderCacheControl, "private, no-store")
	h.Set(echo.HeaderContentDisposition, mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	return c.Blob(http.StatusOK, "message/rfc822", raw)
}
