package browsertest

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// hungBound is how soon a client must be on a new socket, its message
// stored and acknowledged, after its server stopped answering, with the
// short waits the tests set (a second): the production waits are 20 s
// and more, and the old rule took 70 to 95 s.
const hungBound = 10 * time.Second

// TestHungServer: a socket client (the widget, the dashboard) whose
// server stops answering without closing the connection (kill -STOP of a
// node behind nginx, a host gone) finds it by its own waits
// (web/widget/socket.js), reconnects (to the next node, here the same
// server through a connection that is not frozen) and resumes: what it
// sent is stored and acknowledged once, what it missed reaches it.
func TestHungServer(t *testing.T) {
	browser := newBrowser(t)
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, context.Context, string)
	}{
		{"widget message", testHungWidgetMessage},
		{"widget idle", testHungWidgetIdle},
		{"dashboard", testHungDashboard},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inboxtest.Run(t, func(t *testing.T, url string) { tc.fn(t, browser, url) })
		})
	}
}

// testHungWidgetMessage: the widget pings once a minute only, so that
// what finds the dead link is the message's ack that does not come.
func testHungWidgetMessage(t *testing.T, browser context.Context, url string) {
	s := newServerAt(t, url, nil, nil)
	px := newFreezer(t, s.addr)
	v := visitor(t, browser)
	v.socketTimes(`{ ping: 60000, ack: 1000 }`)
	v.navigate(px.URL + "/")
	startChat(v, "Hana Hung", "", "")
	v.send("before")
	v.waitText("Sent")

	px.freeze()
	start := time.Now()
	v.send("into the silence")
	v.waitJSWithin(hungBound, "the message stored and acknowledged on a new socket",
		`!`+root+`.querySelector(".msgs li.pending") && [...`+root+`.querySelectorAll(".msgs li.contact")].some((li) => li.innerText.includes("into the silence"))`)
	t.Logf("acknowledged %v after the freeze", time.Since(start).Round(time.Millisecond))
	if got := strings.Join(s.contactTexts(1), "|"); got != "before|into the silence" {
		t.Fatalf("the visitor's stored messages are %q", got)
	}
	if n := px.sockets(); n < 2 {
		t.Fatalf("%d WebSocket connections through the proxy, want a new one after the freeze", n)
	}
}

// testHungWidgetIdle: an idle widget finds the dead link by its ping,
// and gets the agent's answer it missed; what it writes then is stored.
func testHungWidgetIdle(t *testing.T, browser context.Context, url string) {
	ctx := context.Background()
	s := newServerAt(t, url, nil, nil)
	bob := s.newAgentAccount("bob@example.com", "Bob Berg", inbox.RoleAgent)
	px := newFreezer(t, s.addr)
	v := visitor(t, browser)
	v.socketTimes(`{ ping: 1000, pong: 1000, ack: 60000 }`)
	v.navigate(px.URL + "/")
	startChat(v, "Ida Idle", "", "")
	v.send("hello?")
	v.waitText("Sent")

	px.freeze()
	if _, _, err := s.store.AddMessage(ctx, inbox.NewMessage{ConversationID: 1, Author: inbox.AuthorAgent, AgentID: &bob.ID, Text: "Sorry for the wait"}); err != nil {
		t.Fatalf("AddMessage() = %v", err)
	}
	v.waitJSWithin(hungBound, "the agent's answer on a new socket", root+`.querySelector(".msgs").innerText.includes("Sorry for the wait")`)
	v.send("no problem")
	v.waitJSWithin(hungBound, "the answer stored", `!`+root+`.querySelector(".msgs li.pending") && `+root+`.querySelector(".msgs").innerText.includes("no problem")`)
	if n := v.count("Sorry for the wait"); n != 1 {
		t.Fatalf("the agent's answer shows %d times", n)
	}
	if got := strings.Join(s.contactTexts(1), "|"); got != "hello?|no problem" {
		t.Fatalf("the visitor's stored messages are %q", got)
	}
}

// testHungDashboard: the agents' socket finds the dead link by its ping;
// the visitor's message written meanwhile reaches the thread, and the
// reply written meanwhile is stored once and acknowledged.
func testHungDashboard(t *testing.T, browser context.Context, url string) {
	ctx := context.Background()
	s := newServerAt(t, url, nil, nil)
	conv := s.newContactConversation("Vera", "Hello")
	px := newFreezer(t, s.addr)
	p := visitor(t, browser)
	logConsole(t, p)
	p.socketTimes(`{ ping: 1000, pong: 1000, ack: 60000 }`)
	p.do("open the dashboard", chromedp.Navigate(px.URL+"/inbox"))
	d := s.dashboardOn(p, "alice@example.com", "Alice Moreau", inbox.RoleAdmin)
	d.open(conv.ID)
	d.waitJS("the visitor's message", msgWith("Hello")+` !== undefined`)

	px.freeze()
	if _, _, err := s.store.AddMessage(ctx, inbox.NewMessage{ConversationID: conv.ID, Author: inbox.AuthorContact, Text: "Anyone there?"}); err != nil {
		t.Fatalf("AddMessage() = %v", err)
	}
	d.write("Yes, here.")
	d.waitJSWithin(hungBound, "the visitor's message and the reply acknowledged, on a new socket",
		msgWith("Anyone there?")+` !== undefined && !document.querySelector("#thread .msg.pending") && `+msgWith("Yes, here.")+`?.dataset.messageId !== undefined`)
	if got := strings.Join(s.agentTexts(conv.ID), "|"); got != "Yes, here." {
		t.Fatalf("the agent's stored replies are %q", got)
	}
	if n := eval[int](d.page, `[...document.querySelectorAll("#thread .msg .text")].filter((t) => t.textContent === "Anyone there?").length`); n != 1 {
		t.Fatalf("the visitor's message shows %d times", n)
	}
}

// socketTimes sets window.__microchatSocketTimes (web/widget/socket.js)
// in every document the page loads, before its scripts.
func (p *page) socketTimes(js string) {
	p.t.Helper()
	p.do("set the socket's times", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{Source: "window.__microchatSocketTimes = " + js})
		return err
	}))
}

// freezer is a TCP proxy in front of a server, as nginx is in front of a
// node. freeze makes the node hang for the WebSockets open then: nothing
// goes through them any more, either way, and nothing closes them (the
// browser's side stays open as nginx keeps it). Connections made later,
// and plain HTTP ones, go through as nginx would send them to the next
// node.
type freezer struct {
	t      testing.TB
	URL    string
	target string
	done   chan struct{}

	mu      sync.Mutex
	conns   []net.Conn
	ws      []*atomic.Bool // each WebSocket's frozen flag
	nSocket int
}

func newFreezer(t testing.TB, target string) *freezer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	f := &freezer{t: t, URL: "http://" + l.Addr().String(), target: target, done: make(chan struct{})}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go f.serve(c)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		close(f.done)
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, c := range f.conns {
			c.Close()
		}
	})
	return f
}

func (f *freezer) serve(client net.Conn) {
	server, err := net.Dial("tcp", f.target)
	if err != nil {
		client.Close()
		return
	}
	f.mu.Lock()
	f.conns = append(f.conns, client, server)
	f.mu.Unlock()
	// The first bytes say whether the connection is a WebSocket's.
	buf := make([]byte, 32<<10)
	n, err := client.Read(buf)
	if err != nil {
		client.Close()
		server.Close()
		return
	}
	frozen := new(atomic.Bool)
	if bytes.Contains(bytes.ToLower(buf[:n]), []byte("upgrade: websocket")) {
		f.mu.Lock()
		f.ws = append(f.ws, frozen)
		f.nSocket++
		f.mu.Unlock()
	}
	if _, err := server.Write(buf[:n]); err != nil {
		client.Close()
		server.Close()
		return
	}
	go f.pipe(client, server, frozen)
	f.pipe(server, client, frozen)
}

// pipe copies from src to dst until either ends, or until frozen: then
// it holds what it read and waits for the end of the test.
func (f *freezer) pipe(dst, src net.Conn, frozen *atomic.Bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if frozen.Load() {
			<-f.done
			return
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				err = werr
			}
		}
		if err != nil {
			if err != io.EOF {
				src.Close()
			}
			dst.Close()
			return
		}
	}
}

// freeze stops the WebSockets open now.
func (f *freezer) freeze() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, fr := range f.ws {
		fr.Store(true)
	}
	if len(f.ws) == 0 {
		f.t.Fatalf("freeze: no WebSocket through the proxy")
	}
}

// sockets is how many WebSockets were opened through the proxy.
func (f *freezer) sockets() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.nSocket
}
