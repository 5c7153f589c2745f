package web

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/microdeets/microchat/inbox"
)

// Outgoing webhooks (issue 15), for admins: the webhooks, their secrets
// (shown when made and when rotated, never listed) and the deliveries
// they gave up, to replay. The worker that sends deliveries is package
// webhook's; these only change what inbox stores.

// webhookList is the body of GET /webhooks.
type webhookList struct {
	Webhooks []inbox.Webhook `json:"webhooks"`
}

// webhookAnswer is the body of GET and PATCH /webhooks/{id}.
type webhookAnswer struct {
	Webhook inbox.Webhook `json:"webhook"`
}

// createdWebhook is the answer of POST /webhooks: the webhook and, this
// once, its secret.
type createdWebhook struct {
	Webhook inbox.Webhook `json:"webhook"`
	Secret  string        `json:"secret"`
}

// webhookSecret is the answer of POST /webhooks/{id}/rotate: the new
// secret, shown this once.
type webhookSecret struct {
	Secret string `json:"secret"`
}

// webhookRequest creates a webhook (name, url and events required,
// enabled true when absent) or changes one (absent fields stay);
// inbox.CreateWebhook says what is valid.
type webhookRequest struct {
	Name    *string   `json:"name"`
	URL     *string   `json:"url"`
	Events  *[]string `json:"events"`
	Enabled *bool     `json:"enabled"`
}

// rotateRequest is the body of POST /webhooks/{id}/rotate, optional.
type rotateRequest struct {
	// OverlapHours is how long the old secret goes on signing beside
	// the new one: 0 to maxOverlapHours, defaultOverlapHours when absent.
	OverlapHours *int `json:"overlap_hours"`
}

// The secret rotation's overlap, in hours: receivers get deliveries
// signed with both secrets meanwhile (Standard Webhooks).
const (
	defaultOverlapHours = 24
	maxOverlapHours     = 7 * 24
)

// deliveryList is the body of GET /webhooks/{id}/deliveries.
type deliveryList struct {
	Deliveries []inbox.Delivery `json:"deliveries"`
}

// replayAnswer says how many deliveries were made pending again.
type replayAnswer struct {
	Replayed int64 `json:"replayed"`
}

// Delivery listing: the state shown when none is asked for, and the
// page size.
const (
	defaultDeliveryState = inbox.HookFailed
	defaultDeliveryLimit = 50
)

// checkWebhookURL asks Options.CheckWebhookURL whether deliveries may go
// to u; a refusal is a 400 naming url, with the check's reason.
func (s *Server) checkWebhookURL(u string) error {
	if s.webhookURLCheck == nil {
		return nil
	}
	if err := s.webhookURLCheck(strings.TrimSpace(u)); err != nil {
		return &inbox.InvalidError{Field: "url", Reason: err.Error()}
	}
	return nil
}

// listWebhooks returns every webhook, by id, with its delivery counts.
func (s *Server) listWebhooks(c echo.Context) error {
	list, err := s.store.Webhooks(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, webhookList{Webhooks: list})
}

// createWebhook adds a webhook: 201 with it and its secret, which is
// never shown again (a new one is had by rotating); 400 naming the field
// (url too when the URL check refuses it), 409 naming name when another
// has it.
func (s *Server) createWebhook(c echo.Context) error {
	var req webhookRequest
	if err := bindJSON(c, &req, true); err != nil {
		return err
	}
	in := inbox.NewWebhook{Enabled: true}
	if req.Name != nil {
		in.Name = *req.Name
	}
	if req.URL != nil {
		in.URL = *req.URL
	}
	if req.Events != nil {
		in.Events = *req.Events
	}
	if req.Enabled != nil {
		in.Enabled = *req.Enabled
	}
	if err := required("name", in.Name); err != nil {
		return err
	}
	if err := required("url", in.URL); err != nil {
		return err
	}
	if err := s.checkWebhookURL(in.URL); err != nil {
		return err
	}
	w, secret, err := s.store.CreateWebhook(c.Request().Context(), in)
	if err != nil {
		return err
	}
	// The one answer that carries the secret is kept by no cache.
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusCreated, createdWebhook{Webhook: w, Secret: secret})
}

// getWebhook returns one webhook with its delivery counts.
func (s *Server) getWebhook(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	w, err := s.store.Webhook(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, webhookAnswer{Webhook: w})
}

// updateWebhook changes a webhook's name, URL, events or whether it is
// enabled, and answers with it; 403 for one of the config file's.
func (s *Server) updateWebhook(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	var req webhookRequest
	if err := bindJSON(c, &req, true); err != nil {
		return err
	}
	if req.URL != nil {
		if err := s.checkWebhookURL(*req.URL); err != nil {
			return err
		}
	}
	ctx := c.Request().Context()
	if _, err := s.store.UpdateWebhook(ctx, id, inbox.WebhookPatch{Name: req.Name, URL: req.URL, Events: req.Events, Enabled: req.Enabled}); err != nil {
		return err
	}
	// Read again for the delivery counts, which UpdateWebhook leaves out.
	w, err := s.store.Webhook(ctx, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, webhookAnswer{Webhook: w})
}

// deleteWebhook deletes a webhook with its deliveries; 403 for one of
// the config file's.
func (s *Server) deleteWebhook(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	if err := s.store.DeleteWebhook(c.Request().Context(), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// rotateWebhookSecret gives a webhook a new secret and answers with it,
// this once; the old one signs beside it for overlap_hours. 403 for one
// of the config file's, whose secret is the file's.
func (s *Server) rotateWebhookSecret(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	var req rotateRequest
	if err := bindJSON(c, &req, false); err != nil {
		return err
	}
	hours := defaultOverlapHours
	if req.OverlapHours != nil {
		hours = *req.OverlapHours
	}
	if hours < 0 || hours > maxOverlapHours {
		return &inbox.InvalidError{Field: "overlap_hours", Reason: "must be 0 to " + strconv.Itoa(maxOverlapHours)}
	}
	secret, err := s.store.RotateWebhookSecret(c.Request().Context(), id, time.Duration(hours)*time.Hour)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, webhookSecret{Secret: secret})
}

// listDeliveries returns a webhook's deliveries of one state (failed
// unless state says pending), the newest first, before the id before,
// at most limit.
func (s *Server) listDeliveries(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	state := c.QueryParam("state")
	if state == "" {
		state = defaultDeliveryState
	}
	before, err := queryInt(c, "before")
	if err != nil {
		return err
	}
	limit := int64(defaultDeliveryLimit)
	if c.QueryParam("limit") != "" {
		if limit, err = queryInt(c, "limit"); err != nil {
			return err
		}
	}
	list, err := s.store.WebhookDeliveries(c.Request().Context(), id, state, before, int(limit))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, deliveryList{Deliveries: list})
}

// replayDeliveries makes a webhook's failed deliveries pending again, due
// now, with their ids kept (the receiver's webhook-id) and says how many:
// the one of the path's did, or every one without it. 404 for a did that
// is not a failed delivery of the webhook.
func (s *Server) replayDeliveries(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	var did int64 // 0: all
	if p := c.Param("did"); p != "" {
		if did, err = inbox.ParseID(p); err != nil {
			return err
		}
	}
	n, err := s.store.ReplayDelivery(c.Request().Context(), id, did)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, replayAnswer{Replayed: n})
}
