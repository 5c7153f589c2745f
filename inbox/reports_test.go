package inbox_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// reportFixture drives a store on a clock the test moves, so that every
// join, reply and rating happens at a known second.
type reportFixture struct {
	t       *testing.T
	s       *inbox.Store
	clock   *inboxtest.Clock
	contact inbox.Contact
	notes   int
}

func newReportFixture(t *testing.T, url string) *reportFixture {
	clock := inboxtest.NewClock()
	s := inboxtest.Open(t, url, &inbox.Options{Now: clock.Now})
	c, err := s.CreateContact(ctx, inbox.NewContact{Name: "Vic", Email: "vic@example.com"})
	if err != nil {
		t.Fatalf("CreateContact() = %v", err)
	}
	return &reportFixture{t: t, s: s, clock: clock, contact: c}
}

func (f *reportFixture) agent(name, role string) inbox.Agent {
	f.t.Helper()
	a, err := f.s.CreateAgent(ctx, inbox.NewAgent{Email: name + "@example.com", Name: name, Role: role, Password: "correct horse"})
	if err != nil {
		f.t.Fatalf("CreateAgent(%s) = %v", name, err)
	}
	return a
}

func (f *reportFixture) conversation() int64 {
	f.t.Helper()
	c, err := f.s.StartConversation(ctx, f.contact.ID, inbox.ChannelChat, "")
	if err != nil {
		f.t.Fatalf("StartConversation() = %v", err)
	}
	if _, _, err := f.s.AddMessage(ctx, inbox.NewMessage{ConversationID: c.ID, Author: inbox.AuthorContact, Text: "help"}); err != nil {
		f.t.Fatalf("AddMessage(contact) = %v", err)
	}
	return c.ID
}

func (f *reportFixture) join(conv int64, a inbox.Agent) {
	f.t.Helper()
	if err := f.s.Join(ctx, conv, a.ID); err != nil {
		f.t.Fatalf("Join(%d, %s) = %v", conv, a.Name, err)
	}
}

func (f *reportFixture) leave(conv int64, a inbox.Agent) {
	f.t.Helper()
	if err := f.s.Leave(ctx, conv, a.ID); err != nil {
		f.t.Fatalf("Leave(%d, %s) = %v", conv, a.Name, err)
	}
}

func (f *reportFixture) reply(conv int64, a inbox.Agent) {
	f.t.Helper()
	if _, _, err := f.s.AddMessage(ctx, inbox.NewMessage{ConversationID: conv, Author: inbox.AuthorAgent, AgentID: &a.ID, Text: "on it"}); err != nil {
		f.t.Fatalf("AddMessage(%s) = %v", a.Name, err)
	}
}

// note stores a private note of the agent, as the notes part stores them:
// an agent message with channel "note".
func (f *reportFixture) note(conv int64, a inbox.Agent) {
	f.t.Helper()
	f.notes++
	if err := f.s.Gorm().Exec(`INSERT INTO messages (conversation_id, seq, author, agent_id, channel, text, html, state, created_at)
		VALUES (?, ?, 'agent', ?, 'note', 'internal', '', 'sent', ?)`, conv, 1_000_000+f.notes, a.ID, f.clock.Now()).Error; err != nil {
		f.t.Fatalf("insert note: %v", err)
	}
}

func (f *reportFixture) rate(conv int64, score int, comment string) {
	f.t.Helper()
	if _, err := f.s.Rate(ctx, conv, score, comment); err != nil {
		f.t.Fatalf("Rate(%d) = %v", conv, err)
	}
}

func (f *reportFixture) wait(d time.Duration) { f.clock.Advance(d) }

// answered is a new conversation that the agent joins, answers after d
// and leaves.
func (f *reportFixture) answered(a inbox.Agent, d time.Duration) int64 {
	f.t.Helper()
	c := f.conversation()
	f.join(c, a)
	f.wait(d)
	f.reply(c, a)
	f.leave(c, a)
	return c
}

// The operator report counts, per agent, the conversations joined in the
// period, the ratings given in it (count, average, distribution, the
// comments newest first), and the median of the first response times by
// the documented rule: from each join of the period to the agent's first
// reply in that participation (ended or still open), private notes never
// counting, a join without a reply giving no sample; the median of an
// even count is the mean of the middle two. Disabled agents are listed
// only with activity; the daily series has the joins and ratings per UTC
// day.
func TestOperatorsReport(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newReportFixture(t, url)
		t0 := f.clock.Now()
		alice := f.agent("alice", inbox.RoleAdmin)
		bob := f.agent("bob", inbox.RoleAgent)
		carol := f.agent("carol", inbox.RoleAgent)
		dave := f.agent("dave", inbox.RoleAgent)
		erin := f.agent("erin", inbox.RoleAgent)
		frank := f.agent("frank", inbox.RoleAgent)

		// Before the period: not counted.
		f.rate(f.answered(bob, 100*time.Second), 3, "before")
		from := t0.Add(time.Hour)
		f.clock.Advance(from.Sub(f.clock.Now()) + time.Hour)

		// Alice: 30 s (a note at 5 s is no response).
		c1 := f.conversation()
		f.wait(10 * time.Second)
		f.join(c1, alice)
		f.wait(5 * time.Second)
		f.note(c1, alice)
		f.wait(25 * time.Second)
		f.reply(c1, alice)
		f.leave(c1, alice)
		f.rate(c1, 5, "Great, thanks")

		// Alice 60 s and Bob 20 s in one conversation, rated for both.
		c2 := f.conversation()
		f.join(c2, alice)
		f.join(c2, bob)
		f.wait(20 * time.Second)
		f.reply(c2, bob)
		f.wait(40 * time.Second)
		f.reply(c2, alice)
		f.leave(c2, bob)
		f.leave(c2, alice)
		f.rate(c2, 2, "")

		// Alice 90 s.
		c3 := f.answered(alice, 90*time.Second)
		f.wait(time.Second)
		f.rate(c3, 4, "ok")

		// Carol 7 s, then disabled: still listed.
		f.answered(carol, 7*time.Second)

		// Frank 12 s, still in the conversation (a note at 3 s is no
		// response either).
		c10 := f.conversation()
		f.join(c10, frank)
		f.wait(3 * time.Second)
		f.note(c10, frank)
		f.wait(9 * time.Second)
		f.reply(c10, frank)

		// Alice joins and leaves without a reply: no sample.
		c5 := f.conversation()
		f.join(c5, alice)
		f.wait(10 * time.Second)
		f.leave(c5, alice)

		// Bob 5 s and 100 s.
		f.answered(bob, 5*time.Second)
		f.answered(bob, 100*time.Second)

		// Alice joins, leaves without a reply, and the next day joins
		// again and replies 10 s later: one sample of 10 s, for the second
		// join (the reply is outside the first participation). The
		// conversation counts once, on the day of the first join.
		c6 := f.conversation()
		f.join(c6, alice)
		f.wait(5 * time.Second)
		f.leave(c6, alice)
		f.clock.Advance(t0.Add(26 * time.Hour).Sub(f.clock.Now()))
		if _, _, err := f.s.AddMessage(ctx, inbox.NewMessage{ConversationID: c6, Author: inbox.AuthorContact, Text: "again"}); err != nil {
			t.Fatalf("AddMessage() = %v", err)
		}
		f.wait(time.Hour)
		f.join(c6, alice)
		f.wait(10 * time.Second)
		f.reply(c6, alice)
		f.leave(c6, alice)
		f.rate(c6, 1, "slow")

		yes := true
		for _, a := range []inbox.Agent{carol, dave} {
			if _, err := f.s.UpdateAgent(ctx, a.ID, inbox.AgentChange{Disabled: &yes}); err != nil {
				t.Fatalf("UpdateAgent(disable %s) = %v", a.Name, err)
			}
		}

		// After the period: not counted.
		to := t0.Add(48 * time.Hour)
		f.clock.Advance(to.Sub(f.clock.Now()) + time.Hour)
		f.rate(f.answered(bob, time.Second), 5, "after")

		rep, err := f.s.OperatorsReport(ctx, from, to)
		if err != nil {
			t.Fatalf("OperatorsReport() = %v", err)
		}
		if !rep.From.Equal(from) || !rep.To.Equal(to) {
			t.Fatalf("period = %v..%v, want %v..%v", rep.From, rep.To, from, to)
		}
		got := map[int64]inbox.OperatorStats{}
		var order []string
		for _, op := range rep.Operators {
			got[op.AgentID] = op
			order = append(order, op.Name)
		}
		if fmt.Sprint(order) != "[alice bob carol erin frank]" {
			t.Fatalf("operators = %v, want alice, bob, carol (disabled, active), erin (no activity) and frank, by name; not dave", order)
		}
		want := []struct {
			a        inbox.Agent
			joined   int64
			count    int64
			average  string
			dist     [5]int64
			comments string
			median   string
			disabled bool
		}{
			{alice, 5, 4, "3", [5]int64{1, 1, 0, 1, 1}, "[slow/1 ok/4 Great, thanks/5]", "45", false},
			{bob, 3, 1, "2", [5]int64{0, 1, 0, 0, 0}, "[]", "20", false},
			{carol, 1, 0, "<nil>", [5]int64{}, "[]", "7", true},
			{erin, 0, 0, "<nil>", [5]int64{}, "[]", "<nil>", false},
			{frank, 1, 0, "<nil>", [5]int64{}, "[]", "12", false},
		}
		for _, w := range want {
			op := got[w.a.ID]
			var comments []string
			for _, c := range op.Ratings.Comments {
				comments = append(comments, fmt.Sprintf("%s/%d", c.Comment, c.Score))
			}
			if op.ConversationsJoined != w.joined || op.Ratings.Count != w.count || fmtPtr(op.Ratings.Average) != w.average ||
				op.Ratings.Distribution != w.dist || fmt.Sprint(comments) != w.comments && !(w.comments == "[]" && comments == nil) ||
				fmtPtr(op.MedianFirstResponseSeconds) != w.median || op.Disabled != w.disabled || op.Ratings.Comments == nil {
				t.Errorf("%s: joined %d, ratings %d avg %s %v comments %v, median %s, disabled %v; want joined %d, ratings %d avg %s %v comments %s, median %s, disabled %v",
					w.a.Name, op.ConversationsJoined, op.Ratings.Count, fmtPtr(op.Ratings.Average), op.Ratings.Distribution, comments,
					fmtPtr(op.MedianFirstResponseSeconds), op.Disabled, w.joined, w.count, w.average, w.dist, w.comments, w.median, w.disabled)
			}
		}
		if c := got[alice.ID].Ratings.Comments; len(c) > 0 && (c[0].ConversationID != c6 || c[0].At.Location() != time.UTC) {
			t.Errorf("newest comment = %+v, want conversation %d's, in UTC", c[0], c6)
		}
		day1, day2 := t0.Format(time.DateOnly), t0.Add(24*time.Hour).Format(time.DateOnly)
		wantDaily := fmt.Sprint([]inbox.OperatorDay{
			{Date: day1, AgentID: alice.ID, Joined: 5, Ratings: 3},
			{Date: day1, AgentID: bob.ID, Joined: 3, Ratings: 1},
			{Date: day1, AgentID: carol.ID, Joined: 1, Ratings: 0},
			{Date: day1, AgentID: frank.ID, Joined: 1, Ratings: 0},
			{Date: day2, AgentID: alice.ID, Joined: 0, Ratings: 1},
		})
		if fmt.Sprint(rep.Daily) != wantDaily {
			t.Errorf("daily = %v, want %v", rep.Daily, wantDaily)
		}

		// The median of an odd count is the middle sample: Bob's three.
		rep, err = f.s.OperatorsReport(ctx, from, to.Add(2*time.Hour))
		if err != nil {
			t.Fatalf("OperatorsReport() = %v", err)
		}
		for _, op := range rep.Operators {
			if op.AgentID == bob.ID && fmtPtr(op.MedianFirstResponseSeconds) != "12.5" {
				t.Errorf("bob's median with the join after the period = %s, want 12.5 (of 1, 5, 20, 100)", fmtPtr(op.MedianFirstResponseSeconds))
			}
		}
	})
}

func fmtPtr(p *float64) string {
	if p == nil {
		return "<nil>"
	}
	return fmt.Sprint(*p)
}

// A period must end after it starts and span at most 366 days.
func TestOperatorsReportPeriod(t *testing.T) {
	s := inboxtest.Open(t, inboxtest.SQLiteURL(t), nil)
	now := time.Now()
	for _, tt := range []struct {
		from, to time.Time
		field    string
	}{
		{now, now, "to"},
		{now, now.Add(-time.Second), "to"},
		{now.Add(-367 * 24 * time.Hour), now, "from"},
	} {
		_, err := s.OperatorsReport(ctx, tt.from, tt.to)
		var inv *inbox.InvalidError
		if !errors.As(err, &inv) || inv.Field != tt.field {
			t.Errorf("OperatorsReport(%v, %v) = %v, want an error naming %s", tt.from, tt.to, err, tt.field)
		}
	}
	if _, err := s.OperatorsReport(ctx, now.Add(-366*24*time.Hour), now); err != nil {
		t.Errorf("OperatorsReport(366 days) = %v", err)
	}
}
