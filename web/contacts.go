package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/microdeets/microchat/inbox"
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

// contactRequest is the body of PATCH /contacts/{id}; absent fields
// stay. inbox.UpdateContact says what is valid.
type contactRequest struct {
	Name  *string `json:"name"`
	Email *string `json:"email"`
	Phone *string `json:"phone"`
}

// contactAnswer is the answer of PATCH /contacts/{id}.
type contactAnswer struct {
	Contact inbox.Contact `json:"contact"`
}

// updateContact changes a contact's name, email or phone (any agent: a
// typo fixed, an address learnt on the phone) and answers with the
// contact. A changed email is no longer verified; webhooks get
// contact.updated.
func (s *Server) updateContact(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	var req contactRequest
	if err := bindJSON(c, &req, true); err != nil {
		return err
	}
	contact, err := s.store.UpdateContact(c.Request().Context(), id, inbox.ContactPatch{Name: req.Name, Email: req.Email, Phone: req.Phone})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, contactAnswer{Contact: contact})
}
