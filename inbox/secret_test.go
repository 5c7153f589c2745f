package inbox_test

import (
	"strings"
	"testing"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// TestConversationToken checks that a token names its conversation, that
// an altered or guessed one is refused, and that a second Store on the
// same database (a restart, another node) signs alike.
func TestConversationToken(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		s := inboxtest.Open(t, url, nil)
		tok, err := s.ConversationToken(ctx, 42)
		if err != nil || !strings.HasPrefix(tok, "c42-") {
			t.Fatalf("ConversationToken(42) = %q, %v", tok, err)
		}
		if id, ok, err := s.ParseConversationToken(ctx, strings.ToUpper(tok)); err != nil || !ok || id != 42 {
			t.Fatalf("ParseConversationToken(%q) = %d, %v, %v; want 42", tok, id, ok, err)
		}
		other, _ := s.ConversationToken(ctx, 43)
		sig := tok[strings.IndexByte(tok, '-'):]
		flipped := []byte(tok)
		flipped[len(flipped)-1] ^= 1
		for _, bad := range []string{"c43" + sig, string(flipped), "c042" + sig, "c42-", "c42", "42" + sig, other + "x", "", "c-1" + sig} {
			if id, ok, err := s.ParseConversationToken(ctx, bad); err != nil || ok {
				t.Errorf("ParseConversationToken(%q) = %d, %v, %v; want refused", bad, id, ok, err)
			}
		}
		s2, err := inbox.Open(ctx, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s2.Close()
		if id, ok, err := s2.ParseConversationToken(ctx, tok); err != nil || !ok || id != 42 {
			t.Fatalf("another Store: ParseConversationToken(%q) = %d, %v, %v; want 42", tok, id, ok, err)
		}
	})
}
