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
