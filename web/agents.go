package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/microdeets/microchat/inbox"
)

type agentList struct {
	Agents []inbox.Agent `json:"agents"`
}

// listAgents returns every agent, by name.
func (s *Server) listAgents(c echo.Context) error {
	agents, err := s.store.Agents(c.Request().Context())
	if err != nil {
		return err
	}
	if agents == nil {
		agents = []inbox.Agent{}
	}
	return c.JSON(http.StatusOK, agentList{Agents: agents})
}

type newAgentRequest struct {
	Email    string `json:"email"`
	Name     string `json:"name"`
	Password string `json:"password"`
	// Role is "agent" (the default) or "admin".
	Role string `json:"role"`
}

// createAgent adds an agent or admin account (admins).
func (s *Server) createAgent(c echo.Context) error {
	var req newAgentRequest
	if err := bindJSON(c, &req, true); err != nil {
		return err
	}
	for _, f := range []struct{ name, value string }{
		{"email", req.Email}, {"name", req.Name}, {"password", req.Password},
	} {
		if err := required(f.name, f.value); err != nil {
			return err
		}
	}
	agent, err := s.store.CreateAgent(c.Request().Context(), inbox.NewAgent{
		Email: req.Email, Name: req.Name, Password: req.Password, Role: req.Role,
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, agent)
}

// removeAgent deactivates an agent (admins): their sessions end and their
// sockets close at once; their name stays on their messages. 409 for the
// last admin.
func (s *Server) removeAgent(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	if err := s.store.RemoveAgent(c.Request().Context(), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
