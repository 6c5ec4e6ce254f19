package jsonscan

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkSkip is the skip alone over a whole 16 KiB body, over its
// strings alone, and a loop that only looks at each byte: the floors
// under Parse's cost. The last, natively and as wasm, is what the sandbox
// costs per byte whatever the code (BENCHMARKS.md: about 5x).
func BenchmarkSkip(b *testing.B) {
	body, err := os.ReadFile(filepath.Join("..", "..", "..", "fixtures", "payloads", "large-16k.json"))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("value", func(b *testing.B) {
		for range b.N {
			s := New("body", body)
			if err := s.Skip(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("bytes", func(b *testing.B) {
		for range b.N {
			n := 0
			for _, c := range body {
				if c >= 0x20 && c != '"' && c != '\\' {
					n++
				}
			}
			if n == 0 {
				b.Fatal("no plain byte")
			}
		}
	})
	b.Run("strings", func(b *testing.B) {
		for range b.N {
			for i := 0; i < len(body); i++ {
				if body[i] == '"' {
					end, _, what := skipString(body, i)
					if what != "" {
						b.Fatal(what)
					}
					i = end - 1
				}
			}
		}
	})
}
