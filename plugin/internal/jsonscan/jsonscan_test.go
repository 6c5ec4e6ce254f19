package jsonscan

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// TestSkipStringStops puts each byte that ends a string's plain run, and
// some that do not, at every place of a string longer than two words, so
// that the eight-byte test and the byte loop after it both meet each one.
func TestSkipStringStops(t *testing.T) {
	for _, c := range []struct {
		b    byte
		what string // "" for a byte that does not end the run
	}{
		{'"', "end"}, {'\\', "bad escape"}, {0x00, "control character in string"}, {0x01, "control character in string"},
		{0x1f, "control character in string"}, {0x20, ""}, {'!', ""}, {'#', ""}, {'[', ""}, {']', ""}, {0x7f, ""},
		{0x80, ""}, {0xa2, ""}, {0xdc, ""}, {0xff, ""},
	} {
		for at := range 20 {
			body := []byte(`"` + strings.Repeat("a", 21) + `"`)
			body[1+at] = c.b
			end, _, what := skipString(body, 0)
			switch c.what {
			case "":
				if end != len(body) || what != "" {
					t.Errorf("byte %#x at %d: end %d %q, want the whole string", c.b, at, end, what)
				}
			case "end":
				if end != 2+at || what != "" {
					t.Errorf("quote at %d: end %d %q, want %d", at, end, what, 2+at)
				}
			default:
				if end != 1+at || what != c.what {
					t.Errorf("byte %#x at %d: end %d %q, want %d %q", c.b, at, end, what, 1+at, c.what)
				}
			}
		}
	}
}

// TestSkipAgreesWithValid holds Skip, which validates as it goes, to
// encoding/json on values it does not decode.
func TestSkipAgreesWithValid(t *testing.T) {
	for _, v := range []string{
		`1`, `-0.5e+3`, `0`, `"x"`, `true`, `false`, `null`, `[]`, `{}`, `[[],{}]`, `{"a":{"b":[1,{"c":null}]}}`,
		` [ 1 , 2 ] `, `{ "a" : [ ] , "b" : { } }`, `"\u00e9\n\"\\"`, `"a very long string that runs past two words"`,
		`01`, `1.`, `-`, `1e`, `[1,]`, `[,1]`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{1:2}`, `{"a" 1}`, `[1 2]`, `tru`, `nul`,
		`"\x"`, `"\u12"`, "\"a\x00\"", `"unterminated`, `[`, `{`, `{"a":[}`, `[{]`, `]`, `}`,
	} {
		body := `{"skipped":` + v + `}`
		s := New("test", []byte(body))
		err := s.Skip()
		if err == nil {
			err = s.End()
		}
		if valid := json.Valid([]byte(body)); valid != (err == nil) {
			t.Errorf("%s: json.Valid %v, Parse error %v", body, valid, err)
		}
	}
}

// TestNestingBounded: input nested deeper than encoding/json allows is
// refused with a clear error, not by the guest running out of stack,
// whether the caller or Skip goes down the levels.
func TestNestingBounded(t *testing.T) {
	var nest func(s *Scanner) error
	nest = func(s *Scanner) error {
		if s.Peek() == '[' {
			return s.Array(func() error { return nest(s) })
		}
		return s.Skip()
	}
	for _, c := range []struct {
		name string
		read func(s *Scanner) error
	}{{"skip", (*Scanner).Skip}, {"arrays", nest}} {
		for _, depth := range []int{MaxDepth, MaxDepth + 1} {
			s := New("test", []byte(strings.Repeat("[", depth)+strings.Repeat("]", depth)))
			err := c.read(s)
			if depth <= MaxDepth && err != nil {
				t.Errorf("%s, %d levels: %v", c.name, depth, err)
			}
			if depth > MaxDepth && (!errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), "nested too deep")) {
				t.Errorf("%s, %d levels: %v, want nested too deep", c.name, depth, err)
			}
		}
	}
}
