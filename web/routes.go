package web

// routes registers every route of the server, here and nowhere else. The
// middleware after each handler is its access rule: requireAgent needs a
// session, requireAdmin an admin's, csrf the session's token on writes.
// Every API write with a body must be JSON (requireJSON), and every API
// request but the WebSocket has a deadline (apiDeadline).
func (s *Server) routes() {
	e := s.echo

	// Pages and scripts (static.go).
	e.GET("/", s.demoPage)
	e.GET("/widget.js", s.widgetScript)
	e.GET("/inbox", s.inboxPage)
	e.GET("/setup", s.setupPage)
	e.GET("/static/*", s.staticFile)

	// Operations (health.go).
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", s.metricsHandler)

	api := e.Group("/api/v1", s.requireJSON, s.apiDeadline)
	api.GET("/openapi.yaml", s.openapiYAML)
	api.GET("/openapi.json", s.openapiJSONHandler)

	// Login and first-run setup (auth.go).
	api.POST("/auth/login", s.login)
	api.POST("/auth/logout", s.logout, s.requireAgent, s.csrf)
	api.GET("/auth/session", s.session, s.requireAgent)
	api.POST("/setup", s.setup)

	// Conversations (conversations.go).
	api.GET("/conversations", s.listConversations, s.requireAgent)
	api.GET("/conversations/:id", s.getConversation, s.requireAgent)
	api.DELETE("/conversations/:id", s.deleteConversation, s.requireAgent, s.requireAdmin, s.csrf)
	api.GET("/conversations/:id/messages", s.listMessages, s.requireAgent)
	api.POST("/conversations/:id/messages", s.postMessage, s.requireAgent, s.csrf)
	api.GET("/conversations/:id/events", s.listEvents, s.requireAgent)
	api.GET("/conversations/:id/reply-channel", s.replyChannel, s.requireAgent)
	api.POST("/conversations/:id/join", s.join, s.requireAgent, s.csrf)
	api.POST("/conversations/:id/leave", s.leave, s.requireAgent, s.csrf)
	api.POST("/conversations/:id/read", s.markRead, s.requireAgent, s.csrf)

	// Contacts (contacts.go).
	api.GET("/contacts/:id", s.getContact, s.requireAgent)
	api.DELETE("/contacts/:id", s.eraseContact, s.requireAgent, s.requireAdmin, s.csrf)

	// Agents (agents.go).
	api.GET("/agents", s.listAgents, s.requireAgent)
	api.POST("/agents", s.createAgent, s.requireAgent, s.requireAdmin, s.csrf)

	// The agents' WebSocket (agentws.go).
	api.GET("/ws", s.agentSocket, s.requireAgent)
}
