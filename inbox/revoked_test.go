package inbox_test

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// Ending credentials announces it after the commit, and only when
// something was ended: a refused removal or an unknown contact announces
// nothing. The database state is the record: the session or token is
// gone, the removed agent cannot log in.
func TestRevokedNotices(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		s := inboxtest.Open(t, url, nil)
		noErr := func(t *testing.T, what string, err error) {
			t.Helper()
			if err != nil {
				t.Fatalf("%s() = %v", what, err)
			}
		}
		var mu sync.Mutex
		var got []inbox.Revoked
		stop := s.Hub().OnRevoked(func(r inbox.Revoked) {
			mu.Lock()
			got = append(got, r)
			mu.Unlock()
		})
		defer stop()
		take := func() []inbox.Revoked {
			mu.Lock()
			defer mu.Unlock()
			out := got
			got = nil
			return out
		}
		admin, err := s.CreateAgent(ctx, inbox.NewAgent{Email: "admin@example.com", Name: "Ada", Role: inbox.RoleAdmin, Password: "correct horse battery"})
		noErr(t, "CreateAgent", err)
		bob, err := s.CreateAgent(ctx, inbox.NewAgent{Email: "bob@example.com", Name: "Bob", Password: "correct horse battery"})
		noErr(t, "CreateAgent", err)
		token, _, err := s.CreateSession(ctx, bob.ID, time.Hour)
		noErr(t, "CreateSession", err)

		noErr(t, "DeleteSession", s.DeleteSession(ctx, token))
		if r := take(); !slices.Equal(r, []inbox.Revoked{{SessionID: inbox.SessionID(token)}}) {
			t.Fatalf("after a logout: %+v", r)
		}
		if err := s.RemoveAgent(ctx, admin.ID); !errors.Is(err, inbox.ErrConflict) {
			t.Fatalf("RemoveAgent(last admin) = %v, want ErrConflict", err)
		}
		if err := s.EraseContact(ctx, 999); !errors.Is(err, inbox.ErrNotFound) {
			t.Fatalf("EraseContact(unknown) = %v", err)
		}
		if r := take(); len(r) != 0 {
			t.Fatalf("notices of refused changes: %+v", r)
		}
		token, _, err = s.CreateSession(ctx, bob.ID, time.Hour)
		noErr(t, "CreateSession", err)
		noErr(t, "RemoveAgent", s.RemoveAgent(ctx, bob.ID))
		if r := take(); !slices.Equal(r, []inbox.Revoked{{AgentID: bob.ID}}) {
			t.Fatalf("after a removal: %+v", r)
		}
		if _, _, err := s.SessionAgent(ctx, token); !errors.Is(err, inbox.ErrUnauthenticated) {
			t.Fatalf("SessionAgent() of a removed agent = %v", err)
		}
		if _, err := s.Authenticate(ctx, bob.Email, "correct horse battery"); !errors.Is(err, inbox.ErrUnauthenticated) {
			t.Fatalf("Authenticate() of a removed agent = %v", err)
		}
		if err := s.RemoveAgent(ctx, bob.ID); !errors.Is(err, inbox.ErrNotFound) {
			t.Fatalf("RemoveAgent() twice = %v, want ErrNotFound", err)
		}

		v := startVisitor(t, s, "Vera")
		noErr(t, "EraseContact", s.EraseContact(ctx, v.Contact.ID))
		if r := take(); !slices.Equal(r, []inbox.Revoked{{ContactID: v.Contact.ID}}) {
			t.Fatalf("after an erase: %+v", r)
		}
		if _, err := s.VisitorSessionExpiry(ctx, inbox.SessionID(v.Token)); !errors.Is(err, inbox.ErrUnauthenticated) {
			t.Fatalf("VisitorSessionExpiry() of an erased contact's token = %v", err)
		}
		w := startVisitor(t, s, "Walt")
		noErr(t, "RevokeVisitorToken", s.RevokeVisitorToken(ctx, w.Token))
		if r := take(); !slices.Equal(r, []inbox.Revoked{{VisitorSessionID: inbox.SessionID(w.Token)}}) {
			t.Fatalf("after a token's revocation: %+v", r)
		}
	})
}
