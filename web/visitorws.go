package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/microdeets/microchat/channels/webchat"
)

// visitorSocket upgrades a visitor's request to the widget's WebSocket,
// whose connections channels/webchat runs (docs/widget-protocol.md). The
// token comes in the first frame, never in the URL; the Origin was
// checked by widgetCORS (403 before the upgrade).
func (s *Server) visitorSocket(c echo.Context) error {
	if s.ctx.Err() != nil {
		return echo.NewHTTPError(http.StatusServiceUnavailable, "shutting down")
	}
	r := c.Request()
	peer := webchat.Peer{IP: c.RealIP(), UserAgent: r.UserAgent()}
	if err := s.chat.Accept(c.Response(), r, peer, s.trackSocket); err != nil {
		s.log.Debug("visitor socket upgrade", "err", err, "ip", peer.IP)
	}
	return nil
}
