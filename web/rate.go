package web

import (
	_ "embed"
	"errors"
	"html/template"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/microdeets/microchat/inbox"
)

// The rating page (rule 3; issue 12 item 7). Each link of a survey mail
// leads to /rate/{token}: GET shows the score the link stands for and a
// form, and only its POST records the rating, so that a mail scanner that
// fetches every link of a mail rates nothing. The token is the
// capability (signed, single-use: inbox.RateByToken): no session, no
// CSRF token. The form posts to the page itself, the page's
// Content-Security-Policy allows no other form target, and a POST that a
// browser marks as coming from another site is refused.

//go:embed rate.html
var rateHTML string

var rateTemplate = template.Must(template.New("rate").Parse(rateHTML))

// ratePageData is what rate.html shows: the form for a valid link, and a
// message (Class "success" or "error").
type ratePageData struct {
	Title   string
	Form    bool
	Score   int
	Stars   string
	Comment string
	Message string
	Class   string
}

// ratePage shows the form of a rating link (GET /rate/:token).
func (s *Server) ratePage(c echo.Context) error {
	link, err := s.store.CheckRatingLink(c.Request().Context(), c.Param("token"))
	if err != nil {
		return s.rateAnswer(c, err, 0, "")
	}
	return renderRate(c, http.StatusOK, ratePageData{Title: "Rate your conversation", Form: true,
		Score: link.Score, Stars: stars(link.Score)})
}

// rate records the rating of a link (POST /rate/:token), with the form's
// optional comment.
func (s *Server) rate(c echo.Context) error {
	if !s.sameOrigin(c.Request()) {
		return renderRate(c, http.StatusForbidden, ratePageData{Title: "Rating refused",
			Message: "Ratings are sent from the rating page itself. Open the link from your email again.", Class: "error"})
	}
	comment := c.FormValue("comment")
	r, err := s.store.RateByToken(c.Request().Context(), c.Param("token"), comment)
	if err != nil {
		link, _ := s.store.CheckRatingLink(c.Request().Context(), c.Param("token"))
		return s.rateAnswer(c, err, link.Score, comment)
	}
	return renderRate(c, http.StatusOK, ratePageData{Title: "Thank you", Score: r.Score,
		Message: "Your rating of " + stars(r.Score) + " was recorded. Thank you for your feedback.", Class: "success"})
}

// rateAnswer shows a rating link's error as a page, with the status code
// the API would answer: 404 for a link that is not valid, 409 for one
// already used, 400 with the form again for a comment refused.
func (s *Server) rateAnswer(c echo.Context, err error, score int, comment string) error {
	var inv *inbox.InvalidError
	switch {
	case errors.Is(err, inbox.ErrNotFound):
		return renderRate(c, http.StatusNotFound, ratePageData{Title: "Link not valid",
			Message: "This rating link is not valid. Check that it was copied whole from your email.", Class: "error"})
	case errors.Is(err, inbox.ErrConflict):
		return renderRate(c, http.StatusConflict, ratePageData{Title: "Already rated",
			Message: "This conversation was already rated from this email. Thank you for your feedback.", Class: "error"})
	case errors.As(err, &inv) && score > 0:
		return renderRate(c, http.StatusBadRequest, ratePageData{Title: "Rate your conversation", Form: true,
			Score: score, Stars: stars(score), Comment: comment, Message: "Your comment " + inv.Reason + ".", Class: "error"})
	}
	code, _, ok := inboxAnswer(err)
	if !ok || code < 500 {
		return err // logged as a 500 by handleError
	}
	s.log.Warn("rating page", "err", err, "request_id", requestID(c))
	return renderRate(c, code, ratePageData{Title: "Try again later",
		Message: "Your rating could not be recorded just now. Please try the link again in a few minutes.", Class: "error"})
}

// renderRate writes the page with headers for a page reached by a
// capability link: not cached, not indexed, no referrer, nothing loaded
// or posted anywhere but here.
func renderRate(c echo.Context, code int, d ratePageData) error {
	h := c.Response().Header()
	h.Set(echo.HeaderContentSecurityPolicy, rateCSP)
	h.Set(echo.HeaderCacheControl, "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Robots-Tag", "noindex")
	var b strings.Builder
	if err := rateTemplate.Execute(&b, d); err != nil {
		return err
	}
	return c.HTML(code, b.String())
}

// stars draws a score of 1 to 5 as five stars, "★★★★☆" for 4.
func stars(score int) string {
	return strings.Repeat("★", score) + strings.Repeat("☆", 5-score)
}
