package logging

import "unicode/utf8"

// MaxClipBytes is the most a string passed through Clip adds to a JSON log
// line, escapes included, before ClipMark.
const MaxClipBytes = 128

// ClipMark ends a string that Clip shortened.
const ClipMark = "…(cut)"

// Clip returns s unchanged when it is short, or else its first characters
// followed by ClipMark, cut on a UTF-8 boundary. Use it for every string a
// request supplies (ids, user agents, parse errors), so that a forged request
// cannot write an arbitrarily long log line.
//
// The limit counts bytes as the JSON handler writes them: a quote or a
// backslash costs 2, a control character, an invalid byte or U+2028/U+2029
// costs 6 (\u00XX, \ufffd, \u2028), so the clipped value takes at most
// MaxClipBytes+len(ClipMark) bytes of a line, however it is made.
func Clip(s string) string {
	if n, cut := clipIndex(s, MaxClipBytes); cut {
		return s[:n] + ClipMark
	}
	return s
}

// clipIndex returns the length of the longest prefix of s, ending on a
// character boundary, whose JSON-escaped form fits in budget bytes, and
// whether it is shorter than s.
func clipIndex(s string, budget int) (int, bool) {
	cost := 0
	for i := 0; i < len(s); {
		c := s[i]
		size, w := 1, 1
		switch {
		case c >= 0x20 && c < 0x7f && c != '"' && c != '\\':
		case c == '"' || c == '\\':
			w = 2
		case c < utf8.RuneSelf:
			w = 6 // \u00XX; \n, \r and \t take 2, counted as 6 for simplicity
		default:
			var r rune
			r, size = utf8.DecodeRuneInString(s[i:])
			switch {
			case r == utf8.RuneError && size == 1, r == '\u2028', r == '\u2029':
				w = 6
			default:
				w = size
			}
		}
		if cost+w > budget {
			return i, true
		}
		cost += w
		i += size
	}
	return len(s), false
}
