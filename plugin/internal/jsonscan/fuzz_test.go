package jsonscan

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"
)

// FuzzSkip holds Skip to encoding/json: it accepts a text exactly when
// json.Valid does, and a string it reads is the string encoding/json
// decodes (for valid UTF-8: Str returns invalid bytes as they are, where
// encoding/json replaces them).
func FuzzSkip(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("..", "..", "..", "fixtures", "payloads", "*.json"))
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{`{}`, `[]`, `""`, `"\ud800"`, `"\ud83d\ude00"`, `"\u00e9\"\\\/\b\f\n\r\t"`, `-0.5e-7`, `[[[]]]`,
		"\"\xff\xfe\"", `{"a":1,"a":2}`, ` `, `nul`, `[1,]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := New("input", b)
		err := s.Skip()
		if err == nil {
			err = s.End()
		}
		if valid := json.Valid(b); valid != (err == nil) {
			t.Fatalf("json.Valid %v, Skip %v: %q", valid, err, b)
		}
		var want string
		if json.Unmarshal(b, &want) == nil && utf8.Valid(b) {
			got, err := New("input", b).Str()
			if err != nil || got != want {
				t.Fatalf("Str = %q, %v; encoding/json %q: %q", got, err, want, b)
			}
		}
	})
}
