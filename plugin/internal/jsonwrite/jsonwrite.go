// Package jsonwrite appends JSON exactly as encoding/json writes it, for
// the plugin's requests to its host: encoding/json's reflection costs ten
// to twenty times as much inside the wasm sandbox as natively, and a
// delivery sends seven requests and a log line (BENCHMARKS.md, issue 13).
// Its tests hold every function to encoding/json's bytes.
package jsonwrite

import (
	"encoding/json"
	"slices"
	"strconv"
	"unicode/utf8"
)

const hex = "0123456789abcdef"

// String appends s as a JSON string, escaped as encoding/json escapes it
// (HTML characters, U+2028 and U+2029 included; invalid UTF-8 as U+FFFD).
func String(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case c == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case c == '\u2028' || c == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[c&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(append(dst, s[start:]...), '"')
}

// Member appends a member's name and colon, after a comma unless it is the
// object's first.
func Member(dst []byte, name string) []byte {
	if dst[len(dst)-1] != '{' {
		dst = append(dst, ',')
	}
	return append(String(dst, name), ':')
}

// Bool appends true or false.
func Bool(dst []byte, v bool) []byte { return strconv.AppendBool(dst, v) }

// Int appends an integer.
func Int(dst []byte, v int64) []byte { return strconv.AppendInt(dst, v, 10) }

// StringPtr appends a string, or null for nil.
func StringPtr(dst []byte, v *string) []byte {
	if v == nil {
		return append(dst, "null"...)
	}
	return String(dst, *v)
}

// Strings appends an array of strings, or null for a nil slice.
func Strings(dst []byte, v []string) []byte {
	return Slice(dst, v, String)
}

// Slice appends an array of v's elements with elem, or null for a nil
// slice, as encoding/json does.
func Slice[T any](dst []byte, v []T, elem func([]byte, T) []byte) []byte {
	if v == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '[')
	for i, e := range v {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = elem(dst, e)
	}
	return append(dst, ']')
}

// Map appends an object of m's members in the order of their names, as
// encoding/json does, or null for a nil map.
func Map[T any](dst []byte, m map[string]T, value func([]byte, T) ([]byte, error)) ([]byte, error) {
	if m == nil {
		return append(dst, "null"...), nil
	}
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	slices.Sort(names)
	dst = append(dst, '{')
	for _, name := range names {
		var err error
		if dst, err = value(Member(dst, name), m[name]); err != nil {
			return dst, err
		}
	}
	return append(dst, '}'), nil
}

// Any appends v: strings, booleans, integers and lists of strings itself,
// anything else through encoding/json (a log line's fields are seldom more).
func Any(dst []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case string:
		return String(dst, v), nil
	case bool:
		return Bool(dst, v), nil
	case int:
		return Int(dst, int64(v)), nil
	case int64:
		return Int(dst, v), nil
	case []string:
		return Strings(dst, v), nil
	}
	b, err := json.Marshal(v)
	return append(dst, b...), err
}
