package smartcar

import "math/bits"

// blockSize is the width of the block scanner: one bit per byte in a uint64.
const blockSize = 64

// masksPerBlock is how many uint64 masks structuralMasks writes per block:
// quotes, backslashes and brackets, in that order.
const masksPerBlock = 3

// structuralMasksGeneric is the portable structuralMasks: for each whole
// 64-byte block of src it writes three masks to dst, bit j set when byte j
// of the block is a '"', a '\\', or one of "{}[]".
func structuralMasksGeneric(src []byte, dst []uint64) {
	for k := 0; k+blockSize <= len(src); k += blockSize {
		var quote, backslash, bracket uint64
		for j, c := range src[k : k+blockSize] {
			switch c {
			case '"':
				quote |= 1 << j
			case '\\':
				backslash |= 1 << j
			case '{', '}', '[', ']':
				bracket |= 1 << j
			}
		}
		m := dst[k/blockSize*masksPerBlock:]
		m[0], m[1], m[2] = quote, backslash, bracket
	}
}

// Alternating bits, for the escape computation.
const (
	evenBits uint64 = 0x5555555555555555
	oddBits         = ^evenBits
)

// escapedBits returns the bytes of a block escaped by a backslash: those
// right after a run of backslashes of odd length (bits inside a run mean
// nothing; the caller masks quotes only). carry is 1 when the
// previous block ended inside such a run, and is updated for the next one.
// This is simdjson's carry-propagation method (Langdale and Lemire, "Parsing
// Gigabytes of JSON per Second", 2019): a run's length is odd exactly when
// it starts on an even bit and ends on an odd one, or the reverse.
func escapedBits(backslash uint64, carry *uint64) uint64 {
	starts := backslash &^ (backslash << 1)
	evenStartMask := evenBits ^ *carry
	evenStarts := starts & evenStartMask
	oddStarts := starts &^ evenStartMask
	evenCarries := backslash + evenStarts
	oddCarries, overflow := bits.Add64(backslash, oddStarts, 0)
	oddCarries |= *carry
	*carry = overflow
	evenStartOddEnd := evenCarries &^ backslash & oddBits
	oddStartEvenEnd := oddCarries &^ backslash & evenBits
	return evenStartOddEnd | oddStartEvenEnd
}

// prefixXOR sets bit j to the parity of bits 0..j of x: given the unescaped
// quotes of a block, the bytes inside strings, opening quote included.
func prefixXOR(x uint64) uint64 {
	x ^= x << 1
	x ^= x << 2
	x ^= x << 4
	x ^= x << 8
	x ^= x << 16
	x ^= x << 32
	return x
}
