//go:build !purego

#include "textflag.h"

// MOVEMASK turns four 16-byte comparison results (bytes 0x00 or 0xff) into a
// 64-bit mask in r, bit i for byte i: each byte keeps its bit weight
// (V25: 1, 2, 4 ... 128), then three rounds of pairwise addition sum each
// group of 8 bytes into one. It clobbers a, b, c and d.
#define MOVEMASK(a, b, c, d, lane, r) \
	VAND V25.B16, a, a; \
	VAND V25.B16, b, b; \
	VAND V25.B16, c, c; \
	VAND V25.B16, d, d; \
	VADDP b, a, a; \
	VADDP d, c, c; \
	VADDP c, a, a; \
	VADDP a, a, a; \
	VMOV lane, r

// func structuralMasksAsm(src *byte, n int, dst *uint64)
TEXT ·structuralMasksAsm(SB), NOSPLIT, $0-24
	MOVD src+0(FP), R0
	MOVD n+8(FP), R1
	MOVD dst+16(FP), R2
	MOVD $0x22, R3
	VMOV R3, V20.B16 // '"'
	MOVD $0x5c, R3
	VMOV R3, V21.B16 // '\\'
	MOVD $0x20, R3
	VMOV R3, V22.B16
	MOVD $0x7b, R3
	VMOV R3, V23.B16 // '{'
	MOVD $0x7d, R3
	VMOV R3, V24.B16 // '}'
	MOVD $0x8040201008040201, R3
	VMOV R3, V25.D2
	CBZ R1, done

loop:
	VLD1.P 64(R0), [V0.B16, V1.B16, V2.B16, V3.B16]

	VCMEQ V20.B16, V0.B16, V4.B16
	VCMEQ V20.B16, V1.B16, V5.B16
	VCMEQ V20.B16, V2.B16, V6.B16
	VCMEQ V20.B16, V3.B16, V7.B16
	MOVEMASK(V4.B16, V5.B16, V6.B16, V7.B16, V4.D[0], R4)

	VCMEQ V21.B16, V0.B16, V4.B16
	VCMEQ V21.B16, V1.B16, V5.B16
	VCMEQ V21.B16, V2.B16, V6.B16
	VCMEQ V21.B16, V3.B16, V7.B16
	MOVEMASK(V4.B16, V5.B16, V6.B16, V7.B16, V4.D[0], R5)

	// A bracket is a byte whose (b | 0x20) is '{' or '}'.
	VORR V22.B16, V0.B16, V0.B16
	VORR V22.B16, V1.B16, V1.B16
	VORR V22.B16, V2.B16, V2.B16
	VORR V22.B16, V3.B16, V3.B16
	VCMEQ V23.B16, V0.B16, V4.B16
	VCMEQ V24.B16, V0.B16, V0.B16
	VORR V0.B16, V4.B16, V4.B16
	VCMEQ V23.B16, V1.B16, V5.B16
	VCMEQ V24.B16, V1.B16, V1.B16
	VORR V1.B16, V5.B16, V5.B16
	VCMEQ V23.B16, V2.B16, V6.B16
	VCMEQ V24.B16, V2.B16, V2.B16
	VORR V2.B16, V6.B16, V6.B16
	VCMEQ V23.B16, V3.B16, V7.B16
	VCMEQ V24.B16, V3.B16, V3.B16
	VORR V3.B16, V7.B16, V7.B16
	MOVEMASK(V4.B16, V5.B16, V6.B16, V7.B16, V4.D[0], R6)

	MOVD R4, 0(R2)
	MOVD R5, 8(R2)
	MOVD R6, 16(R2)
	ADD $24, R2
	SUB $1, R1
	CBNZ R1, loop

done:
	RET
