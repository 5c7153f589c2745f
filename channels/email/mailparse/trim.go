package mailparse

import (
	"strings"
	"unicode/utf8"
)

// Quoted history and signatures (issue 12 item 3): the thread shows what
// a reply adds (Text, HTML), the whole mail is one field away (FullText,
// FullHTML). What is trimmed from plain text:
//
//   - history below the reply (top-posting): from an attribution line
//     ("On Mon, 4 Mar 2024, Support <support@example.com> wrote:", over
//     up to three lines as Gmail wraps it, in a few languages) or a block
//     of "> " lines that runs to the end, or from Outlook's header block
//     ("From: ... Sent: ... To: ... Subject: ...", localized, after an
//     optional "____" rule) or "-----Original Message-----", to the end;
//   - history above the reply (bottom-posting): an attribution and the
//     "> " block that opens the mail, when no other quoted line follows;
//     replies written between quotes (interleaved) keep their quotes,
//     which are what they answer;
//   - the signature: from a "-- " line (RFC 3676 section 4.3) to the end,
//     and a last line "Sent from my iPhone" and its kin.
//
// Forwarded mail is not history: nothing at or after "---------- Forwarded
// message ---------", "Begin forwarded message:" or an Outlook header
// block whose subject starts with "FW:" is trimmed. When trimming would
// leave nothing, the text is kept whole.

// maxTrimBytes bounds the text TrimQuoted and TrimQuotedHTML work on;
// longer text is returned as it is (a bound on memory: lines cost more
// than their bytes).
const maxTrimBytes = 4 << 20

// TrimQuoted returns the part of a plain-text mail that its sender wrote,
// without quoted history or signature (see above). It returns text
// unchanged when nothing is trimmed or when trimming would leave nothing.
func TrimQuoted(text string) string {
	if len(text) > maxTrimBytes || text == "" {
		return text
	}
	lines := strings.Split(text, "\n")
	hi := bottomCut(lines)
	if s := signatureCut(lines[:hi]); s >= 0 {
		hi = s
	}
	hi = mobileSignatureCut(lines[:hi])
	lo := topCut(lines[:hi])
	if lo == 0 && hi == len(lines) {
		return text
	}
	for lo < hi && isBlank(lines[lo]) {
		lo++
	}
	for hi > lo && isBlank(lines[hi-1]) {
		hi--
	}
	if lo == hi {
		return text
	}
	out := strings.Join(lines[lo:hi], "\n")
	return strings.TrimRight(out, " \t\r")
}

func isBlank(l string) bool { return strings.TrimSpace(l) == "" }

func isQuoted(l string) bool { return strings.HasPrefix(strings.TrimLeft(l, " \t"), ">") }

// bottomCut returns where the history below the reply starts, or
// len(lines).
func bottomCut(lines []string) int {
	// lastUnquoted is the last line that is neither blank nor quoted:
	// a quoted block after it runs to the end.
	lastUnquoted := -1
	for i, l := range lines {
		if !isBlank(l) && !isQuoted(l) {
			lastUnquoted = i
		}
	}
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if isForwardMarker(l) {
			return len(lines)
		}
		if isQuoted(l) {
			if i > lastUnquoted {
				return i
			}
			continue
		}
		if isOriginalMessage(l) {
			return i
		}
		if isRule(l) {
			if j := nextNonBlank(lines, i+1); j < len(lines) {
				switch outlookHeader(lines, j) {
				case headerReply:
					return i
				case headerForward:
					return len(lines)
				}
			}
		}
		switch outlookHeader(lines, i) {
		case headerReply:
			return i
		case headerForward:
			return len(lines)
		}
		if end, onPrefix := attribution(lines, i); end >= 0 {
			next := nextNonBlank(lines, end+1)
			switch {
			case next < len(lines) && isQuoted(lines[next]) && next > lastUnquoted:
				return i // the quoted block after it runs to the end
			case next < len(lines) && isQuoted(lines[next]):
				// quoted, then more text: bottom-posting or interleaved
			case onPrefix && i > 0:
				return i // history pasted without "> " (HTML turned to text)
			}
			i = end
		}
	}
	return len(lines)
}

// topCut returns where the reply starts after an attribution and a quoted
// block that open the mail, or 0. It keeps the quotes of an interleaved
// reply: another quoted line after the first block.
func topCut(lines []string) int {
	i := nextNonBlank(lines, 0)
	if i == len(lines) {
		return 0
	}
	if end, _ := attribution(lines, i); end >= 0 {
		i = nextNonBlank(lines, end+1)
	}
	if i == len(lines) || !isQuoted(lines[i]) {
		return 0
	}
	for i < len(lines) && (isQuoted(lines[i]) || isBlank(lines[i])) {
		i++
	}
	if i == len(lines) {
		return 0 // nothing but quotes
	}
	for _, l := range lines[i:] {
		if isQuoted(l) {
			return 0
		}
	}
	return i
}

// signatureCut returns the line of the last signature delimiter "-- "
// (RFC 3676 section 4.3; "--" too, as editors strip the blank), when at
// most 20 lines follow it, or -1.
func signatureCut(lines []string) int {
	for i := len(lines) - 1; i >= 0 && i >= len(lines)-21; i-- {
		if l := strings.TrimRight(lines[i], " \t\r"); l == "--" {
			return i
		}
	}
	return -1
}

// mobilePrefixes start the one-line signatures of mobile mail apps.
var mobilePrefixes = []string{
	"sent from my ", "sent from outlook", "sent from mail for windows", "sent from yahoo mail",
	"sent from the all-new aol app", "sent from proton mail", "sent from samsung", "sent via ",
	"get outlook for ", "envoyé de mon ", "envoyé depuis ", "von meinem ", "gesendet von ",
	"enviado desde mi ", "enviado do meu ", "inviato da ", "verzonden vanaf mijn ",
	"verstuurd vanaf mijn ", "skickat från min ", "wysłane z mojego ",
}

// mobileSignatureCut drops a last line (blank lines aside) like "Sent
// from my iPhone"; it returns the new end.
func mobileSignatureCut(lines []string) int {
	hi := len(lines)
	for hi > 0 && isBlank(lines[hi-1]) {
		hi--
	}
	if hi == 0 {
		return len(lines)
	}
	l := strings.ToLower(strings.TrimSpace(lines[hi-1]))
	if utf8.RuneCountInString(l) > 80 {
		return len(lines)
	}
	for _, p := range mobilePrefixes {
		if strings.HasPrefix(l, p) {
			return hi - 1
		}
	}
	return len(lines)
}

func nextNonBlank(lines []string, i int) int {
	for i < len(lines) && isBlank(lines[i]) {
		i++
	}
	return i
}

// isForwardMarker reports the first line of a forwarded mail: Gmail's
// "---------- Forwarded message ---------", Thunderbird's "-------- Forwarded
// Message --------", Apple Mail's "Begin forwarded message:", and their
// translations.
func isForwardMarker(l string) bool {
	t := strings.ToLower(strings.Trim(strings.TrimSpace(l), "-_ *"))
	switch {
	case t == "begin forwarded message:", t == "début du message réexpédié :",
		t == "anfang der weitergeleiteten nachricht:", t == "inicio del mensaje reenviado:":
		return true
	case len(t) > 60:
		return false
	}
	for _, w := range []string{"forwarded message", "weitergeleitete nachricht", "message transféré", "mensaje reenviado", "messaggio inoltrato", "doorgestuurd bericht"} {
		if strings.HasPrefix(t, w) && strings.HasPrefix(strings.TrimSpace(l), "---") {
			return true
		}
	}
	return false
}

// isOriginalMessage reports Outlook's "-----Original Message-----" and
// its translations.
func isOriginalMessage(l string) bool {
	t := strings.TrimSpace(l)
	if !strings.HasPrefix(t, "-----") || len(t) > 60 {
		return false
	}
	t = strings.ToLower(strings.Trim(t, "- "))
	switch t {
	case "original message", "ursprüngliche nachricht", "message d'origine", "mensaje original",
		"messaggio originale", "oorspronkelijk bericht", "originalmeddelande", "oryginalna wiadomość",
		"исходное сообщение", "mensagem original":
		return true
	}
	return false
}

// isRule reports Outlook's rule above a quoted header block: a line of
// underscores.
func isRule(l string) bool {
	t := strings.TrimSpace(l)
	return len(t) >= 10 && strings.Trim(t, "_") == ""
}

const (
	headerNone = iota
	headerReply
	headerForward
)

// Labels of Outlook's quoted header block, in the languages seen most.
var (
	fromLabels    = []string{"from", "von", "de", "da", "van", "från", "od", "от", "fra", "lähettäjä"}
	sentLabels    = []string{"sent", "date", "gesendet", "datum", "envoyé", "date d'envoi", "enviado", "fecha", "inviato", "data", "verzonden", "skickat", "wysłano", "отправлено", "sendt", "lähetetty"}
	toLabels      = []string{"to", "an", "à", "a", "para", "aan", "till", "do", "кому", "til", "vastaanottaja", "subject", "betreff", "objet", "asunto", "oggetto", "onderwerp", "ämne", "temat", "тема", "emne", "aihe"}
	subjectLabels = []string{"subject", "betreff", "objet", "asunto", "oggetto", "onderwerp", "ämne", "temat", "тема", "emne", "aihe"}
	fwdPrefixes   = []string{"fw:", "fwd:", "wg:", "tr:", "rv:", "i:", "doorst:", "vs:", "vb:", "pd:"}
)

// outlookHeader reports whether lines[i] starts Outlook's quoted header
// block: a From line with, within the next six lines, a Sent (or Date)
// line and a To (or Subject) line. headerForward when its Subject is a
// forward's.
func outlookHeader(lines []string, i int) int {
	if _, ok := label(lines[i], fromLabels); !ok {
		return headerNone
	}
	sent, to := false, false
	kind := headerReply
	for j := i + 1; j < len(lines) && j <= i+6; j++ {
		if _, ok := label(lines[j], sentLabels); ok {
			sent = true
		}
		if _, ok := label(lines[j], toLabels); ok {
			to = true
		}
		if v, ok := label(lines[j], subjectLabels); ok {
			v = strings.ToLower(v)
			for _, p := range fwdPrefixes {
				if strings.HasPrefix(v, p) {
					kind = headerForward
				}
			}
		}
	}
	if sent && to {
		return kind
	}
	return headerNone
}

// label reports whether l is "Label: value" for one of labels (case
// aside; bold "*From:*" and French " :" too) and returns the value.
func label(l string, labels []string) (string, bool) {
	t := strings.TrimLeft(strings.TrimSpace(l), "*")
	name, value, ok := strings.Cut(t, ":")
	if !ok || len(name) > 30 {
		return "", false
	}
	name = strings.ToLower(strings.TrimSpace(strings.Trim(name, "* \u00a0")))
	for _, lb := range labels {
		if name == lb {
			return strings.TrimSpace(strings.TrimLeft(value, "* ")), true
		}
	}
	return "", false
}

// attributionPrefixes start "On <date>, <name> wrote:" in some languages;
// attributionSuffixes end it.
var (
	attributionPrefixes = []string{"on ", "le ", "am ", "el ", "il ", "op ", "w dniu ", "den ", "em ", "dne ", "в ", "pada "}
	attributionSuffixes = []string{"wrote:", "writes:", "a écrit :", "a écrit:", "schrieb:", "escribió:", "ha scritto:",
		"schreef:", "napisał:", "napisał(a):", "skrev:", "escreveu:", "написал:", "написал(а):", "napsal:", "kirjoitti:", "menulis:"}
	attributionVerbs = []string{" schrieb ", " schreef ", " skrev ", " wrote ", " escribió ", " ha scritto ", " a écrit "}
)

// attribution reports whether an attribution line starts at lines[i]: one
// to three lines (Gmail wraps it) that end with "wrote:" or a
// translation. It returns the index of its last line, or -1, and whether
// it is one beyond doubt, "On <date> ... wrote:", so that history after
// it is history even without "> ".
func attribution(lines []string, i int) (end int, onPrefix bool) {
	first := strings.ToLower(strings.TrimSpace(lines[i]))
	if first == "" || isQuoted(first) {
		return -1, false
	}
	for _, p := range attributionPrefixes {
		if strings.HasPrefix(first, p) {
			onPrefix = true
			break
		}
	}
	joined := ""
	for j := i; j < len(lines) && j < i+3; j++ {
		l := strings.ToLower(strings.TrimSpace(lines[j]))
		if l == "" || (j > i && isQuoted(l)) {
			break
		}
		joined += " " + l
		if len(joined) > 400 {
			break
		}
		for _, s := range attributionSuffixes {
			if strings.HasSuffix(joined, s) {
				return j, onPrefix
			}
		}
		// "Am <date> schrieb <name>:", the verb before the name: a
		// weaker sign, taken only before quoted lines.
		if onPrefix && strings.HasSuffix(joined, ":") {
			for _, v := range attributionVerbs {
				if strings.Contains(joined, v) {
					return j, false
				}
			}
		}
	}
	return -1, false
}

// unflow joins the lines of format=flowed text (RFC 3676 section 4): a
// line ending in a space continues on the next line of the same quote
// depth; a leading space that protects a line ("space-stuffing") goes;
// with delsp the joining space goes too. The signature delimiter "-- "
// is not flowed.
func unflow(s string, delsp bool) string {
	if !strings.Contains(s, " \n") {
		return s
	}
	lines := strings.Split(s, "\n")
	var b strings.Builder
	b.Grow(len(s))
	open := false // the previous line flows into this one
	prevDepth := 0
	for _, l := range lines {
		depth := 0
		for depth < len(l) && l[depth] == '>' {
			depth++
		}
		body := l[depth:]
		body = strings.TrimPrefix(body, " ") // stuffing, or the space after ">"
		if open && depth != prevDepth {
			b.WriteByte('\n') // a flowed line may not change depth
			open = false
		}
		if !open {
			b.WriteString(strings.Repeat(">", depth))
			if depth > 0 && body != "" {
				b.WriteByte(' ')
			}
		}
		flowed := strings.HasSuffix(body, " ") && body != "-- "
		if flowed && delsp {
			body = body[:len(body)-1]
		}
		b.WriteString(body)
		if !flowed {
			b.WriteByte('\n')
		}
		open, prevDepth = flowed, depth
	}
	return strings.TrimSuffix(b.String(), "\n")
}
