package webhook

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

// TestSkipAgreesWithValid holds the skip, which validates as it goes, to
// encoding/json on values it does not decode.
func TestSkipAgreesWithValid(t *testing.T) {
	for _, v := range []string{
		`1`, `-0.5e+3`, `0`, `"x"`, `true`, `false`, `null`, `[]`, `{}`, `[[],{}]`, `{"a":{"b":[1,{"c":null}]}}`,
		` [ 1 , 2 ] `, `{ "a" : [ ] , "b" : { } }`, `"\u00e9\n\"\\"`, `"a very long string that runs past two words"`,
		`01`, `1.`, `-`, `1e`, `[1,]`, `[,1]`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{1:2}`, `{"a" 1}`, `[1 2]`, `tru`, `nul`,
		`"\x"`, `"\u12"`, "\"a\x00\"", `"unterminated`, `[`, `{`, `{"a":[}`, `[{]`, `]`, `}`,
	} {
		body := `{"skipped":` + v + `}`
		_, err := Parse([]byte(body))
		if valid := json.Valid([]byte(body)); valid != (err == nil) {
			t.Errorf("%s: json.Valid %v, Parse error %v", body, valid, err)
		}
	}
}

// TestNestingBounded: a body nested deeper than encoding/json allows is
// refused with a clear error, not by the guest running out of stack.
func TestNestingBounded(t *testing.T) {
	deep := `{"skipped":` + strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth) + `}`
	_, err := Parse([]byte(deep))
	if !errors.Is(err, errSyntax) || !strings.Contains(err.Error(), "nested too deep") {
		t.Fatalf("Parse = %v, want nested too deep", err)
	}
	ok := `{"skipped":` + strings.Repeat("[", maxDepth-1) + strings.Repeat("]", maxDepth-1) + `}`
	if _, err := Parse([]byte(ok)); err != nil {
		t.Fatalf("%d levels: %v", maxDepth, err)
	}
}
