//go:build (!amd64 && !arm64) || purego

package smartcar

// useBlockScanner is false where no assembly computes the masks: the
// byte-at-a-time scanner is faster than the block scanner with portable
// masks.
const useBlockScanner = false

func structuralMasks(src []byte, dst []uint64) { structuralMasksGeneric(src, dst) }
