package web

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/microdeets/microchat/inbox"
)

// apiTokenList is the body of GET /profile/tokens.
type apiTokenList struct {
	Items []inbox.APIToken `json:"items"`
}

// apiTokenRequest makes a token: a name and exactly one of an expiry
// (RFC 3339) or a number of days from now; inbox.CreateAPIToken says
// what is valid.
type apiTokenRequest struct {
	Name          string  `json:"name"`
	ExpiresAt     *string `json:"expires_at"` // parsed here, to name the field if it is no time
	ExpiresInDays *int    `json:"expires_in_days"`
}

// createdAPIToken is the answer of POST /profile/tokens: the token and,
// this once, its value.
type createdAPIToken struct {
	inbox.APIToken
	Token string `json:"token"`
}

// listAPITokens returns the agent's own tokens, newest first, revoked and
// expired ones marked.
func (s *Server) listAPITokens(c echo.Context) error {
	list, err := s.store.APITokens(c.Request().Context(), agentOf(c).ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, apiTokenList{Items: list})
}

// createAPIToken makes a token for the logged-in agent (routes.go lets
// only a session do it): 201 with the token and its value, which is never
// shown again; 400 naming name, expires_at or expires_in_days.
func (s *Server) createAPIToken(c echo.Context) error {
	var req apiTokenRequest
	if err := bindJSON(c, &req, true); err != nil {
		return err
	}
	if err := required("name", req.Name); err != nil {
		return err
	}
	var expires time.Time
	switch {
	case (req.ExpiresAt == nil) == (req.ExpiresInDays == nil):
		return &inbox.InvalidError{Field: "expires_at", Reason: "give either expires_at or expires_in_days"}
	case req.ExpiresAt != nil:
		t, err := time.Parse(time.RFC3339, *req.ExpiresAt)
		if err != nil {
			return &inbox.InvalidError{Field: "expires_at", Reason: "must be a time in RFC 3339, such as 2026-12-31T23:59:00Z"}
		}
		expires = t
	default:
		maxDays := int(inbox.MaxAPITokenLifetime / (24 * time.Hour))
		if d := *req.ExpiresInDays; d < 1 || d > maxDays {
			return &inbox.InvalidError{Field: "expires_in_days", Reason: "must be 1 to " + strconv.Itoa(maxDays)}
		}
		expires = s.store.Now().Add(time.Duration(*req.ExpiresInDays) * 24 * time.Hour)
	}
	tok, value, err := s.store.CreateAPIToken(c.Request().Context(), agentOf(c).ID, req.Name, expires)
	if err != nil {
		return err
	}
	// The one answer that carries the token's value is kept by no cache.
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusCreated, createdAPIToken{APIToken: tok, Token: value})
}

// revokeAPIToken revokes one of the agent's own tokens (404 for another's):
// the next request that carries it is refused. A token may revoke itself.
func (s *Server) revokeAPIToken(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	if err := s.store.RevokeAPIToken(c.Request().Context(), agentOf(c).ID, id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
