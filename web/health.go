package web

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"gopkg.in/yaml.v3"
)

type healthAnswer struct {
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

// healthz answers while the process serves HTTP at all.
func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, healthAnswer{Status: "ok"})
}

// readyz answers 200 while the database answers and the store is ready
// (inbox.Store.Ready: on PostgreSQL, listening for the other nodes' events
// and caught up), else 503, so that a load balancer sends no traffic to a
// node that cannot serve it.
func (s *Server) readyz(c echo.Context) error {
	if err := s.store.Ping(c.Request().Context()); err != nil {
		// The cause (host, port, driver text) goes to the log, not to
		// whoever asks: this endpoint needs no login.
		s.readiness("database unavailable", err)
		return c.JSON(http.StatusServiceUnavailable, healthAnswer{Status: "unavailable", Error: "database unavailable"})
	}
	// On PostgreSQL with several nodes: behind the other nodes' events
	// (the bus lost its listening connection and has not caught up).
	// Its text names no host: it says which state, not why.
	if err := s.store.Ready(); err != nil {
		s.readiness(err.Error(), err)
		return c.JSON(http.StatusServiceUnavailable, healthAnswer{Status: "unavailable", Error: err.Error()})
	}
	s.readiness("", nil)
	return c.JSON(http.StatusOK, healthAnswer{Status: "ok"})
}

// readiness logs what /readyz answers when it changes ("" is ready):
// one line when the node turns unready or its reason changes, one when
// it is ready again, however often a balancer asks meanwhile.
func (s *Server) readiness(reason string, err error) {
	if prev := s.notReady.Swap(&reason); prev != nil && *prev == reason {
		return
	} else if reason == "" {
		if prev != nil {
			s.log.Info("ready again")
		}
		return
	}
	s.log.Warn("not ready", "reason", reason, "err", err)
}

// metricsHandler serves the Server's own registry in Prometheus' text
// format.
func (s *Server) metricsHandler(c echo.Context) error {
	promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{ErrorLog: slogPrinter{s}}).ServeHTTP(c.Response(), c.Request())
	return nil
}

type slogPrinter struct{ s *Server }

func (p slogPrinter) Println(v ...any) { p.s.log.Error("metrics", "err", fmt.Sprint(v...)) }

// openapiSpec documents every route under /api/v1; a test checks that it
// does.
//
//go:embed openapi.yaml
var openapiSpec []byte

// openapiYAML and openapiJSONHandler serve the document compressed,
// with an ETag (static.go).
func (s *Server) openapiYAML(c echo.Context) error {
	set, err := assets()
	if err != nil {
		return err
	}
	return serveAsset(c, set.openapiYAML, cacheRevalidate)
}

func (s *Server) openapiJSONHandler(c echo.Context) error {
	set, err := assets()
	if err != nil {
		return err
	}
	return serveAsset(c, set.openapiJSON, cacheRevalidate)
}

// openapiAsJSON converts the embedded spec to JSON for clients that want
// it so.
func openapiAsJSON() ([]byte, error) {
	var doc any
	if err := yaml.Unmarshal(openapiSpec, &doc); err != nil {
		return nil, fmt.Errorf("web: openapi.yaml: %w", err)
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("web: openapi.yaml as JSON: %w", err)
	}
	return b, nil
}
