package inbox

import (
	"database/sql/driver"
	"slices"
	"strings"
	"unicode/utf8"

	"modernc.org/sqlite"
)

// The words of search (search.go). A search's text is split into words
// here, on both databases, by the rule of the SQLite index's tokenizer
// (FTS5's unicode61 with diacritics kept, ftsTokenizer): a word is a run
// of code points that are not separators (space, punctuation, symbols:
// ftsSeparators), folded to lower case as SQLite folds them (ftsFolds).
// On SQLite the same rule also decides, in Go (matchPattern, the SQL
// function microchat_match), whether a message matches when search walks
// the conversations instead of asking the index, so that both ways find
// the same messages; the tables in searchtoken_table.go are generated
// from SQLite itself and a test holds them to it.

// ftsTokenizer is the FTS5 tokenizer of the SQLite search index.
const ftsTokenizer = "unicode61 remove_diacritics 0"

// ftsRune is how the tokenizer treats a code point: a separator, a
// diacritic (continues a word, never starts one), or part of a word; and
// what it folds to.
type ftsRune struct {
	sep, cont bool
	fold      rune
}

func inRanges(tab [][2]rune, r rune) bool {
	i, found := slices.BinarySearchFunc(tab, r, func(rg [2]rune, r rune) int {
		switch {
		case rg[1] < r:
			return -1
		case rg[0] > r:
			return 1
		}
		return 0
	})
	return found && i < len(tab)
}

func classify(r rune) ftsRune {
	if r < utf8.RuneSelf {
		switch {
		case 'a' <= r && r <= 'z', '0' <= r && r <= '9':
			return ftsRune{fold: r}
		case 'A' <= r && r <= 'Z':
			return ftsRune{fold: r + 'a' - 'A'}
		}
		return ftsRune{sep: true, fold: r}
	}
	c := ftsRune{sep: inRanges(ftsSeparators, r), cont: inRanges(ftsDiacritics, r), fold: r}
	if i, ok := slices.BinarySearchFunc(ftsFolds, r, func(f [2]rune, r rune) int { return int(f[0] - r) }); ok {
		c.fold = ftsFolds[i][1]
	}
	return c
}

// nextWord returns the byte offsets of the first word of s at or after
// offset i, or start -1 when there is none.
func nextWord(s string, i int) (start, end int) {
	start = -1
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		c := classify(r)
		switch {
		case c.sep:
			if start >= 0 {
				return start, i
			}
		case start < 0 && !c.cont:
			start = i
		}
		i += n
	}
	if start < 0 {
		return -1, -1
	}
	return start, len(s)
}

// searchWords returns the words of s, folded.
func searchWords(s string) []string {
	var words []string
	for start, end := nextWord(s, 0); start >= 0; start, end = nextWord(s, end) {
		words = append(words, foldWord(s[start:end]))
	}
	return words
}

func foldWord(w string) string {
	var b strings.Builder
	for _, r := range w {
		b.WriteRune(classify(r).fold)
	}
	return b.String()
}

// wordIs reports whether the word s[start:end], folded, is word (folded),
// or begins with it when prefix.
func wordIs(s string, start, end int, word string, prefix bool) bool {
	j := 0
	for i := start; i < end; {
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		if j == len(word) {
			return prefix
		}
		w, m := utf8.DecodeRuneInString(word[j:])
		if classify(r).fold != w {
			return false
		}
		j += m
	}
	return j == len(word)
}

// matchPattern reports whether text holds every word of pattern (folded
// words separated by spaces; a final "*" makes the last one a prefix),
// the rule of the index's MATCH.
func matchPattern(text, pattern string) bool {
	prefix := strings.HasSuffix(pattern, "*")
	pattern = strings.TrimSuffix(pattern, "*")
	if pattern == "" {
		return false
	}
	n := strings.Count(pattern, " ") + 1
	if n > 64 {
		return false
	}
	var found uint64
	all := uint64(1)<<n - 1
	for start, end := nextWord(text, 0); start >= 0; start, end = nextWord(text, end) {
		rest := pattern
		for k := 0; k < n; k++ {
			w, tail, _ := strings.Cut(rest, " ")
			rest = tail
			if found&(1<<k) == 0 && wordIs(text, start, end, w, prefix && k == n-1) {
				found |= 1 << k
				if found == all {
					return true
				}
			}
		}
	}
	return false
}

func init() {
	// microchat_match(text, pattern) is matchPattern for SQL: 1 or 0, 0
	// for a NULL text.
	sqlite.MustRegisterFunction("microchat_match", &sqlite.FunctionImpl{
		NArgs:         2,
		Deterministic: true,
		VolatileArgs:  true, // nothing is kept past the call
		Scalar: func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
			text, _ := args[0].(string)
			pattern, _ := args[1].(string)
			if matchPattern(text, pattern) {
				return int64(1), nil
			}
			return int64(0), nil
		},
	})
}
