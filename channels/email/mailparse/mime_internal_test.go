package mailparse

import (
	"fmt"
	"maps"
	"slices"
	"testing"
)

func TestSplitMultipart(t *testing.T) {
	for _, c := range []struct {
		body   string
		want   []string
		closed bool
	}{
		{"preamble\r\n--b\r\nA\r\n--b\r\nB\r\n--b--\r\nepilogue", []string{"A", "B"}, true},
		{"--b\nA\n--b\nB\n--b--\n", []string{"A", "B"}, true},
		{"--b\r\nA\r\n--b  \r\nB\r\n--b--", []string{"A", "B"}, true},
		// "--bc" is another boundary, "x--b" is not at a line start.
		{"--b\r\nA\r\n--bc\r\nx--b\r\n--b--\r\n", []string{"A\r\n--bc\r\nx--b"}, true},
		{"--b\r\nA\r\n--b\r\nB cut short", []string{"A", "B cut short"}, false},
		{"--b\r\n\r\n--b--", []string{""}, true},
		{"no delimiter at all", nil, false},
	} {
		raw, closed, _ := splitMultipart([]byte(c.body), "b", 100)
		var got []string
		for _, p := range raw {
			got = append(got, string(p))
		}
		if !slices.Equal(got, c.want) || closed != c.closed {
			t.Errorf("splitMultipart(%q) = %q, %t, want %q, %t", c.body, got, closed, c.want, c.closed)
		}
	}
	parts, _, more := splitMultipart([]byte("--b\r\n1\r\n--b\r\n2\r\n--b\r\n3\r\n--b--"), "b", 2)
	if len(parts) != 2 || !more {
		t.Errorf("splitMultipart with max 2 = %d parts, more %t", len(parts), more)
	}
}

func TestDecodeTransfer(t *testing.T) {
	for _, c := range []struct {
		in, enc, want string
		damaged       bool
	}{
		{"SGVsbG8=", "base64", "Hello", false},
		{"SGVs\r\n bG8=", "BASE64", "Hello", false},
		{"SGVsbG8=V29ybGQ=", "base64", "HelloWorld", false},
		{"SGVs!bG8", "base64", "Hello", true},
		{"SGVsbG8gV", "base64", "Hello ", true},
		{"caf=C3=A9 =\r\nsoft =3D ok  \r\nnext", "quoted-printable", "café soft = ok\nnext", false},
		{"a=ZZb = c=", "quoted-printable", "a=ZZb = c", false},
		{"as is", "8bit", "as is", false},
	} {
		got, damaged, known := decodeTransfer([]byte(c.in), c.enc)
		if string(got) != c.want || damaged != c.damaged || !known {
			t.Errorf("decodeTransfer(%q, %q) = %q, %t, %t, want %q, %t", c.in, c.enc, got, damaged, known, c.want, c.damaged)
		}
	}
	if _, _, known := decodeTransfer([]byte("x"), "x-uuencode"); known {
		t.Errorf("x-uuencode is known")
	}
	if n := base64Size([]byte("SGVs\r\nbG8gV29y\r\nbGQ=")); n != 11 {
		t.Errorf("base64Size = %d, want 11", n)
	}
}

func TestToUTF8(t *testing.T) {
	for _, c := range []struct {
		in, cs, want string
		known        bool
	}{
		{"plain", "", "plain", true},
		{"caf\xc3\xa9", "us-ascii", "café", true},
		{"caf\xe9", "", "café", true},
		// Latin-1 as mail means it: windows-1252's quotes and euro.
		{"\x93quoted\x94 \x80", "ISO-8859-1", "\u201cquoted\u201d €", true},
		{"\xf0\xd2\xc9\xd7\xc5\xd4", "koi8-r", "Привет", true},
		{"bad \xff utf-8", "utf-8", "bad \uFFFD utf-8", true},
		{"x\xe9", "x-nobody-knows", "x\uFFFD", false},
	} {
		got, known := toUTF8([]byte(c.in), c.cs)
		if got != c.want || known != c.known {
			t.Errorf("toUTF8(%q, %q) = %q, %t, want %q, %t", c.in, c.cs, got, known, c.want, c.known)
		}
	}
}

func TestMediaType(t *testing.T) {
	for _, c := range []struct {
		in, typ string
		params  map[string]string
	}{
		{`Text/Plain; Charset="UTF-8"; format=flowed`, "text/plain", map[string]string{"charset": "UTF-8", "format": "flowed"}},
		{`attachment; filename="a \"b\".txt"`, "attachment", map[string]string{"filename": `a "b".txt`}},
		{`attachment; filename*=UTF-8''%E2%82%AC.pdf; filename="fallback.pdf"`, "attachment", map[string]string{"filename": "€.pdf"}},
		{`attachment; filename*0*=iso-8859-1'fr'R%E9sum%E9; filename*1=" final.txt"`, "attachment", map[string]string{"filename": "Résumé final.txt"}},
		{`attachment; filename*1="b.txt"; filename*0="a"`, "attachment", map[string]string{"filename": "ab.txt"}},
		{`attachment; filename="=?utf-8?B?w5xiZXJzaWNodC54bHN4?="`, "attachment", map[string]string{"filename": "Übersicht.xlsx"}},
		{`text/plain; charset=utf-8; charset=latin1; junk; =x; name=a b`, "text/plain", map[string]string{"charset": "utf-8", "name": "a b"}},
		{"attachment; filename=\"caf\xe9.txt\"", "attachment", map[string]string{"filename": "café.txt"}},
		{``, "", map[string]string{}},
	} {
		typ, params := mediaType(c.in, newWordDecoder())
		if typ != c.typ || !maps.Equal(params, c.params) {
			t.Errorf("mediaType(%q) = %q, %q, want %q, %q", c.in, typ, params, c.typ, c.params)
		}
	}
}

func TestMsgIDs(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"<a@b>", []string{"a@b"}},
		{"<a@b> <c@d>\r\n <e@f>", []string{"a@b", "c@d", "e@f"}},
		{"<a@b> (Joe's message of Monday)", []string{"a@b"}},
		{"a@b", []string{"a@b"}},
		{"a@b c@d", []string{"a@b", "c@d"}},
		{"<a\r\n @b>", []string{"a@b"}},
		{"<junk<a@b>", []string{"a@b"}},
		{"<>  <a@b", []string{"a@b"}},
		{"", nil},
	} {
		if got := msgIDs(c.in); !slices.Equal(got, c.want) {
			t.Errorf("msgIDs(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestSplitHeader(t *testing.T) {
	for _, c := range []struct {
		in, hdr, body string
		fields        int
	}{
		{"A: 1\r\nB: 2\r\n folded\r\n\r\nbody", "A: 1\r\nB: 2\r\n folded\r\n", "body", 2},
		{"A: 1\nB : 2\n\nbody", "A: 1\nB : 2\n", "body", 2},
		// No empty line: the body starts at the first line that is no field.
		{"A: 1\r\nHello there\r\n", "A: 1\r\n", "Hello there\r\n", 1},
		{"From someone@example.com Mon Jan  1 00:00:00 2024\nA: 1\n\nbody", "A: 1\n", "body", 1},
		{"A: 1", "A: 1", "", 1},
		{" folded first\r\n\r\n", "", " folded first\r\n\r\n", 0},
	} {
		hdr, body, fields, err := splitHeader([]byte(c.in), 1000)
		if err != nil || string(hdr) != c.hdr || string(body) != c.body || fields != c.fields {
			t.Errorf("splitHeader(%q) = %q, %q, %d, %v", c.in, hdr, body, fields, err)
		}
	}
}

func TestSize(t *testing.T) {
	for n, want := range map[int64]string{80: "80 bytes", 2048: "2 KB", 12 << 20: "12 MB", 31*(1<<20) + (1 << 19): "31.5 MB"} {
		if got := size(n); got != want {
			t.Errorf("size(%d) = %q, want %q", n, got, want)
		}
	}
	if got := fmt.Sprint(clip("aé", 2)); got != "a" {
		t.Errorf("clip cut a rune: %q", got)
	}
}
