package wire

import "unicode/utf8"

// ValidText reports whether raw JSON is valid UTF-8 and escapes no
// lone UTF-16 surrogate (\ud800 alone): the decoder would silently turn
// both into U+FFFD, storing something the sender never wrote.
func ValidText(raw []byte) bool {
	if !utf8.Valid(raw) {
		return false
	}
	for i := 0; i+5 < len(raw); i++ {
		if raw[i] != '\\' {
			continue
		}
		if raw[i+1] != 'u' {
			i++ // an escaped character: skip it (it may be a backslash)
			continue
		}
		r, ok := hex4(raw[i+2 : i+6])
		switch {
		case !ok:
			return false
		case r >= 0xd800 && r < 0xdc00: // a high surrogate must be followed by a low one
			if i+11 >= len(raw) || raw[i+6] != '\\' || raw[i+7] != 'u' {
				return false
			}
			lo, ok := hex4(raw[i+8 : i+12])
			if !ok || lo < 0xdc00 || lo > 0xdfff {
				return false
			}
			i += 11
		case r >= 0xdc00 && r <= 0xdfff:
			return false
		default:
			i += 5
		}
	}
	return true
}

func hex4(b []byte) (rune, bool) {
	var r rune
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}
