package web

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// getContact returns one contact with what is known of their visit:
// browser, OS, IP address, country and the pages they viewed, the newest
// first (spec rule 11).
func (s *Server) getContact(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	contact, err := s.store.ContactDetail(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, contact)
}

// eraseContact removes a contact with all their conversations (admins).
func (s *Server) eraseContact(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	if err := s.store.EraseContact(c.Request().Context(), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
