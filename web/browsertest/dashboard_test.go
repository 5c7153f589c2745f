package browsertest

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/microdeets/microchat/inbox"
)

// The dashboard in a browser (docs/dashboard.md): its shell, the list and
// the socket behind it. The helpers below find elements of the page (no
// shadow root), and log agents in as a person would.

// q is the first element of the page matching a CSS selector, in
// JavaScript.
func q(sel string) string {
	return "document.querySelector(" + jsString(sel) + ")"
}

// pageButton is the page's button whose aria-label, or else text, is
// name.
func pageButton(scope, name string) string {
	return `[...document.querySelectorAll(` + jsString(scope+" button") + `)].find((b) => (b.getAttribute("aria-label") || b.textContent).trim() === ` + jsString(name) + `)`
}

// newAgentAccount creates an agent (or an admin) who has not logged in.
func (s *server) newAgentAccount(email, name, role string) inbox.Agent {
	s.t.Helper()
	a, err := s.store.CreateAgent(context.Background(), inbox.NewAgent{Email: email, Name: name, Role: role, Password: password})
	if err != nil {
		s.t.Fatalf("CreateAgent(%s) = %v", email, err)
	}
	return a
}

// openDashboard opens /inbox (plus hash) in a browser context of its own.
func openDashboard(t *testing.T, browser context.Context, s *server, hash string) *page {
	t.Helper()
	p := visitor(t, browser)
	logConsole(t, p)
	p.do("open the dashboard", chromedp.Navigate(s.URL+"/inbox"+hash))
	return p
}

// logConsole logs the page's console messages and uncaught exceptions in
// the test's log, for when a test fails.
func logConsole(t *testing.T, p *page) {
	logs := chromedp.Events(p.ctx, runtime.ConsoleAPICalled)
	go func() {
		for e, err := range logs {
			if err != nil {
				return
			}
			var parts []string
			for _, a := range e.Args {
				if a.Description != "" {
					parts = append(parts, a.Description)
				} else {
					parts = append(parts, string(a.Value))
				}
			}
			t.Logf("console.%s: %s", e.Type, strings.Join(parts, " "))
		}
	}()
	exceptions := chromedp.Events(p.ctx, runtime.ExceptionThrown)
	go func() {
		for e, err := range exceptions {
			if err != nil {
				return
			}
			d := e.ExceptionDetails
			desc := ""
			if d.Exception != nil {
				desc = d.Exception.Description
			}
			t.Logf("exception: %s %s", d.Text, desc)
		}
	}()
}

// login fills the login form and waits for the dashboard.
func (p *page) login(email string) {
	p.t.Helper()
	p.waitJS("the login form", `!document.getElementById("login").hidden`)
	p.do("clear the email", chromedp.Evaluate[chromedp.Void](`document.getElementById("email").value = ""`))
	p.keys(q("#email"), email)
	p.keys(q("#password"), password)
	p.click("Log in", pageButton("#login", "Log in"))
	p.waitJS("the dashboard after logging in", `document.getElementById("login").hidden && !document.getElementById("app").hidden && !document.getElementById("app").inert`)
}

func TestDashboardLogin(t *testing.T) {
	s := newServer(t, nil)
	s.newAgentAccount("ann@example.com", "Ann Agent", inbox.RoleAgent)
	browser := newBrowser(t)
	p := openDashboard(t, browser, s, "")
	p.login("ann@example.com")
	p.waitJS("Ann's name in the me-menu", q("#me-name")+`.textContent === "Ann Agent"`)
	p.waitJS("Ann online", q("#me-dot")+`.classList.contains("online")`)
	if eval[bool](p, `!`+q("#nav-admin")+`.hidden`) {
		t.Fatalf("an agent sees the Admin nav")
	}
	p.screenshot("dashboard-empty")
}
