package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// surveyLinks closes a conversation of an offline contact with an email
// address, so that the survey mail is enqueued, and returns its rating
// tokens (scores 1 to 5) and the conversation.
func (e *env) surveyLinks() ([]string, inbox.Conversation) {
	e.t.Helper()
	ctx := context.Background()
	a := e.agent("rater@example.com", inbox.RoleAgent)
	conv := e.conversation("Carol", "carol@example.com")
	if err := e.store.Join(ctx, conv.ID, a.ID); err != nil {
		e.t.Fatalf("Join() = %v", err)
	}
	if err := e.store.Leave(ctx, conv.ID, a.ID); err != nil {
		e.t.Fatalf("Leave() = %v", err)
	}
	mails, err := e.store.ClaimOutbox(ctx, 10, time.Minute)
	if err != nil || len(mails) != 1 || len(mails[0].RatingTokens) != 5 {
		e.t.Fatalf("ClaimOutbox() = %+v, %v; want the survey", mails, err)
	}
	return mails[0].RatingTokens, conv
}

// postRating posts the rating form of a link.
func (c *client) postRating(token, comment string, header http.Header) *result {
	c.e.t.Helper()
	body := url.Values{"comment": {comment}}.Encode()
	req, err := http.NewRequest("POST", c.e.ts.URL+"/rate/"+token, strings.NewReader(body))
	if err != nil {
		c.e.t.Fatalf("NewRequest() = %v", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header[k] = v
	}
	return c.send(req)
}

func (r *result) wantHTML(code int, texts ...string) *result {
	r.t.Helper()
	r.want(code)
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		r.t.Fatalf("%s: Content-Type %q, want HTML", r.req, ct)
	}
	for _, s := range texts {
		if !strings.Contains(string(r.body), s) {
			r.t.Fatalf("%s: the page lacks %q:\n%s", r.req, s, r.body)
		}
	}
	return r
}

// The survey mail's link opens a page that shows the score and a form;
// only posting the form rates (a scanner fetching the link does not), a
// link rates once, and a bad link or a post from another site is refused
// with a page that says so.
func TestRatingPage(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, dbURL string) {
		store := inboxtest.Open(t, dbURL, &inbox.Options{Mailboxes: []inbox.MailboxInfo{{Name: "support", Address: "support@example.com"}}})
		e := newEnvStore(t, store, nil)
		tokens, conv := e.surveyLinks()
		c := e.client()

		page := c.do("GET", "/rate/"+tokens[3], nil).wantHTML(http.StatusOK, "★★★★☆", "4 out of 5", `<form method="post">`, `name="comment"`)
		if csp := page.header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self'") || !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("Content-Security-Policy = %q", csp)
		}
		if page.header.Get("Cache-Control") != "no-store" || page.header.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("headers = %v, want no-store and no-referrer", page.header)
		}
		c.do("HEAD", "/rate/"+tokens[3], nil).want(http.StatusOK)
		c.do("GET", "/rate/r1-1-4-aaaaaaaaaaaaaaaa", nil).wantHTML(http.StatusNotFound, "not valid")
		c.postRating("nonsense", "", nil).wantHTML(http.StatusNotFound, "not valid")

		for _, cross := range crossSiteHeaders {
			c.postRating(tokens[0], "", cross).wantHTML(http.StatusForbidden, "rating page itself")
		}
		c.postRating(tokens[3], strings.Repeat("x", 2001), nil).wantHTML(http.StatusBadRequest, "longer than 2000 bytes", `<form method="post">`, "★★★★☆")
		if evs, _ := e.store.EventsSince(context.Background(), conv.ID, 0, 100); evs[len(evs)-1].Type == inbox.EventRated {
			t.Fatalf("rated before the form was posted well")
		}

		c.postRating(tokens[3], "Quick & kind", http.Header{"Sec-Fetch-Site": {"same-origin"}}).wantHTML(http.StatusOK, "Thank you", "★★★★☆")
		evs, _ := e.store.EventsSince(context.Background(), conv.ID, 0, 100)
		var rated inbox.Rated
		if last := evs[len(evs)-1]; last.Type != inbox.EventRated || last.Decode(&rated) != nil || rated.Score != 4 || rated.Comment != "Quick & kind" {
			t.Fatalf("last event %s %s, want the rating 4 with its comment", last.Type, last.Data)
		}

		c.postRating(tokens[0], "changed my mind", nil).wantHTML(http.StatusConflict, "already rated")
		c.do("GET", "/rate/"+tokens[1], nil).wantHTML(http.StatusConflict, "already rated")
		if again, _ := e.store.EventsSince(context.Background(), conv.ID, 0, 100); len(again) != len(evs) {
			t.Fatalf("a used link changed the conversation")
		}
	})
}
