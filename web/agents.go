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

type renameRequest struct {
	// Name is the display name customers see (1 to 100 bytes once
	// trimmed; inbox.RenameAgent).
	Name string `json:"name"`
}

// renameSelf sets the logged-in agent's display name.
func (s *Server) renameSelf(c echo.Context) error {
	return s.renameAgentID(c, agentOf(c).ID)
}

// renameAgent sets another agent's display name (admins).
func (s *Server) renameAgent(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	return s.renameAgentID(c, id)
}

// renameAgentID renames an agent and answers with the agent. The widgets
// of the agent's conversations hear of it at once (a presence frame with
// the new name, inbox.RenameAgent).
func (s *Server) renameAgentID(c echo.Context, id int64) error {
	var req renameRequest
	if err := bindJSON(c, &req, true); err != nil {
		return err
	}
	agent, err := s.store.RenameAgent(c.Request().Context(), id, req.Name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, agent)
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
