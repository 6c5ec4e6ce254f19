package webhook

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// scanner reads the few fields group sync needs from a webhook body and
// skips the rest. encoding/json decodes by reflection and scans every byte
// through its state machine, which inside the wasm sandbox cost 1.7 ms for
// a 4 KiB body and 7.3 ms for 16 KiB. Skipping allocates nothing: keys and
// skipped values are looked at where they lie in the body, and only the
// fields kept become strings. The loops keep the position in a local:
// Go's wasm code reloads and stores a field through its pointer on every
// iteration, which tripled the time per byte (BENCHMARKS.md). It is strict:
// anything it accepts is valid JSON (the fuzz target holds it to that).
type scanner struct {
	b     []byte
	i     int
	depth int
	// inObject is skip's stack, a bit a level: set for an object, clear
	// for an array. Kept here so that skip, called for most members of a
	// body, neither allocates nor clears one per call.
	inObject []uint64
}

// maxDepth bounds nesting, as encoding/json does: the skip recurses, and a
// body of a million '[' must end in an error, not in the guest's stack
// outgrowing its memory.
const maxDepth = 10000

var errSyntax = errors.New("webhook body is not valid JSON")

func (s *scanner) fail(what string) error {
	return fmt.Errorf("%w: %s at byte %d", errSyntax, what, s.i)
}

func (s *scanner) ws() {
	b, i := s.b, s.i
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\t' || b[i] == '\r') {
		i++
	}
	s.i = i
}

func (s *scanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// enter and leave bracket a container, bounding the nesting.
func (s *scanner) enter() error {
	if s.depth++; s.depth > maxDepth {
		return s.fail("nested too deep")
	}
	s.i++ // the opening bracket
	return nil
}

// object calls field for each key, which must consume the value. The key
// is the body's own bytes (unescaped into a copy when it has escapes), valid
// only during the call.
func (s *scanner) object(field func(key []byte) error) error {
	if s.peek() != '{' {
		return s.fail("want an object")
	}
	if err := s.enter(); err != nil {
		return err
	}
	err := s.members(field)
	s.depth--
	return err
}

func (s *scanner) members(field func(key []byte) error) error {
	if s.peek() == '}' {
		s.i++
		return nil
	}
	for {
		if s.peek() != '"' {
			return s.fail("want a key")
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
		if s.peek() != ':' {
			return s.fail("want ':'")
		}
		s.i++
		if err := field(raw); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return s.fail("want ',' or '}'")
		}
	}
}

// array calls elem for each element, which must consume it.
func (s *scanner) array(elem func() error) error {
	if s.peek() != '[' {
		return s.fail("want an array")
	}
	if err := s.enter(); err != nil {
		return err
	}
	err := s.elements(elem)
	s.depth--
	return err
}

func (s *scanner) elements(elem func() error) error {
	if s.peek() == ']' {
		s.i++
		return nil
	}
	for {
		if err := elem(); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return s.fail("want ',' or ']'")
		}
	}
}

// null consumes a null, if that is what comes next.
func (s *scanner) null() (bool, error) {
	if s.peek() != 'n' {
		return false, nil
	}
	return true, s.literal("null")
}

func (s *scanner) literal(lit string) error {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return s.fail("bad literal")
	}
	s.i += len(lit)
	return nil
}

// str reads a string, unescaping it.
func (s *scanner) str() (string, error) {
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
func (s *scanner) rawStr() (raw []byte, escaped bool, err error) {
	end, escaped, what := skipString(s.b, s.i)
	if what != "" {
		s.i = end
		return nil, false, s.fail(what)
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
func (s *scanner) unescape(raw []byte) ([]byte, error) {
	quoted := make([]byte, 0, len(raw)+2)
	quoted = append(append(append(quoted, '"'), raw...), '"')
	var v string
	if err := json.Unmarshal(quoted, &v); err != nil {
		return nil, s.fail("bad string")
	}
	return []byte(v), nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// number consumes a number per the JSON grammar and returns its text, the
// body's own bytes.
func (s *scanner) number() ([]byte, error) {
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
		return nil, s.fail("bad number")
	}
	if i < len(b) && b[i] == '.' {
		if end := digits(b, i+1); end > i+1 {
			i = end
		} else {
			s.i = i + 1
			return nil, s.fail("bad fraction")
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
			return nil, s.fail("bad exponent")
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

// skip consumes any value. It is one loop over the value's bytes with its
// nesting in a bit stack, not a recursion through object and array: inside
// the sandbox a Go function call costs more than the bytes it looks at, and
// most of a body is skipped (issue 13: 180 to N µs per 16 KiB).
func (s *scanner) skip() error {
	b, i := s.b, s.i
	depth := 0
	fail := func(at int, what string) error { s.i = at; return s.fail(what) }
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
			if depth++; s.depth+depth > maxDepth {
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
			if _, err := s.number(); err != nil {
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

// stringField reads a string or null into dst.
func (s *scanner) stringField(name string, dst *string) error {
	if isNull, err := s.null(); isNull || err != nil {
		return err
	}
	if s.peek() != '"' {
		return fmt.Errorf("webhook body: %s is not a string", name)
	}
	v, err := s.str()
	*dst = v
	return err
}

// idField reads a string, a number or null: Jira sends ids as strings,
// tools that replay webhooks often as numbers.
func (s *scanner) idField(name string, dst *string) error {
	switch c := s.peek(); {
	case c == '"':
		return s.stringField(name, dst)
	case c == 'n':
		_, err := s.null()
		return err
	case c == '-' || '0' <= c && c <= '9':
		v, err := s.number()
		*dst = string(v)
		return err
	}
	return fmt.Errorf("webhook body: %s: want a string or number id", name)
}

// intField reads an integer, a numeric string, or null.
func (s *scanner) intField(name string, dst *int64) error {
	var text string
	switch c := s.peek(); {
	case c == 'n':
		_, err := s.null()
		return err
	case c == '"':
		v, err := s.str()
		if err != nil {
			return err
		}
		text = v
	case c == '-' || '0' <= c && c <= '9':
		v, err := s.number()
		if err != nil {
			return err
		}
		text = string(v)
	default:
		return fmt.Errorf("webhook body: %s: want an integer timestamp", name)
	}
	v, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return fmt.Errorf("webhook body: %s: want an integer timestamp, got %.20s", name, text)
	}
	*dst = v
	return nil
}
