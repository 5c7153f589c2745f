package web

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/microdeets/microchat/inbox"
)

// FuzzBindJSON feeds arbitrary bodies to the strict binder: it must never
// panic, and every refusal must be a 400 (or a field error, which is one).
func FuzzBindJSON(f *testing.F) {
	for _, seed := range []string{
		`{"text":"hi","channel":"auto","client_id":"c1"}`,
		`{"text":1}`, `{"colour":"red"}`, `{"text":"a"} {}`, `[1]`, `"x"`, `{`, ``, `null`,
		`{"text":"\ud800"}`, "{\"text\":\"\xff\"}",
	} {
		f.Add([]byte(seed))
	}
	e := echo.New()
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		c := e.NewContext(req, httptest.NewRecorder())
		var v struct {
			Text     string `json:"text"`
			Channel  string `json:"channel"`
			ClientID string `json:"client_id"`
			UpTo     int64  `json:"up_to"`
		}
		err := bindJSON(c, &v, true)
		var he *echo.HTTPError
		var inv *inbox.InvalidError
		switch {
		case err == nil, errors.As(err, &inv):
		case errors.As(err, &he) && he.Code == http.StatusBadRequest:
		default:
			t.Fatalf("bindJSON(%q) = %v, want nil, a field error or a 400", body, err)
		}
	})
}
