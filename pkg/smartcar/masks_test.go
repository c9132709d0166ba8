package smartcar

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestStructuralMasks checks the platform's masks against the portable ones
// with every byte value at every position of a block.
func TestStructuralMasks(t *testing.T) {
	const blocks = 4
	src := make([]byte, blocks*blockSize)
	for v := range 256 {
		for i := range src {
			src[i] = byte(v + i) // every value at every position, across blocks
		}
		got := make([]uint64, blocks*masksPerBlock)
		want := make([]uint64, blocks*masksPerBlock)
		structuralMasks(src, got)
		structuralMasksGeneric(src, want)
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("offset %d, mask %d of block %d = %064b, want %064b", v, i%masksPerBlock, i/masksPerBlock, got[i], want[i])
			}
		}
	}
	// A partial trailing block is ignored.
	dst := []uint64{7, 7, 7}
	structuralMasks(make([]byte, blockSize-1), dst)
	if dst[0] != 7 {
		t.Error("structuralMasks wrote a mask for a partial block")
	}
}

// TestEscapedBits compares the carry-propagating escape masks with a
// byte-by-byte reading, over runs of backslashes that cross blocks. Only
// the bytes after a run count: within one, escapedBits says nothing.
func TestEscapedBits(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		text := make([]byte, 4*blockSize)
		for i := range text {
			if rng.IntN(3) > 0 {
				text[i] = '\\'
			} else {
				text[i] = 'a'
			}
		}
		want := make([]bool, len(text))
		for i, run := 0, 0; i < len(text); i++ {
			want[i] = run%2 == 1
			if text[i] == '\\' && !want[i] {
				run++
			} else {
				run = 0
			}
		}
		var carry uint64
		for k := 0; k < len(text); k += blockSize {
			var backslash uint64
			for j, c := range text[k : k+blockSize] {
				if c == '\\' {
					backslash |= 1 << j
				}
			}
			got := escapedBits(backslash, &carry)
			for j := range blockSize {
				if text[k+j] != '\\' && (got>>j&1 == 1) != want[k+j] {
					t.Fatalf("byte %d of %q: escaped = %v, want %v", k+j, text, !want[k+j], want[k+j])
				}
			}
		}
	}
}

func TestPrefixXOR(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 1000 {
		x := rng.Uint64()
		got := prefixXOR(x)
		var parity uint64
		for j := range blockSize {
			parity ^= x >> j & 1
			if got>>j&1 != parity {
				t.Fatalf("prefixXOR(%064b) bit %d = %d, want %d", x, j, got>>j&1, parity)
			}
		}
	}
}

// FuzzSkipContainer checks that the block scanner and the byte scanner end
// a valid container at the same byte, and that neither panics on anything.
func FuzzSkipContainer(f *testing.F) {
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"a":[1,{"b":"]}"}],"c":"\\"}  `))
	f.Add([]byte(`[` + strings.Repeat(`"\\\"{[",`, 20) + `{"x":"` + strings.Repeat(`\\`, 33) + `"}]`))
	f.Add([]byte(`{"s":"` + strings.Repeat("a", 61) + `\"]"}`))
	f.Add([]byte(strings.Repeat("[", 70) + strings.Repeat("]", 70)))
	f.Add([]byte(`[` + strings.Repeat(" ", 62) + `"}`))
	f.Add([]byte(`{"unterminated":"` + strings.Repeat("x", 100)))
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) == 0 || (body[0] != '{' && body[0] != '[') {
			return
		}
		blocks, bytewise := scanner{b: body}, scanner{b: body}
		errBlocks, errBytes := blocks.skipContainerBlocks(), bytewise.skipContainerBytes()
		var v any
		if json.Unmarshal(body, &v) != nil {
			return // invalid: any error (or none) is fine
		}
		if errBlocks != nil || errBytes != nil {
			t.Fatalf("valid container rejected: blocks %v, bytes %v", errBlocks, errBytes)
		}
		if end := len(strings.TrimRight(string(body), " \t\r\n")); blocks.i != end || bytewise.i != end {
			t.Fatalf("container ends at %d; block scanner says %d, byte scanner %d", end, blocks.i, bytewise.i)
		}
	})
}
