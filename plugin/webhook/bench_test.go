package webhook

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkParse reads the fixtures' large bodies. Run it natively and
// under a wasm runtime (GOOS=wasip1, see the Makefile's bench-guest) to
// see the guest's share of a delivery without the host around it.
func BenchmarkParse(b *testing.B) {
	for _, size := range []string{"4k", "16k", "64k"} {
		body, err := os.ReadFile(filepath.Join("..", "..", "fixtures", "payloads", "large-"+size+".json"))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(size, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for range b.N {
				if _, err := Parse(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkInspect(b *testing.B) {
	body, err := os.ReadFile(filepath.Join("..", "..", "fixtures", "payloads", "large-16k.json"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for range b.N {
		Inspect(body)
	}
}

// BenchmarkSkip is the skip alone over a whole 16 KiB body, over its
// strings alone, and a loop that only looks at each byte: the floors
// under Parse's cost. The last, natively and as wasm, is what the sandbox
// costs per byte whatever the code (BENCHMARKS.md: about 5x).
func BenchmarkSkip(b *testing.B) {
	body, err := os.ReadFile(filepath.Join("..", "..", "fixtures", "payloads", "large-16k.json"))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("value", func(b *testing.B) {
		for range b.N {
			s := &scanner{b: body}
			if err := s.skip(); err != nil {
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
