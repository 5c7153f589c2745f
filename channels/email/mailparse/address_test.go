package mailparse_test

import (
	"errors"
	"testing"

	"github.com/microdeets/microchat/channels/email/mailparse"
)

func TestParseAddress(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"jane@example.com", "jane@example.com"},
		{"Jane Doe <Jane@Example.COM>", "Jane Doe <Jane@example.com>"},
		{`"Doe, Jane" <jane@example.com>`, "Doe, Jane <jane@example.com>"},
		{"Doe, Jane <jane@example.com>", "Doe, Jane <jane@example.com>"},
		{"=?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <jm@example.de>", "Jürgen Müller <jm@example.de>"},
		{"=?iso-8859-1?q?Fran=E7ois?= <f@example.fr>", "François <f@example.fr>"},
		{"jane@example.com (Jane Doe)", "Jane Doe <jane@example.com>"},
		{"Jane Doe jane@example.com", "Jane Doe <jane@example.com>"},
		{"<jane@example.com>", "jane@example.com"},
		{"Jane Doe <jane@example.com", "Jane Doe <jane@example.com>"},
		{`"jane@example.com" <jane@example.com>`, "jane@example.com"},
		{"'jane@example.com'", "jane@example.com"},
		{"mailto:jane@example.com", "jane@example.com"},
		{"Jane <jane@example.com.>", "Jane <jane@example.com>"},
		{"Jane\x1b[31m Doe <jane@example.com>", "Jane[31m Doe <jane@example.com>"},
		{"Jürgen <jürgen@bücher.example>", "Jürgen <jürgen@bücher.example>"},
		{"a@b.example, c@d.example", "a@b.example"},
		{"Team: a@b.example, c@d.example;", "a@b.example"},
		// Without brackets, the word with "@" is the address.
		{"jane doe@example.com", "jane <doe@example.com>"},
	} {
		a, err := mailparse.ParseAddress(c.in)
		if err != nil {
			t.Errorf("ParseAddress(%q) = %v", c.in, err)
			continue
		}
		if got := formatAddr(a); got != c.want {
			t.Errorf("ParseAddress(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	for _, in := range []string{"", "   ", "Jane Doe", "undisclosed-recipients:;", "jane@", "@example.com",
		"<jane@example..com>", "<a@b@>", "<jane@exa mple.com>", "Jane <jane\x00@example.com>"} {
		if a, err := mailparse.ParseAddress(in); !errors.Is(err, mailparse.ErrNoAddress) {
			t.Errorf("ParseAddress(%q) = %+v, %v, want ErrNoAddress", in, a, err)
		}
	}
}

func TestParseAddressList(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"a@b.example, Jane <j@c.example>", []string{"a@b.example", "Jane <j@c.example>"}},
		{"Doe, John <john@x.example>, Roe, Jane <jane@x.example>", []string{"Doe, John <john@x.example>", "Roe, Jane <jane@x.example>"}},
		{"=?UTF-8?Q?M=C3=BCller=2C_Anna?= <anna@x.example>; Peter Pan peter@x.example", []string{"Müller, Anna <anna@x.example>", "Peter Pan <peter@x.example>"}},
		{"undisclosed-recipients:;", nil},
		{"Friends: a@x.example, b@x.example;, c@x.example", []string{"a@x.example", "b@x.example", "c@x.example"}},
		{"a@x.example,, ,b@x.example", []string{"a@x.example", "b@x.example"}},
		{"not an address, a@x.example", []string{"not an address <a@x.example>"}},
	} {
		var got []string
		for _, a := range mailparse.ParseAddressList(c.in) {
			got = append(got, formatAddr(a))
		}
		if !equal(got, c.want) {
			t.Errorf("ParseAddressList(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestPlusToken(t *testing.T) {
	for _, c := range []struct{ addr, mailbox, token string }{
		{"support+c42-abcdefghijklmnop@example.com", "support@example.com", "c42-abcdefghijklmnop"},
		{"Support <SUPPORT+c42-x@Example.COM>", "Example Support <support@example.com>", "c42-x"},
		{"support+a+b@example.com", "support@example.com", "a+b"},
		{"me+support+c7-y@gmail.com", "me+support@gmail.com", "c7-y"},
		{"support@example.com", "support@example.com", ""},
		{"support+@example.com", "support@example.com", ""},
		{"support+c42@other.example", "support@example.com", ""},
		{"supportx+c42@example.com", "support@example.com", ""},
		{"sales+c42@example.com", "support@example.com", ""},
		{"suppxrt+c42@example.com", "support@example.com", ""},
		{"not an address", "support@example.com", ""},
		{"support+c42@example.com", "", ""},
	} {
		token, ok := mailparse.PlusToken(c.addr, c.mailbox)
		if token != c.token || ok != (c.token != "") {
			t.Errorf("PlusToken(%q, %q) = %q, %t, want %q", c.addr, c.mailbox, token, ok, c.token)
		}
	}
}
