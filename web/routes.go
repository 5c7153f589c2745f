package web

import "net/http"

// routes registers every route of the server, here and nowhere else. The
// middleware after each handler is its access rule: requireAgent needs a
// session or an API token (Authorization: Bearer), requireAdmin an
// admin's, sessionOnly a session and not an API token, csrf the
// session's token on writes sent from this server's pages (an API
// token's writes need none), sameSite writes sent from this server's
// pages (security.go), requireVisitor a widget's visitor token
// (Authorization: Bearer).
// Every API write with a body must be JSON (requireJSON) but the uploads,
// and every API request but the WebSockets and the uploads has a deadline
// (apiDeadline; see longRoutes).
func (s *Server) routes() {
	e := s.echo

	// Pages and scripts (static.go), for GET and HEAD, gzipped when
	// the client accepts it.
	getHead := []string{http.MethodGet, http.MethodHead}
	e.Match(getHead, "/", s.demoPage)
	e.Match(getHead, "/demo/pricing", s.demoPricing) // the demo site's second page: the widget across pages
	e.Match(getHead, "/widget.js", s.widgetScript)
	e.Match(getHead, "/inbox", s.inboxPage)
	e.Match(getHead, "/setup", s.setupPage)
	e.Match(getHead, "/static/*", s.staticFile)

	// The rating page of the survey mail's links (rate.go): the token
	// is the capability, no session; only the POST rates.
	e.Match(getHead, "/rate/:token", s.ratePage, s.apiDeadline)
	e.POST("/rate/:token", s.rate, s.apiDeadline)

	// Operations (health.go).
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", s.metricsHandler)

	api := e.Group("/api/v1", s.requireJSON, s.apiDeadline)
	api.GET("/openapi.yaml", s.openapiYAML)
	api.GET("/openapi.json", s.openapiJSONHandler)

	// Login and first-run setup (auth.go).
	api.POST("/auth/login", s.login, s.sameSite)
	api.POST("/auth/logout", s.logout, s.requireAgent, sessionOnly("revoke a token with DELETE /profile/tokens/{id}"), s.csrf)
	api.GET("/auth/session", s.session, s.requireAgent)
	api.POST("/auth/password", s.changePassword, s.requireAgent, sessionOnly("a token may not take over its account"), s.csrf)
	api.POST("/setup", s.setup, s.sameSite)

	// Attachments (attachments.go): uploads are multipart, outside the
	// JSON group, with limits.max_upload_bytes instead of max_body_bytes.
	e.POST("/api/v1/conversations/:id/attachments", s.uploadAttachment, s.requireAgent, s.csrf)
	api.GET("/conversations/:id/attachments/:aid", s.downloadAttachment, s.requireAgent)

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

	// Email (email.go): an email message's whole envelope and body, and
	// raw sources, which are downloads for admins only.
	api.GET("/conversations/:id/messages/:mid/email", s.emailDetails, s.requireAgent)
	api.GET("/conversations/:id/messages/:mid/raw", s.emailRaw, s.requireAgent, s.requireAdmin)
	api.GET("/quarantine", s.listQuarantine, s.requireAgent, s.requireAdmin)
	api.GET("/quarantine/:id/raw", s.quarantinedRaw, s.requireAgent, s.requireAdmin)

	// Contacts (contacts.go).
	api.GET("/contacts/:id", s.getContact, s.requireAgent)
	api.PATCH("/contacts/:id", s.updateContact, s.requireAgent, s.csrf)
	api.DELETE("/contacts/:id", s.eraseContact, s.requireAgent, s.requireAdmin, s.csrf)

	// Agents (agents.go).
	api.GET("/agents", s.listAgents, s.requireAgent)
	api.POST("/agents", s.createAgent, s.requireAgent, s.requireAdmin, s.csrf)
	api.PATCH("/agents/me", s.updateSelf, s.requireAgent, s.csrf)

	// The agent's own API tokens (apitokens.go): a token may list them
	// and revoke itself, but only a login makes one, so that a leaked
	// token cannot mint others that outlive its revocation.
	api.GET("/profile/tokens", s.listAPITokens, s.requireAgent)
	api.POST("/profile/tokens", s.createAPIToken, s.requireAgent, sessionOnly("a token may not create tokens"), s.csrf)
	api.DELETE("/profile/tokens/:id", s.revokeAPIToken, s.requireAgent, s.csrf)
	api.PATCH("/agents/:id", s.updateAgent, s.requireAgent, s.requireAdmin, s.csrf)
	api.DELETE("/agents/:id", s.removeAgent, s.requireAgent, s.requireAdmin, s.csrf)

	// Saved replies (savedreplies.go): the team's, written by admins.
	api.GET("/saved-replies", s.listSavedReplies, s.requireAgent)
	api.POST("/saved-replies", s.createSavedReply, s.requireAgent, s.requireAdmin, s.csrf)
	api.PATCH("/saved-replies/:id", s.updateSavedReply, s.requireAgent, s.requireAdmin, s.csrf)
	api.DELETE("/saved-replies/:id", s.deleteSavedReply, s.requireAgent, s.requireAdmin, s.csrf)

	// Outgoing webhooks (webhooks.go): admins only, their API tokens
	// too; a webhook of the config file is read-only here (403).
	api.GET("/webhooks", s.listWebhooks, s.requireAgent, s.requireAdmin)
	api.POST("/webhooks", s.createWebhook, s.requireAgent, s.requireAdmin, s.csrf)
	api.GET("/webhooks/:id", s.getWebhook, s.requireAgent, s.requireAdmin)
	api.PATCH("/webhooks/:id", s.updateWebhook, s.requireAgent, s.requireAdmin, s.csrf)
	api.DELETE("/webhooks/:id", s.deleteWebhook, s.requireAgent, s.requireAdmin, s.csrf)
	api.POST("/webhooks/:id/rotate", s.rotateWebhookSecret, s.requireAgent, s.requireAdmin, s.csrf)
	api.GET("/webhooks/:id/deliveries", s.listDeliveries, s.requireAgent, s.requireAdmin)
	api.POST("/webhooks/:id/deliveries/replay", s.replayDeliveries, s.requireAgent, s.requireAdmin, s.csrf)
	api.POST("/webhooks/:id/deliveries/:did/replay", s.replayDeliveries, s.requireAgent, s.requireAdmin, s.csrf)

	// Reports (reports.go): every agent may read them.
	api.GET("/reports/operators", s.operatorsReport, s.requireAgent)
	api.GET("/reports/operators.csv", s.operatorsReportCSV, s.requireAgent)

	// The agents' WebSocket (agentws.go).
	api.GET("/ws", s.agentSocket, s.requireAgent, sessionOnly("the socket is the dashboard's"))

	// The widget's API (widget.go), called from customers' sites: CORS
	// for widget.allowed_origins (another Origin is 403), no cookies.
	w := e.Group("/api/v1/widget", s.widgetCORS, s.apiDeadline)
	w.OPTIONS("/*", s.widgetPreflight)
	w.POST("/conversations", s.startConversation, s.requireJSON) // a token is optional here
	w.GET("/state", s.widgetState, s.requireVisitor)
	w.GET("/messages", s.widgetMessages, s.requireVisitor)
	w.POST("/uploads", s.widgetUpload, s.requireVisitor)
	w.GET("/attachments/:id", s.widgetAttachment, s.requireVisitor)
	w.POST("/rating", s.widgetRating, s.requireJSON, s.requireVisitor)
	// The visitors' WebSocket (visitorws.go): the token is its first frame.
	w.GET("/ws", s.visitorSocket)
}

// uploadRoutes take multipart bodies up to limits.max_upload_bytes, which
// they check themselves (readUpload), instead of max_body_bytes.
var uploadRoutes = map[string]bool{
	"/api/v1/conversations/:id/attachments": true,
	"/api/v1/widget/uploads":                true,
}

// longRoutes run without apiDeadline: the WebSockets live long, and the
// uploads read a large body first and bound their database work
// themselves.
var longRoutes = map[string]bool{
	"/api/v1/ws":                            true,
	"/api/v1/widget/ws":                     true,
	"/api/v1/conversations/:id/attachments": true,
	"/api/v1/widget/uploads":                true,
}
