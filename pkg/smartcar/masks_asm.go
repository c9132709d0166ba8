//go:build (amd64 || arm64) && !purego

package smartcar

// useBlockScanner selects the block scanner for skipping containers: its
// masks come from SIMD instructions that every CPU of the architecture has
// (SSE2 on amd64, NEON on arm64).
const useBlockScanner = true

// structuralMasks is structuralMasksGeneric in assembly.
func structuralMasks(src []byte, dst []uint64) {
	n := len(src) / blockSize
	if len(dst) < n*masksPerBlock {
		panic("smartcar: mask buffer too small")
	}
	if n > 0 {
		structuralMasksAsm(&src[0], n, &dst[0])
	}
}

// structuralMasksAsm writes the masks of the n blocks at src to dst.
//
//go:noescape
func structuralMasksAsm(src *byte, n int, dst *uint64)
