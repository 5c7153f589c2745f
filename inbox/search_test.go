package inbox_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// searchFixture is a store with four conversations to search:
//
//	printer (open):  Anna Smith <anna.smith@example.com>: "My printer is broken", "Have you tried...", "Refund please"
//	tokyo (open):    Jürgen MÜLLER <juergen.mueller@example.de>: German, then Japanese
//	printing (closed): 田中 太郎: "printing works now, thanks", "great"
//	greek (closed):  ΣΩΚΡΆΤΗΣ: "hello", and a private note "internal: customer wants a discount"
//
// and in that order of last activity, the greek one the most recent.
type searchFixture struct {
	*fixture
	printer, tokyo, printing, greek inbox.Conversation
	refund, note                    int64 // message ids
	anna, juergen                   inbox.Contact
}

func newSearchFixture(t *testing.T, url string) *searchFixture {
	t.Helper()
	f := &searchFixture{fixture: newFixture(t, url)}
	contact := func(name, email string) inbox.Contact {
		c, err := f.s.CreateContact(ctx, inbox.NewContact{Name: name, Email: email})
		if err != nil {
			t.Fatalf("CreateContact(%s) = %v", name, err)
		}
		return c
	}
	start := func(c inbox.Contact) inbox.Conversation {
		conv, err := f.s.StartConversation(ctx, c.ID, inbox.ChannelChat, "")
		if err != nil {
			t.Fatalf("StartConversation() = %v", err)
		}
		return conv
	}
	f.anna = contact("Anna Smith", "anna.smith@example.com")
	f.juergen = contact("Jürgen MÜLLER", "juergen.mueller@example.de")
	tanaka := contact("田中 太郎", "")
	socrates := contact("ΣΩΚΡΆΤΗΣ", "")
	f.printer, f.tokyo, f.printing, f.greek = start(f.anna), start(f.juergen), start(tanaka), start(socrates)

	f.say(t, f.printer.ID, inbox.AuthorContact, "My printer is broken")
	f.say(t, f.printer.ID, inbox.AuthorAgent, "Have you tried turning it off and on again?")
	f.refund = f.say(t, f.printer.ID, inbox.AuthorContact, "Refund please").ID
	f.say(t, f.tokyo.ID, inbox.AuthorContact, "Ich habe eine Frage zu meiner Bestellung")
	f.say(t, f.tokyo.ID, inbox.AuthorContact, "東京都新宿区の店舗で買いました。北京にもあります")
	f.say(t, f.printing.ID, inbox.AuthorContact, "printing works now, thanks")
	f.say(t, f.printing.ID, inbox.AuthorAgent, "great")
	f.say(t, f.greek.ID, inbox.AuthorContact, "hello")
	for _, c := range []inbox.Conversation{f.printing, f.greek} {
		if err := f.s.Join(ctx, c.ID, f.alice.ID); err != nil {
			t.Fatalf("Join() = %v", err)
		}
		if err := f.s.Leave(ctx, c.ID, f.alice.ID); err != nil {
			t.Fatalf("Leave() = %v", err)
		}
	}
	f.note = f.addNote(t, f.greek.ID, "internal: customer wants a discount")
	return f
}

// addNote stores a private note as the notes of issue 13 are stored, a
// message of channel "note" by an agent: the index takes every message
// row, whatever its channel.
func (f *searchFixture) addNote(t *testing.T, convID int64, text string) int64 {
	t.Helper()
	db := f.s.Gorm()
	var seq int64
	if err := db.Raw(`UPDATE conversations SET seq = seq + 1, last_activity_at = ? WHERE id = ? RETURNING seq`, time.Now().UTC(), convID).Scan(&seq).Error; err != nil {
		t.Fatalf("bump seq: %v", err)
	}
	var id int64
	if err := db.Raw(`INSERT INTO messages (conversation_id, seq, author, agent_id, channel, text, html, state, created_at)
		VALUES (?, ?, 'agent', ?, 'note', ?, '', 'sent', ?) RETURNING id`, convID, seq, f.alice.ID, text, time.Now().UTC()).Scan(&id).Error; err != nil {
		t.Fatalf("insert note: %v", err)
	}
	return id
}

// search returns the ids of the conversations a search finds, in order,
// with the message id each matched (0: the contact), following every
// page of size limit.
func search(t *testing.T, s *inbox.Store, q, column string, limit int) []string {
	t.Helper()
	var out []string
	cursor := ""
	for range 20 {
		page, err := s.ListConversations(ctx, inbox.ListQuery{Search: q, Column: column, AgentID: 1, Cursor: cursor, Limit: limit})
		if err != nil {
			t.Fatalf("search %q: %v", q, err)
		}
		for _, it := range page.Items {
			m := int64(0)
			if it.Match != nil {
				m = it.Match.MessageID
				if strings.TrimSpace(it.Match.Text) == "" {
					t.Errorf("search %q: match without a snippet: %+v", q, it.Match)
				}
			}
			out = append(out, fmt.Sprintf("%d/%d", it.ID, m))
		}
		if page.NextCursor == "" {
			return out
		}
		cursor = page.NextCursor
	}
	t.Fatalf("search %q: more than 20 pages", q)
	return nil
}

// Search finds conversations by contact name and email address and by
// message text (notes included), every word in one place, the last word
// as a prefix, without case, in any script; in the order of the list,
// paged; the same whether it walks the conversations or asks the index.
func TestSearch(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newSearchFixture(t, url)
		hit := func(c inbox.Conversation, msg int64) string { return fmt.Sprintf("%d/%d", c.ID, msg) }
		last := func(c inbox.Conversation) int64 {
			page, err := f.s.Messages(ctx, c.ID, inbox.MessageQuery{})
			if err != nil || len(page.Messages) == 0 {
				t.Fatalf("Messages(%d) = %v", c.ID, err)
			}
			return page.Messages[len(page.Messages)-1].ID
		}
		first := func(c inbox.Conversation) int64 {
			page, _ := f.s.Messages(ctx, c.ID, inbox.MessageQuery{})
			return page.Messages[0].ID
		}
		tests := []struct {
			q, column string
			want      []string
		}{
			{"müller", "", []string{hit(f.tokyo, 0)}},
			{"MÜLLER", "", []string{hit(f.tokyo, 0)}},
			{"Mül", "", []string{hit(f.tokyo, 0)}},
			{"Muller", "", nil}, // accents count
			{"jürgen müller", "", []string{hit(f.tokyo, 0)}},
			{"prin", "", []string{hit(f.printing, first(f.printing)), hit(f.printer, first(f.printer))}},
			{"PRINTER", "", []string{hit(f.printer, first(f.printer))}},
			{"print ", "", nil}, // a finished word is whole
			{"printer broken", "", []string{hit(f.printer, first(f.printer))}},
			{"broken refund", "", nil}, // two messages
			{"refund", "", []string{hit(f.printer, f.refund)}},
			{"prin", inbox.ColumnOpen, []string{hit(f.printer, first(f.printer))}},
			{"prin", inbox.ColumnClosed, []string{hit(f.printing, first(f.printing))}},
			{"prin", inbox.ColumnUnassigned, []string{hit(f.printer, first(f.printer))}},
			{"prin", inbox.ColumnMine, nil},
			{"東京", "", []string{hit(f.tokyo, last(f.tokyo))}},
			{"北京", "", []string{hit(f.tokyo, last(f.tokyo))}},
			{"新宿", "", nil}, // the middle of a word
			{"田中", "", []string{hit(f.printing, 0)}},
			{"σωκράτης", "", []string{hit(f.greek, 0)}},
			{"example", "", []string{hit(f.tokyo, 0), hit(f.printer, 0)}},
			{"anna.smith@example.com", "", []string{hit(f.printer, 0)}},
			{"discount", "", []string{hit(f.greek, f.note)}},
			{"zzz", "", nil},
		}
		for _, mode := range []struct {
			name    string
			first   int
			dense   float64
			indexed bool
		}{{"default", 0, 0, false}, {"walk", 1_000_000, 0, false}, {"walk in chunks", 1, 0, false},
			{"indexed walk", 1_000_000, 0, true}, {"indexed walk in chunks", 1, 0, true}, {"index", 1, 2, false}} {
			f.s.SetSearchWalk(mode.first, mode.dense, mode.indexed)
			for _, tc := range tests {
				for _, limit := range []int{1, 50} {
					if got := search(t, f.s, tc.q, tc.column, limit); !slices.Equal(got, tc.want) {
						t.Errorf("%s: search %q in %q (limit %d) = %v, want %v", mode.name, tc.q, tc.column, limit, got, tc.want)
					}
				}
			}
		}
		f.s.SetSearchWalk(0, 0, false)

		page, err := f.s.ListConversations(ctx, inbox.ListQuery{Search: "refund", AgentID: f.alice.ID})
		if err != nil || len(page.Items) != 1 || page.Items[0].Match.Text != "Refund please" || page.Items[0].Contact.Name != "Anna Smith" ||
			page.Items[0].LastMessage == nil || page.Items[0].LastMessage.ID != f.refund {
			t.Fatalf("search refund = %+v, %v", page, err)
		}

		for _, q := range []string{"", "  ", "!?!", strings.Repeat("a ", 9), strings.Repeat("x", 257)} {
			_, err := f.s.ListConversations(ctx, inbox.ListQuery{Search: q, Column: "", AgentID: 1})
			if q == "" {
				if err != nil {
					t.Errorf("ListConversations without a search = %v", err)
				}
				continue
			}
			wantInvalid(t, fmt.Sprintf("search %q", q), err, "q")
		}
	})
}

// A deleted conversation and an erased contact leave the index with
// their rows: nothing of theirs is found, whichever way search goes.
func TestSearchForgetsDeleted(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newSearchFixture(t, url)
		if err := f.s.DeleteConversation(ctx, f.printer.ID); err != nil {
			t.Fatalf("DeleteConversation() = %v", err)
		}
		if err := f.s.EraseContact(ctx, f.juergen.ID); err != nil {
			t.Fatalf("EraseContact() = %v", err)
		}
		for _, mode := range [][2]float64{{1_000_000, 0}, {1, 2}} {
			f.s.SetSearchWalk(int(mode[0]), mode[1], false)
			for _, q := range []string{"printer", "refund", "anna", "müller", "東京"} {
				if got := search(t, f.s, q, "", 50); len(got) != 0 {
					t.Errorf("search %q after delete and erase = %v", q, got)
				}
			}
			if got := search(t, f.s, "printing", "", 50); len(got) != 1 {
				t.Errorf("search printing = %v, the others' conversations are still there", got)
			}
		}
		if f.s.Dialect() == "sqlite" {
			// The index itself forgot them (a stale row would only be
			// filtered out by the join with conversations).
			for _, q := range []string{`messages_fts MATCH '"printer"'`, `messages_fts MATCH '"東京"*'`, `contacts_fts MATCH '"müller"'`} {
				var n int64
				table, _, _ := strings.Cut(q, " ")
				if err := f.s.Gorm().Raw(`SELECT count(*) FROM ` + table + ` WHERE ` + q).Scan(&n).Error; err != nil || n != 0 {
					t.Errorf("%s: %d rows, %v; want none", q, n, err)
				}
			}
		}
	})
}

// 0011_search indexes what an older database holds: a message and a
// contact stored before it are found after the upgrade, by the index.
func TestUpgradeIndexesForSearch(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		ids := inbox.MigrationIDs()
		before := ids[slices.Index(ids, "0011_search")-1]
		old, err := inbox.OpenBare(url)
		if err != nil {
			t.Fatalf("OpenBare() = %v", err)
		}
		if err := old.MigrateTo(before); err != nil {
			t.Fatalf("MigrateTo(%s) = %v", before, err)
		}
		db := old.Gorm()
		now := time.Now().UTC()
		for _, q := range []string{
			`INSERT INTO contacts (id, name, email, phone, online, created_at) VALUES (1, 'Zoë Ångström', 'zoe@example.org', '', false, ?)`,
			`INSERT INTO conversations (id, contact_id, channel, status, subject, seq, token, has_email, last_activity_at, created_at)
				VALUES (1, 1, 'chat', 'open', '', 1, 'tok', false, ?, ?)`,
			`INSERT INTO messages (id, conversation_id, seq, author, channel, text, html, state, created_at)
				VALUES (1, 1, 1, 'contact', 'chat', 'Where is my parcel', '', 'sent', ?)`,
		} {
			args := []any{now}
			if strings.Count(q, "?") == 2 {
				args = append(args, now)
			}
			if err := db.Exec(q, args...).Error; err != nil {
				t.Fatalf("fill %s schema: %v", before, err)
			}
		}
		old.CloseBare()

		s := inboxtest.Open(t, url, nil)
		s.SetSearchWalk(1, 2, false) // the index, not the walk
		for q, want := range map[string][]string{"parcel": {"1/1"}, "ångström": {"1/0"}, "zoe": {"1/0"}} {
			if got := search(t, s, q, "", 50); !slices.Equal(got, want) {
				t.Errorf("search %q after the upgrade = %v, want %v", q, got, want)
			}
		}
	})
}

// Many conversations, few matching: the walk gives up after its first
// chunk and the index finds the rest, in order, across pages.
func TestSearchWalkThenIndex(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newFixture(t, url)
		f.s.SetSearchWalk(4, 0.5, false)
		var want []string
		for i := range 30 {
			c := f.start(t)
			text := "nothing to see"
			if i%10 == 3 {
				text = "the needle is here"
			}
			m := f.say(t, c.ID, inbox.AuthorContact, text)
			if i%10 == 3 {
				want = append([]string{fmt.Sprintf("%d/%d", c.ID, m.ID)}, want...)
			}
		}
		for _, limit := range []int{1, 2, 50} {
			if got := search(t, f.s, "needle", "", limit); !slices.Equal(got, want) {
				t.Errorf("search needle (limit %d) = %v, want %v", limit, got, want)
			}
		}
	})
}

// ColumnCounts counts from the participants alone, on the rule that
// agents take part only in open conversations: through joins, leaves,
// returns and an agent's removal, each count equals the length of its
// column, and no closed conversation has a participant.
func TestParticipantsOnlyInOpen(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newFixture(t, url)
		join := func(c inbox.Conversation, a inbox.Agent) {
			t.Helper()
			noErr(t, "Join()", f.s.Join(ctx, c.ID, a.ID))
		}
		leave := func(c inbox.Conversation, a inbox.Agent) {
			t.Helper()
			noErr(t, "Leave()", f.s.Leave(ctx, c.ID, a.ID))
		}
		check := func(when string) {
			t.Helper()
			for _, a := range []inbox.Agent{f.alice, f.bob} {
				counts, err := f.s.ColumnCounts(ctx, a.ID)
				noErr(t, "ColumnCounts()", err)
				for _, col := range []string{inbox.ColumnUnassigned, inbox.ColumnMine, inbox.ColumnOpen, inbox.ColumnClosed} {
					n := 0
					for cursor := ""; ; {
						page, err := f.s.ListConversations(ctx, inbox.ListQuery{Column: col, AgentID: a.ID, Cursor: cursor, Limit: 2})
						noErr(t, "ListConversations()", err)
						n += len(page.Items)
						if cursor = page.NextCursor; cursor == "" {
							break
						}
					}
					if counts[col] != int64(n) {
						t.Errorf("%s: %s's count of %s = %d, the column has %d", when, a.Name, col, counts[col], n)
					}
				}
			}
			var stray int64
			noErr(t, "count", f.s.Gorm().Raw(`SELECT count(*) FROM participants p JOIN conversations c ON c.id = p.conversation_id
				WHERE p.left_at IS NULL AND c.status <> 'open'`).Scan(&stray).Error)
			if stray != 0 {
				t.Errorf("%s: %d participants in closed conversations", when, stray)
			}
		}
		convs := make([]inbox.Conversation, 6)
		for i := range convs {
			convs[i] = f.start(t)
			f.say(t, convs[i].ID, inbox.AuthorContact, "hello")
		}
		check("new")
		join(convs[1], f.alice)
		join(convs[2], f.alice)
		join(convs[2], f.bob)
		leave(convs[2], f.bob)
		join(convs[3], f.bob)
		leave(convs[3], f.bob) // closes it
		join(convs[4], f.alice)
		leave(convs[4], f.alice)
		check("after joins and leaves")
		f.say(t, convs[4].ID, inbox.AuthorContact, "me again") // back in Unassigned
		join(convs[3], f.alice)                                // reopens it
		join(convs[5], f.bob)
		join(convs[1], f.bob)
		check("after a return and a join of a closed one")
		noErr(t, "RemoveAgent()", f.s.RemoveAgent(ctx, f.bob.ID))
		check("after bob's removal")
	})
}
