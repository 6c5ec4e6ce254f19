package jsonwrite

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzString holds String to encoding/json's bytes for any string, invalid
// UTF-8 included.
func FuzzString(f *testing.F) {
	for _, s := range []string{"", "plain", `"quoted" \ back/slash`, "<a href='x'>&amp;</a>", "\x00\x01\b\f\n\r\t\x1f\x7f",
		"é€😀", "\u2028\u2029", "\xff\xfe", "a\xc3", "\xed\xa0\x80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := String(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("String(%q) = %s, encoding/json %s", s, got, want)
		}
	})
}

func TestAny(t *testing.T) {
	for _, v := range []any{nil, "x<y", true, 12, int64(-7), []string{"a", "b"}, []string(nil), 1.5, map[string]int{"b": 1, "a": 2},
		struct{ A string }{"x"}} {
		want, _ := json.Marshal(v)
		got, err := Any(nil, v)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("Any(%#v) = %s, %v; encoding/json %s", v, got, err, want)
		}
	}
	if _, err := Any(nil, func() {}); err == nil {
		t.Error("Any of a func: no error")
	}
}
