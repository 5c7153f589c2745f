package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/microdeets/microchat/inbox"
)

type agentList struct {
	Agents []inbox.Agent `json:"agents"`
}

// listAgents returns every agent, by name, the disabled ones too
// ("disabled": true), with their presence.
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

// selfRequest is the body of PATCH /agents/me; absent fields stay.
type selfRequest struct {
	// Name is the display name customers see (1 to 100 bytes once
	// trimmed; inbox.RenameAgent).
	Name     *string          `json:"name"`
	Settings *settingsRequest `json:"settings"`
}

// settingsRequest changes an agent's settings; absent fields stay.
type settingsRequest struct {
	// Notifications is "all", "mine" or "off" (inbox.AgentSettings).
	Notifications *string `json:"notifications"`
	Sound         *bool   `json:"sound"`
}

// agentRequest is the body of PATCH /agents/{id} (admins); absent
// fields stay.
type agentRequest struct {
	Name *string `json:"name"`
	// Role is "admin" or "agent".
	Role *string `json:"role"`
	// Disabled true disables the account (as DELETE), false enables it.
	Disabled *bool `json:"disabled"`
}

// updateSelf changes the logged-in agent's display name and settings and
// answers with the agent. The widgets of the agent's conversations hear
// of a new name at once (a presence frame, inbox.RenameAgent).
func (s *Server) updateSelf(c echo.Context) error {
	var req selfRequest
	if err := bindJSON(c, &req, true); err != nil {
		return err
	}
	ch := inbox.AgentChange{Name: req.Name}
	if req.Settings != nil {
		ch.Notifications, ch.Sound = req.Settings.Notifications, req.Settings.Sound
	}
	agent, err := s.store.UpdateAgent(c.Request().Context(), agentOf(c).ID, ch)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, agent)
}

// updateAgent changes an agent's name, role or whether they may log in
// (admins) and answers with the agent. Disabling ends their sessions and
// closes their sockets (4401) as DELETE does; enabling lets them log in
// again. The last enabled admin cannot be disabled or demoted (409
// naming the field).
func (s *Server) updateAgent(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	var req agentRequest
	if err := bindJSON(c, &req, true); err != nil {
		return err
	}
	agent, err := s.store.UpdateAgent(c.Request().Context(), id, inbox.AgentChange{Name: req.Name, Role: req.Role, Disabled: req.Disabled})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, agent)
}

// removeAgent disables an agent (admins), as PATCH {"disabled": true}:
// their sessions end and their sockets close at once; their name stays on
// their messages. 409 for the last enabled admin, 404 for an agent
// already disabled.
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
