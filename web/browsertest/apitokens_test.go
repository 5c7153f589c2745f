package browsertest

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// TestAPITokensPage runs the profile's API tokens section
// (web/static/inbox/apitokens.js) in Chromium against a real server, on
// SQLite and on PostgreSQL: an agent makes a token in the page, a script
// uses the value the page showed, the agent revokes it in the page and
// the script is refused.
func TestAPITokensPage(t *testing.T) {
	browser := newBrowser(t)
	inboxtest.Run(t, func(t *testing.T, url string) { testAPITokensPage(t, browser, url) })
}

// bearerStatus is the status of GET /api/v1/conversations with the token,
// as a script sends it: no cookie, no CSRF token.
func bearerStatus(t *testing.T, s *server, token string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", s.URL+"/api/v1/conversations", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /api/v1/conversations: %v", err)
	}
	res.Body.Close()
	return res.StatusCode
}

func testAPITokensPage(t *testing.T, browser context.Context, url string) {
	s := newServerAt(t, url, nil, nil)
	ann := s.newAgentAccount("ann@example.com", "Ann Agent", inbox.RoleAgent)
	p := openDashboard(t, browser, s, "#/profile")
	p.login("ann@example.com")
	form := `#view-profile form[aria-labelledby="profile-tokens-title"]`
	p.waitJS("the API tokens section", q("#view-profile .token-list .empty-state")+` !== null`)

	// A name of spaces passes the browser's check, not the server's: the
	// field it names is marked, its reason shown by the form.
	p.fillForm(form, "name", "   ")
	p.waitJS("the name refused", q(form+` [name="name"]`)+`.getAttribute("aria-invalid") === "true" && `+q(form+" .form-status.error")+`?.textContent !== ""`)

	// 30 days, named: the value is shown once, with a curl line.
	p.do("choose 30 days", chromedp.Evaluate[chromedp.Void](q(form+` [name="expires_in_days"]`)+`.value = "30"`))
	p.fillForm(form, "name", "CRM sync")
	value := q("#view-profile .token-reveal .token-value")
	p.waitJS("the new token", value+`?.value.startsWith("mct_")`)
	token := eval[string](p, value+`.value`)
	if curl := eval[string](p, q("#view-profile .token-curl")+`.textContent`); curl != `curl -H "Authorization: Bearer `+token+`" `+s.URL+`/api/v1/conversations` {
		t.Fatalf("the curl line = %q", curl)
	}
	if txt := eval[string](p, q("#view-profile .token-reveal")+`.textContent`); !strings.Contains(txt, "will not be shown again") {
		t.Fatalf("the new token's note = %q, want it to say it will not be shown again", txt)
	}
	if aria := eval[string](p, q(form+` [name="name"]`)+`.getAttribute("aria-invalid") ?? ""`); aria != "" {
		t.Fatalf("the name is still marked invalid (%q) after a token was made", aria)
	}
	list, err := s.store.APITokens(context.Background(), ann.ID)
	if err != nil || len(list) != 1 {
		t.Fatalf("APITokens() = %v, %v; want the one token", list, err)
	}
	if d := time.Until(list[0].ExpiresAt) - 30*24*time.Hour; d > time.Minute || d < -time.Minute {
		t.Fatalf("the token expires at %v, want in 30 days", list[0].ExpiresAt)
	}

	row := q(`#view-profile tr[data-token="` + fmt.Sprint(list[0].ID) + `"]`)
	p.waitJS("the token listed as active, never used", row+`?.innerText.includes("CRM sync") && `+row+`.querySelector(".badge").textContent === "Active" && `+row+`.innerText.includes("never")`)
	p.do("scroll to the tokens", chromedp.Evaluate[chromedp.Void](q(form)+`.scrollIntoView()`))
	p.screenshot("profile-api-tokens")
	if got := bearerStatus(t, s, token); got != http.StatusOK {
		t.Fatalf("GET /api/v1/conversations with the new token = %d, want 200", got)
	}

	// Leaving the page forgets the value; the list stays.
	p.do("go to the conversations", chromedp.Evaluate[chromedp.Void](`location.hash = "#/"`))
	p.waitJS("the profile hidden", q("#view-profile")+`.hidden`)
	p.do("come back to the profile", chromedp.Evaluate[chromedp.Void](`location.hash = "#/profile"`))
	p.waitJS("the value gone, the list shown", q("#view-profile .token-reveal")+`.hidden && `+q("#view-profile .token-value")+` === null && `+row+` !== null`)

	// Revoke, after a confirmation: the list says so, the script is
	// refused from its next request.
	p.click("Revoke CRM sync", pageButton("#view-profile", "Revoke CRM sync"))
	p.waitJS("the confirmation", q("dialog.confirm[open]")+` !== null`)
	p.click("Revoke", pageButton("dialog.confirm[open]", "Revoke"))
	p.waitJS("the token listed as revoked, its use shown", q("dialog.confirm[open]")+` === null && `+row+`?.querySelector(".badge").textContent === "Revoked" && !`+row+`.innerText.includes("never") && !`+row+`.querySelector("button")`)
	p.screenshot("profile-api-tokens-revoked")
	if got := bearerStatus(t, s, token); got != http.StatusUnauthorized {
		t.Fatalf("GET /api/v1/conversations with the revoked token = %d, want 401", got)
	}
	p.noScriptRan()
}
