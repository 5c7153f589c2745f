package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lxzan/gws"

	"github.com/microdeets/microchat/channels/email/emailtest"
	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// mailStore is an IMAP server the test delivers customers' mail into:
// go-imap's imapmemserver in-process, or a real Dovecot.
type mailStore interface {
	deliver(t *testing.T, raw []byte)
	imapYAML() string
}

type memIMAP struct{ s *emailtest.IMAPServer }

func (m memIMAP) deliver(t *testing.T, raw []byte) { m.s.Append(t, "INBOX", raw, time.Time{}) }
func (m memIMAP) imapYAML() string {
	return fmt.Sprintf("{host: %s, port: %d, tls: none, username: %q, password: %q, folder: INBOX}",
		m.s.Host, m.s.Port, m.s.Username, m.s.Password)
}

type dovecotIMAP struct{ d *emailtest.Dovecot }

func (m dovecotIMAP) deliver(_ *testing.T, raw []byte) { m.d.Deliver(raw) }
func (m dovecotIMAP) imapYAML() string {
	return fmt.Sprintf("{host: %s, port: %d, tls: none, username: %q, password: %q, folder: INBOX}",
		m.d.Host, m.d.Port, m.d.User, m.d.Password)
}

// TestEmailEndToEnd runs the whole email path through the real binary's
// serve, over real IMAP and SMTP sockets (issue 12, "Done when"): a
// customer's mail becomes a conversation with the envelope, an agent's
// reply goes out by SMTP with the threading headers, the customer's
// answer lands in the same conversation, the last agent leaving mails the
// survey whose link records the rating; and a chat visitor who leaves
// with an agent's message unread gets it by email (continuity), and their
// email answer lands in the chat conversation, where the widget shows it.
func TestEmailEndToEnd(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, dbURL string) {
		emailEndToEnd(t, dbURL, memIMAP{emailtest.StartIMAP(t, nil)})
	})
}

// TestEmailEndToEndDovecot is TestEmailEndToEnd against a real Dovecot
// (scripts/test-deps.sh installs it), on SQLite.
func TestEmailEndToEndDovecot(t *testing.T) {
	d := emailtest.StartDovecot(t)
	emailEndToEnd(t, inboxtest.SQLiteURL(t), dovecotIMAP{d})
}

func emailEndToEnd(t *testing.T, dbURL string, imap mailStore) {
	smtpd := emailtest.StartSMTP(t, nil)
	srv, agent := startEmailServe(t, dbURL, "offline_after: 1s\nemail_after_unread: 2s\n",
		"plus_addressing: true\npoll_interval: 1s\n", imap.imapYAML(), smtpd)

	// A customer writes to the support address.
	imap.deliver(t, []byte("From: Carol Customer <carol@customer.test>\r\n"+
		"To: Example Support <support@example.com>\r\n"+
		"Subject: Printer on fire\r\n"+
		"Message-ID: <m1@customer.test>\r\n"+
		"Date: Mon, 30 Nov 2026 08:00:00 +0000\r\n"+
		"Content-Type: text/plain; charset=utf-8\r\n\r\n"+
		"It smokes. What now?\r\n"))
	var conv inbox.ConversationItem
	inboxtest.Eventually(t, "the mail to become an Unassigned conversation", func() bool {
		var page inbox.ConversationPage
		agent.get(t, "/api/v1/conversations?column=unassigned", &page)
		for _, it := range page.Items {
			if it.Contact.Email == "carol@customer.test" {
				conv = it
				return true
			}
		}
		return false
	})
	if !conv.HasEmail || conv.Channel != inbox.ChannelEmail || conv.Subject != "Printer on fire" ||
		conv.LastMessage == nil || conv.LastMessage.Email == nil || conv.LastMessage.Email.From.Addr != "carol@customer.test" {
		t.Fatalf("conversation = %+v; want the envelope, the subject and the mail's From", conv)
	}
	cid := strconv.FormatInt(conv.ID, 10)

	// The agent answers; the customer is offline with an email: by email.
	agent.post(t, "/api/v1/conversations/"+cid+"/join", nil, nil)
	var ans struct {
		Message inbox.Message `json:"message"`
		Channel string        `json:"channel"`
		Reason  string        `json:"reason"`
	}
	agent.post(t, "/api/v1/conversations/"+cid+"/messages", map[string]any{"text": "Unplug it, please.", "client_id": "r1"}, &ans)
	if ans.Channel != inbox.ChannelEmail || ans.Reason == "" {
		t.Fatalf("reply answer = %+v; want email with a reason", ans)
	}
	mails := smtpd.WaitMails(1, inboxtest.Patience)
	reply := parseMail(t, mails[0].Raw)
	ourID := reply.Header.Get("Message-ID")
	h := reply.Header
	if !strings.Contains(h.Get("From"), "Alice via Example Support") || !strings.Contains(h.Get("From"), "<support@example.com>") ||
		h.Get("In-Reply-To") != "<m1@customer.test>" || !strings.Contains(h.Get("References"), "<m1@customer.test>") ||
		!regexp.MustCompile(`^<?support\+c\d+-[a-z2-7]{16}@example\.com>?$`).MatchString(h.Get("Reply-To")) ||
		h.Get("Subject") != "Re: Printer on fire" || ourID == "" || h.Get("Auto-Submitted") != "" ||
		!strings.Contains(string(mails[0].Raw), "Unplug it, please.") || mails[0].To[0] != "carol@customer.test" {
		t.Fatalf("reply mail headers = %v", h)
	}
	agent.eventually(t, "the reply to turn sent", cid, func(ms []inbox.Message) bool {
		return len(ms) == 2 && ms[1].State == inbox.StateSent
	})

	// The customer answers the reply, asking for answers at work: the
	// same conversation.
	imap.deliver(t, []byte("From: carol@customer.test\r\n"+
		"Reply-To: Carol at Work <carol.work@customer.test>\r\n"+
		"To: "+h.Get("Reply-To")+"\r\n"+
		"Subject: Re: Printer on fire\r\n"+
		"Message-ID: <m2@customer.test>\r\n"+
		"In-Reply-To: "+ourID+"\r\n"+
		"References: <m1@customer.test> "+ourID+"\r\n"+
		"Content-Type: text/plain; charset=utf-8\r\n\r\n"+
		"Done, thanks!\r\n\r\nOn Mon, Alice wrote:\r\n> Unplug it, please.\r\n"))
	agent.eventually(t, "the customer's answer in the same conversation", cid, func(ms []inbox.Message) bool {
		return len(ms) == 3 && ms[2].Author == inbox.AuthorContact && ms[2].Text == "Done, thanks!"
	})

	// The last agent leaves: the email-only contact gets the survey, at
	// the address their last mail asked for, threaded on that mail.
	agent.post(t, "/api/v1/conversations/"+cid+"/leave", nil, nil)
	mails = smtpd.WaitMails(2, inboxtest.Patience)
	survey := parseMail(t, mails[1].Raw)
	if sh := survey.Header; sh.Get("Auto-Submitted") != "auto-generated" || mails[1].To[0] != "carol.work@customer.test" ||
		!strings.Contains(sh.Get("To"), "carol.work@customer.test") || sh.Get("In-Reply-To") != "<m2@customer.test>" ||
		sh.Get("References") != "<m1@customer.test> "+ourID+" <m2@customer.test>" {
		t.Fatalf("survey to %v, headers = %v; want Auto-Submitted: auto-generated, to the Reply-To, threaded on m2", mails[1].To, sh)
	}
	links := regexp.MustCompile(`http://chat\.example\.test/rate/([A-Za-z0-9._-]+)`).FindAllStringSubmatch(string(decodedBody(t, mails[1].Raw)), -1)
	if len(links) < 5 {
		t.Fatalf("survey mail has %d rating links, want 5:\n%s", len(links), mails[1].Raw)
	}
	five := links[4][1]
	resp, _ := get(t, http.DefaultClient, srv.url+"/rate/"+five)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /rate/... = %d", resp.StatusCode)
	}
	form := url.Values{"comment": {"quick"}}
	req, _ := http.NewRequest(http.MethodPost, srv.url+"/rate/"+five, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", srv.url)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /rate/... = %v, %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if resp, _ := get(t, http.DefaultClient, srv.url+"/rate/"+links[0][1]); resp.StatusCode != http.StatusConflict {
		t.Fatalf("GET of another link of a used survey = %d, want 409", resp.StatusCode)
	}

	// A chat visitor with an email address, online.
	var start struct {
		Token        string             `json:"token"`
		Contact      inbox.Contact      `json:"contact"`
		Conversation inbox.Conversation `json:"conversation"`
	}
	postJSON(t, http.DefaultClient, srv.url+"/api/v1/widget/conversations", nil,
		map[string]any{"name": "Dave", "email": "dave@visitor.test"}, &start)
	ws := dialVisitor(t, srv.addr, start.Token)
	chat := strconv.FormatInt(start.Conversation.ID, 10)
	contact := strconv.FormatInt(start.Contact.ID, 10)
	inboxtest.Eventually(t, "the visitor to be online", func() bool {
		var c inbox.Contact
		agent.get(t, "/api/v1/contacts/"+contact, &c)
		return c.Online
	})
	agent.post(t, "/api/v1/conversations/"+chat+"/join", nil, nil)
	agent.post(t, "/api/v1/conversations/"+chat+"/messages", map[string]any{"text": "Your order ships today.", "client_id": "c1"}, &ans)
	if ans.Channel != inbox.ChannelChat {
		t.Fatalf("reply to an online visitor went by %q (%s)", ans.Channel, ans.Reason)
	}
	// They leave without reading it: after offline_after they are
	// offline, after email_after_unread the digest goes.
	ws.WriteClose(1000, nil)
	mails = smtpd.WaitMails(3, inboxtest.Patience)
	digest := parseMail(t, mails[2].Raw)
	digestID := digest.Header.Get("Message-ID")
	if mails[2].To[0] != "dave@visitor.test" || digest.Header.Get("Auto-Submitted") != "auto-generated" ||
		!strings.Contains(digest.Header.Get("Subject"), "[#c"+chat+"-") ||
		!strings.Contains(string(decodedBody(t, mails[2].Raw)), "Your order ships today.") {
		t.Fatalf("digest = %v\n%s", digest.Header, mails[2].Raw)
	}

	// Their email answer continues the chat conversation, and the widget
	// shows it when they come back.
	imap.deliver(t, []byte("From: Dave <dave@visitor.test>\r\n"+
		"To: support@example.com\r\n"+
		"Subject: Re: "+digest.Header.Get("Subject")+"\r\n"+
		"Message-ID: <d1@visitor.test>\r\n"+
		"In-Reply-To: "+digestID+"\r\n"+
		"Content-Type: text/plain; charset=utf-8\r\n\r\n"+
		"Great, thank you.\r\n"))
	agent.eventually(t, "the visitor's email answer in the chat conversation", chat, func(ms []inbox.Message) bool {
		last := ms[len(ms)-1]
		return last.Author == inbox.AuthorContact && last.Channel == inbox.ChannelEmail && last.Text == "Great, thank you."
	})
	var page inbox.MessagePage
	getJSON(t, http.DefaultClient, srv.url+"/api/v1/widget/messages", start.Token, &page)
	if n := len(page.Messages); n == 0 || page.Messages[n-1].Text != "Great, thank you." {
		t.Fatalf("widget messages = %+v; want the email answer last", page.Messages)
	}
}

// startEmailServe runs serve on dbURL with the config lines top and one
// mailbox, "support" (support@example.com, "Example Support"), with the
// more keys in mailbox (lines "key: value"), reading the IMAP account imapYAML and sending
// through smtpd; base_url is http://chat.example.test. It returns the
// server and the admin Alice logged in.
func startEmailServe(tb testing.TB, dbURL, top, mailbox, imapYAML string, smtpd *emailtest.SMTPServer) (*server, *agentClient) {
	tb.Helper()
	testEnv(tb)
	tb.Setenv("MICROCHAT_DATABASE_URL", dbURL)
	tb.Setenv("MICROCHAT_BASE_URL", "http://chat.example.test")
	tb.Setenv(envAdminEmail, "alice@example.com")
	tb.Setenv(envAdminPassword, "correct horse battery")
	tb.Setenv(envAdminName, "Alice")
	cfg := filepath.Join(tb.TempDir(), "microchat.yaml")
	yaml := top + "mailboxes:\n  - name: support\n    address: support@example.com\n    display_name: Example Support\n"
	for _, line := range strings.Split(strings.TrimSpace(mailbox), "\n") {
		if line != "" {
			yaml += "    " + line + "\n"
		}
	}
	yaml += fmt.Sprintf("    imap: %s\n    smtp: {host: %s, port: %d, tls: none}\n", imapYAML, smtpd.Host, smtpd.Port)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		tb.Fatal(err)
	}
	srv := startServe(tb, "--config", cfg)
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("server log:\n%s", srv.stderr)
		}
	})
	return srv, loginAgent(tb, srv.url, "alice@example.com", "correct horse battery")
}

// agentClient is a logged-in agent's HTTP client.
type agentClient struct {
	c    *http.Client
	base string
	csrf string
}

func loginAgent(t testing.TB, base, email, password string) *agentClient {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	a := &agentClient{c: &http.Client{Jar: jar}, base: base}
	var ans struct {
		CSRFToken string `json:"csrf_token"`
	}
	postJSON(t, a.c, base+"/api/v1/auth/login", nil, map[string]any{"email": email, "password": password}, &ans)
	a.csrf = ans.CSRFToken
	return a
}

func (a *agentClient) get(t testing.TB, path string, out any) {
	t.Helper()
	getJSON(t, a.c, a.base+path, "", out)
}

func (a *agentClient) post(t testing.TB, path string, body, out any) {
	t.Helper()
	postJSON(t, a.c, a.base+path, http.Header{"X-CSRF-Token": {a.csrf}}, body, out)
}

// eventually waits until the conversation's messages satisfy ok.
func (a *agentClient) eventually(t *testing.T, what, conversation string, ok func([]inbox.Message) bool) {
	t.Helper()
	var page inbox.MessagePage
	inboxtest.Eventually(t, what, func() bool {
		a.get(t, "/api/v1/conversations/"+conversation+"/messages", &page)
		return len(page.Messages) > 0 && ok(page.Messages)
	})
}

func getJSON(t testing.TB, c *http.Client, u, bearer string, out any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	doJSON(t, c, req, out)
}

func postJSON(t testing.TB, c *http.Client, u string, h http.Header, body, out any) {
	t.Helper()
	b, _ := json.Marshal(body)
	if body == nil {
		b = nil
	}
	req, _ := http.NewRequest(http.MethodPost, u, bytes.NewReader(b))
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	doJSON(t, c, req, out)
}

func doJSON(t testing.TB, c *http.Client, req *http.Request, out any) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s = %d %s", req.Method, req.URL, resp.StatusCode, body)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("%s %s: decoding %s: %v", req.Method, req.URL, body, err)
		}
	}
}

func parseMail(t *testing.T, raw []byte) *mail.Message {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("reading a sent mail: %v\n%s", err, raw)
	}
	return m
}

// decodedBody is raw with its quoted-printable soft line breaks and =XX
// escapes undone, enough to find the text and links of our own mail.
func decodedBody(t *testing.T, raw []byte) []byte {
	t.Helper()
	s := strings.ReplaceAll(string(raw), "=\r\n", "")
	s = strings.ReplaceAll(s, "=3D", "=")
	return []byte(s)
}

// visitorEvents answers pings and drops everything else.
type visitorEvents struct{ gws.BuiltinEventHandler }

func (visitorEvents) OnPing(c *gws.Conn, p []byte) { c.WritePong(p) }

// dialVisitor opens the widget's socket with token and authenticates.
func dialVisitor(t testing.TB, addr, token string) *gws.Conn {
	t.Helper()
	conn, _, err := gws.NewClient(visitorEvents{}, &gws.ClientOption{Addr: "ws://" + addr + "/api/v1/widget/ws"})
	if err != nil {
		t.Fatalf("dialing the widget socket: %v", err)
	}
	go conn.ReadLoop()
	t.Cleanup(func() { conn.NetConn().Close() })
	auth, _ := json.Marshal(map[string]any{"type": "auth", "token": token})
	if err := conn.WriteMessage(gws.OpcodeText, auth); err != nil {
		t.Fatal(err)
	}
	return conn
}

// serve warns at start about a mailbox server reached with tls: none on
// another host (the login and the mail in clear), and only about that one.
func TestServeWarnsClearText(t *testing.T) {
	imapd := emailtest.StartIMAP(t, nil)
	testEnv(t)
	cfg := filepath.Join(t.TempDir(), "microchat.yaml")
	// 192.0.2.1 is TEST-NET-1 (RFC 5737): nothing is sent, so nothing
	// dials it.
	yaml := fmt.Sprintf(`mailboxes:
  - name: support
    address: support@example.com
    imap: %s
    smtp: {host: 192.0.2.1, port: 25, tls: none}
`, memIMAP{imapd}.imapYAML())
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startServe(t, "--config", cfg)
	var warnings []string
	for line := range strings.Lines(srv.stderr.String()) {
		if strings.Contains(line, "tls: none to") {
			warnings = append(warnings, line)
		}
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "level=WARN") || !strings.Contains(warnings[0], "mailbox=support") ||
		!strings.Contains(warnings[0], `server="SMTP 192.0.2.1:25 (no TLS)"`) {
		t.Fatalf("warnings about tls: none = %q, want one for SMTP 192.0.2.1:25; stderr:\n%s", warnings, srv.stderr)
	}
}
