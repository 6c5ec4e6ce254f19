// Package jsonscan reads JSON in place: a strict scanner that hands a
// caller each member of an object and each element of an array where they
// lie in the input, and skips what the caller does not want without
// allocating. The plugin decodes with it what it reads on every call (a
// webhook body, every host function's answer): encoding/json decodes by
// reflection, which inside the wasm sandbox costs ten times what it costs
// natively (BENCHMARKS.md, issue 13). It is strict: anything it accepts is
// valid JSON.
package jsonscan

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Scanner reads one JSON text. Skipping allocates nothing: keys and
// skipped values are looked at where they lie in the input, and only what
// a caller keeps becomes a string. The loops keep the position in a local:
// Go's wasm code reloads and stores a field through its pointer on every
// iteration.
type Scanner struct {
	// what names the input in errors ("webhook body").
	what  string
	b     []byte
	i     int
	depth int
	// inObject is skip's stack, a bit a level: set for an object, clear
	// for an array. Kept here so that skip, called for most members of a
	// body, neither allocates nor clears one per call.
	inObject []uint64
}

// New returns a scanner of b, which it names what in its errors.
func New(what string, b []byte) *Scanner { return &Scanner{what: what, b: b} }

// MaxDepth bounds nesting, as encoding/json does: Object and Array recurse
// through their callers, and an input of a million '[' must end in an
// error, not in the guest's stack outgrowing its memory.
const MaxDepth = 10000

// ErrSyntax is wrapped by every error for input that is not JSON.
var ErrSyntax = errors.New("not valid JSON")

// Fail returns an error for input that is not JSON, at the current place.
func (s *Scanner) Fail(what string) error {
	return fmt.Errorf("%s is %w: %s at byte %d", s.what, ErrSyntax, what, s.i)
}

// Errorf returns an error for valid JSON that is not what the caller
// wants (a member of the wrong type), naming the input.
func (s *Scanner) Errorf(format string, args ...any) error {
	return fmt.Errorf(s.what+": "+format, args...)
}

// End checks that nothing but whitespace follows the value read.
func (s *Scanner) End() error {
	if s.ws(); s.i != len(s.b) {
		return s.Fail("data after the value")
	}
	return nil
}

func (s *Scanner) ws() {
	b, i := s.b, s.i
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\t' || b[i] == '\r') {
		i++
	}
	s.i = i
}

// More reports whether anything but whitespace is left.
func (s *Scanner) More() bool {
	s.ws()
	return s.i < len(s.b)
}

// Peek returns the next byte that is not whitespace, 0 at the end.
func (s *Scanner) Peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// enter and leave bracket a container, bounding the nesting.
func (s *Scanner) enter() error {
	if s.depth++; s.depth > MaxDepth {
		return s.Fail("nested too deep")
	}
	s.i++ // the opening bracket
	return nil
}

// Object calls field for each key, which must consume the value. The key
// is the body's own bytes (unescaped into a copy when it has escapes), valid
// only during the call.
func (s *Scanner) Object(field func(key []byte) error) error {
	if s.Peek() != '{' {
		return s.Fail("want an object")
	}
	if err := s.enter(); err != nil {
		return err
	}
	err := s.members(field)
	s.depth--
	return err
}

func (s *Scanner) members(field func(key []byte) error) error {
	if s.Peek() == '}' {
		s.i++
		return nil
	}
	for {
		if s.Peek() != '"' {
			return s.Fail("want a key")
		}
		raw, escaped, err := s.rawStr()
		if err != nil {
			return err
		}
		if escaped {
			raw, err = s.unescape(raw)
			if err != nil {
				return err
			}
		}
		if s.Peek() != ':' {
			return s.Fail("want ':'")
		}
		s.i++
		if err := field(raw); err != nil {
			return err
		}
		switch s.Peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return s.Fail("want ',' or '}'")
		}
	}
}

// Array calls elem for each element, which must consume it.
func (s *Scanner) Array(elem func() error) error {
	if s.Peek() != '[' {
		return s.Fail("want an array")
	}
	if err := s.enter(); err != nil {
		return err
	}
	err := s.elements(elem)
	s.depth--
	return err
}

func (s *Scanner) elements(elem func() error) error {
	if s.Peek() == ']' {
		s.i++
		return nil
	}
	for {
		if err := elem(); err != nil {
			return err
		}
		switch s.Peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return s.Fail("want ',' or ']'")
		}
	}
}

// Null consumes a null, if that is what comes next.
func (s *Scanner) Null() (bool, error) {
	if s.Peek() != 'n' {
		return false, nil
	}
	return true, s.literal("null")
}

func (s *Scanner) literal(lit string) error {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return s.Fail("bad literal")
	}
	s.i += len(lit)
	return nil
}

// Str reads a string, unescaping it. Bytes that are not UTF-8 come back as
// they are (encoding/json would replace them): whoever stores text checks
// it, as the host does.
func (s *Scanner) Str() (string, error) {
	if s.Peek() != '"' {
		return "", s.Fail("want a string")
	}
	raw, escaped, err := s.rawStr()
	if err != nil || !escaped {
		return string(raw), err
	}
	v, err := s.unescape(raw)
	return string(v), err
}

// rawStr consumes a string and returns the bytes between its quotes as
// they are in the body, and whether they hold escapes (checked, not yet
// unescaped).
func (s *Scanner) rawStr() (raw []byte, escaped bool, err error) {
	end, escaped, what := skipString(s.b, s.i)
	if what != "" {
		s.i = end
		return nil, false, s.Fail(what)
	}
	raw, s.i = s.b[s.i+1:end-1], end
	return raw, escaped, nil
}

// Masks for skipString: a one in every byte, and every byte's top bit.
const (
	ones = 0x0101010101010101
	tops = 0x8080808080808080
)

// escapeLen checks the escape at the start of b and returns its length, or
// what is wrong with it.
func escapeLen(b []byte) (int, string) {
	if len(b) < 2 {
		return 0, "unterminated escape"
	}
	switch b[1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2, ""
	case 'u':
		if len(b) < 6 {
			return 0, "short \\u escape"
		}
		for _, h := range b[2:6] {
			if !isHex(h) {
				return 0, "bad \\u escape"
			}
		}
		return 6, ""
	}
	return 0, "bad escape"
}

// unescape decodes a string's raw bytes, already checked by rawStr. Rare
// in Jira payloads, so encoding/json does it.
func (s *Scanner) unescape(raw []byte) ([]byte, error) {
	quoted := make([]byte, 0, len(raw)+2)
	quoted = append(append(append(quoted, '"'), raw...), '"')
	var v string
	if err := json.Unmarshal(quoted, &v); err != nil {
		return nil, s.Fail("bad string")
	}
	return []byte(v), nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// Number consumes a number per the JSON grammar and returns its text, the
// body's own bytes.
func (s *Scanner) Number() ([]byte, error) {
	b, i := s.b, s.i
	start := i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		i = digits(b, i)
	default:
		s.i = i
		return nil, s.Fail("bad number")
	}
	if i < len(b) && b[i] == '.' {
		if end := digits(b, i+1); end > i+1 {
			i = end
		} else {
			s.i = i + 1
			return nil, s.Fail("bad fraction")
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if end := digits(b, i); end > i {
			i = end
		} else {
			s.i = i
			return nil, s.Fail("bad exponent")
		}
	}
	s.i = i
	return b[start:i], nil
}

// digits returns the end of the run of digits starting at i.
func digits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}

// Skip consumes any value. It is one loop over the value's bytes with its
// nesting in a bit stack, not a recursion through object and array: inside
// the sandbox a Go function call costs more than the bytes it looks at, and
// most of a body is skipped (issue 13: 180 to N µs per 16 KiB).
func (s *Scanner) Skip() error {
	b, i := s.b, s.i
	depth := 0
	fail := func(at int, what string) error { s.i = at; return s.Fail(what) }
	for {
		// A value starts here.
		i = skipSpace(b, i)
		if i == len(b) {
			return fail(i, "want a value")
		}
		switch c := b[i]; {
		case c == '"':
			end, _, what := skipString(b, i)
			if what != "" {
				return fail(end, what)
			}
			i = end
		case c == '{' || c == '[':
			if depth++; s.depth+depth > MaxDepth {
				return fail(i, "nested too deep")
			}
			word, bit := depth/64, uint64(1)<<(depth%64)
			if word == len(s.inObject) {
				s.inObject = append(s.inObject, 0)
			}
			if s.inObject[word] &^= bit; c == '{' {
				s.inObject[word] |= bit
			}
			i = skipSpace(b, i+1)
			if i < len(b) && b[i] == c+2 { // '{'+2 is '}', '['+2 is ']'
				i++
				depth--
				break
			}
			if c == '{' {
				var what string
				if i, what = skipKey(b, i); what != "" {
					return fail(i, what)
				}
			}
			continue
		case c == 't' || c == 'f' || c == 'n':
			lit := "null"
			if c == 't' {
				lit = "true"
			} else if c == 'f' {
				lit = "false"
			}
			if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
				return fail(i, "bad literal")
			}
			i += len(lit)
		case c == '-' || '0' <= c && c <= '9':
			s.i = i
			if _, err := s.Number(); err != nil {
				return err
			}
			i = s.i
		default:
			return fail(i, "want a value")
		}
		// A value ended: what follows it in its container.
		for depth > 0 {
			i = skipSpace(b, i)
			if i == len(b) {
				return fail(i, "unterminated container")
			}
			object := s.inObject[depth/64]&(uint64(1)<<(depth%64)) != 0
			close := byte(']')
			if object {
				close = '}'
			}
			if b[i] == close {
				i++
				depth--
				continue
			}
			if b[i] != ',' {
				if object {
					return fail(i, "want ',' or '}'")
				}
				return fail(i, "want ',' or ']'")
			}
			i++
			if object {
				var what string
				if i, what = skipKey(b, skipSpace(b, i)); what != "" {
					return fail(i, what)
				}
			}
			break
		}
		if depth == 0 {
			s.i = i
			return nil
		}
	}
}

// skipSpace returns the first index from i that is not JSON whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\t' || b[i] == '\r') {
		i++
	}
	return i
}

// skipKey consumes an object's key and its colon from i, and returns where
// its value starts, or what is wrong.
func skipKey(b []byte, i int) (int, string) {
	if i == len(b) || b[i] != '"' {
		return i, "want a key"
	}
	i, _, what := skipString(b, i)
	if what != "" {
		return i, what
	}
	if i = skipSpace(b, i); i == len(b) || b[i] != ':' {
		return i, "want ':'"
	}
	return i + 1, ""
}

// skipString returns the index after the string starting at i and
// whether it holds escapes, or where it goes wrong and what is wrong.
//
// Its plain runs (no quote, backslash or control character) are tested
// eight bytes a step, with the classic "has a byte less than n" and "has a
// zero byte" tricks on one word: in the sandbox a byte loop costs about
// five times what it costs natively, and this took a run of 100 bytes from
// 263 to 74 ns. It is one function, its loops inline, because a call
// inside the sandbox costs about as much as the bytes of a short string.
func skipString(b []byte, i int) (end int, escaped bool, what string) {
	for i++; ; {
		for ; i+8 <= len(b); i += 8 {
			w := binary.LittleEndian.Uint64(b[i:])
			// A byte's top bit survives only if the byte is below 0x80 and
			// is below 0x20, or is '"' or '\\' (x^c is then zero); a borrow
			// into the next byte needs such a byte below it.
			if ((w-ones*0x20)|((w^(ones*'"'))-ones)|((w^(ones*'\\'))-ones))&^w&tops != 0 {
				break
			}
		}
		for i < len(b) && b[i] >= 0x20 && b[i] != '"' && b[i] != '\\' {
			i++
		}
		if i == len(b) {
			return i, false, "unterminated string"
		}
		switch b[i] {
		case '"':
			return i + 1, escaped, ""
		case '\\':
			n, what := escapeLen(b[i:])
			if what != "" {
				return i, false, what
			}
			escaped = true
			i += n
		default:
			return i, false, "control character in string"
		}
	}
}

// String reads a string into dst; null leaves dst as it is, as
// encoding/json does.
func (s *Scanner) String(dst *string) error {
	switch s.Peek() {
	case 'n':
		return s.literal("null")
	case '"':
		v, err := s.Str()
		*dst = v
		return err
	}
	return s.mismatch("a string")
}

// StringPtr reads a string or null (nil) into dst.
func (s *Scanner) StringPtr(dst **string) error {
	if isNull, err := s.Null(); isNull || err != nil {
		*dst = nil
		return err
	}
	v := new(string)
	*dst = v
	return s.String(v)
}

// Bool reads true or false into dst; null leaves it.
func (s *Scanner) Bool(dst *bool) error {
	switch s.Peek() {
	case 'n':
		return s.literal("null")
	case 't':
		*dst = true
		return s.literal("true")
	case 'f':
		*dst = false
		return s.literal("false")
	}
	return s.mismatch("true or false")
}

// Int reads an integer into dst; null leaves it. A fraction or an
// exponent is refused, as encoding/json refuses them for an int.
func (s *Scanner) Int(dst *int) error {
	switch c := s.Peek(); {
	case c == 'n':
		return s.literal("null")
	case c == '-' || '0' <= c && c <= '9':
		at := s.i
		text, err := s.Number()
		if err != nil {
			return err
		}
		v, err := strconv.Atoi(string(text))
		if err != nil {
			s.i = at
			return s.mismatch("an integer")
		}
		*dst = v
		return nil
	}
	return s.mismatch("an integer")
}

// Strings reads an array of strings into dst, null as nil and [] as an
// empty slice, as encoding/json does.
func (s *Scanner) Strings(dst *[]string) error {
	return Slice(s, dst, (*Scanner).String)
}

// Slice reads an array into dst, each element with elem; null is nil and
// [] an empty slice, as encoding/json decodes them.
func Slice[T any](s *Scanner, dst *[]T, elem func(*Scanner, *T) error) error {
	if isNull, err := s.Null(); isNull || err != nil {
		*dst = nil
		return err
	}
	if s.Peek() != '[' {
		return s.mismatch("an array")
	}
	out := []T{}
	err := s.Array(func() error {
		var v T
		err := elem(s, &v)
		out = append(out, v)
		return err
	})
	*dst = out
	return err
}

// Ptr reads an object (or null, nil) into a new *T with fill.
func Ptr[T any](s *Scanner, dst **T, fill func(*Scanner, *T) error) error {
	if isNull, err := s.Null(); isNull || err != nil {
		*dst = nil
		return err
	}
	v := new(T)
	*dst = v
	return fill(s, v)
}

// mismatch is the error for a value of the wrong type, at its place.
func (s *Scanner) mismatch(want string) error {
	return s.Errorf("want %s at byte %d", want, s.i)
}

// Member reads one member of a T that it knows, and reports whether it
// knew key. The key is the input's own bytes, valid during the call (a
// switch on string(key) does not allocate).
type Member[T any] func(s *Scanner, key []byte, v *T) (bool, error)

// Fields makes a reader of a T from its members: an object, members that
// member knows read by it, the rest skipped; null leaves v as it is, as
// encoding/json does.
func Fields[T any](member Member[T]) func(s *Scanner, v *T) error {
	return func(s *Scanner, v *T) error {
		if isNull, err := s.Null(); isNull || err != nil {
			return err
		}
		if s.Peek() != '{' {
			return s.mismatch("an object")
		}
		return s.Object(func(key []byte) error {
			if known, err := member(s, key, v); known || err != nil {
				return err
			}
			return s.Skip()
		})
	}
}

// Decode reads b, one JSON value and nothing after it, into v with read;
// null leaves v as it is, as encoding/json does. what names b in errors.
func Decode[T any](what string, b []byte, v *T, read func(s *Scanner, v *T) error) error {
	s := New(what, b)
	if isNull, err := s.Null(); err != nil || !isNull {
		if err == nil {
			err = read(s, v)
		}
		if err != nil {
			return err
		}
	}
	return s.End()
}

// StringMap reads an object of strings into dst, null as nil, as
// encoding/json does (a member whose value is null maps to "").
func (s *Scanner) StringMap(dst *map[string]string) error {
	if isNull, err := s.Null(); isNull || err != nil {
		*dst = nil
		return err
	}
	if s.Peek() != '{' {
		return s.mismatch("an object")
	}
	m := map[string]string{}
	*dst = m
	return s.Object(func(key []byte) error {
		var v string
		err := s.String(&v)
		m[string(key)] = v
		return err
	})
}
