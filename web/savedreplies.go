package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/microdeets/microchat/inbox"
)

// savedReplyList is the body of GET /saved-replies.
type savedReplyList struct {
	Items []inbox.SavedReply `json:"items"`
}

// savedReplyRequest creates a saved reply (every field required) or
// changes one (absent fields stay); inbox.CreateSavedReply says what is
// valid.
type savedReplyRequest struct {
	Shortcut *string `json:"shortcut"`
	Title    *string `json:"title"`
	Text     *string `json:"text"`
}

func (r savedReplyRequest) input() inbox.SavedReplyInput {
	return inbox.SavedReplyInput{Shortcut: r.Shortcut, Title: r.Title, Text: r.Text}
}

// listSavedReplies returns every saved reply, by shortcut (every agent).
func (s *Server) listSavedReplies(c echo.Context) error {
	list, err := s.store.SavedReplies(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, savedReplyList{Items: list})
}

// createSavedReply adds a saved reply (admins): 201 with it, 409 naming
// shortcut when another has it.
func (s *Server) createSavedReply(c echo.Context) error {
	var req savedReplyRequest
	if err := bindJSON(c, &req, true); err != nil {
		return err
	}
	r, err := s.store.CreateSavedReply(c.Request().Context(), req.input())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, r)
}

// updateSavedReply changes a saved reply (admins) and answers with it.
func (s *Server) updateSavedReply(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	var req savedReplyRequest
	if err := bindJSON(c, &req, true); err != nil {
		return err
	}
	r, err := s.store.UpdateSavedReply(c.Request().Context(), id, req.input())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

// deleteSavedReply deletes a saved reply (admins).
func (s *Server) deleteSavedReply(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	if err := s.store.DeleteSavedReply(c.Request().Context(), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
