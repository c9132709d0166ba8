//go:build !purego

#include "textflag.h"

// MASK16 compares the 16 bytes at off(SI) with the broadcast constants and
// ORs the three 16-bit results, shifted left by shift, into R8 (quotes), R9
// (backslashes) and R10 (brackets). A byte is a bracket when (b | 0x20) is
// '{' or '}': that maps '[' to '{' and ']' to '}' and nothing else to either.
#define MASK16(off, shift) \
	MOVOU off(SI), X0; \
	MOVO X0, X1; \
	PCMPEQB X8, X1; \
	PMOVMSKB X1, AX; \
	SHLQ $shift, AX; \
	ORQ AX, R8; \
	MOVO X0, X1; \
	PCMPEQB X9, X1; \
	PMOVMSKB X1, AX; \
	SHLQ $shift, AX; \
	ORQ AX, R9; \
	POR X10, X0; \
	MOVO X0, X1; \
	PCMPEQB X11, X0; \
	PCMPEQB X12, X1; \
	POR X1, X0; \
	PMOVMSKB X0, AX; \
	SHLQ $shift, AX; \
	ORQ AX, R10

#define BROADCAST(c, x) \
	MOVQ c, AX; \
	MOVQ AX, x; \
	PUNPCKLQDQ x, x

// func structuralMasksAsm(src *byte, n int, dst *uint64)
TEXT ·structuralMasksAsm(SB), NOSPLIT, $0-24
	MOVQ src+0(FP), SI
	MOVQ n+8(FP), CX
	MOVQ dst+16(FP), DI
	BROADCAST($0x2222222222222222, X8)  // '"'
	BROADCAST($0x5c5c5c5c5c5c5c5c, X9)  // '\\'
	BROADCAST($0x2020202020202020, X10)
	BROADCAST($0x7b7b7b7b7b7b7b7b, X11) // '{'
	BROADCAST($0x7d7d7d7d7d7d7d7d, X12) // '}'

loop:
	TESTQ CX, CX
	JZ done
	XORQ R8, R8
	XORQ R9, R9
	XORQ R10, R10
	MASK16(0, 0)
	MASK16(16, 16)
	MASK16(32, 32)
	MASK16(48, 48)
	MOVQ R8, 0(DI)
	MOVQ R9, 8(DI)
	MOVQ R10, 16(DI)
	ADDQ $64, SI
	ADDQ $24, DI
	DECQ CX
	JMP loop

done:
	RET
