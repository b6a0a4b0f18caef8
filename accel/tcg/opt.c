/*
 * Optimisation passes over a translated block: dead flags, constants
 * folded into their one consumer, and instruction markers that nothing
 * needs.
 *
 * Most x86 instructions write the arithmetic flags and most of those
 * writes are overwritten by the next instruction before anything reads
 * them (imul; add; rol; dec: only dec's flags and rol's CF survive).  A
 * backward pass over the block's micro-ops tracks which flag bits are
 * live and marks the flag-writing micro-ops whose output nobody reads
 * (UF_NOFLAGS), or whose preserved bits nobody reads (UF_KEEP_DEAD), so
 * the interpreter (and a code generator) skips that work.
 *
 * All flags are live where the block can be left: at its end, at every
 * exit, and at every micro-op that can fault or call out (a handler
 * pushes RFLAGS).  A block also stops between instructions when c->brk
 * is set, but only a memory access or a helper sets it, and those make
 * all flags live before them already.
 */
#include "accel/tcg/decode.h"

/* Mark u given the flag bits live after it; returns those live before. */
static unsigned live_before(struct uop *u, unsigned live)
{
	unsigned rc;

	switch (u->op) {
	case U_INSN: case U_MOVI: case U_MOV: case U_LDR: case U_STR:
	case U_ADD: case U_SUB: case U_AND: case U_OR: case U_XOR:
	case U_ADDI: case U_SHLI: case U_SARI: case U_SEXT: case U_ZEXT:
	case U_NOT: case U_BSWAP: case U_SELECT:
		return live;
	case U_ALU:
		if (u->x == ALU_ADC || u->x == ALU_SBB)
			return F_CF;	/* the result needs the carry */
		/* fallthrough */
	case U_NEG: case U_IMUL2:
		if (!live)
			u->aux |= UF_NOFLAGS;
		return 0;
	case U_INCDEC:
		/* Writes all but CF, which it keeps. */
		if (!(live & ~F_CF))
			u->aux |= UF_NOFLAGS;
		else if (!(live & F_CF))
			u->aux |= UF_KEEP_DEAD;
		return live & F_CF;
	case U_SHIFT:
		rc = u->x == SH_RCL || u->x == SH_RCR ? F_CF : 0;
		if (!live) {
			/* Written or passed through, nobody reads them; a
			 * rotate through carry still needs CF for its result. */
			u->aux |= UF_NOFLAGS;
			return rc;
		}
		if (!(u->aux & UF_CNT_NZ) || rc)
			return F_ARITH;	/* a zero count keeps them all */
		if (u->x == SH_ROL || u->x == SH_ROR) {
			if (!(live & ~(F_CF | F_OF)))
				u->aux |= UF_KEEP_DEAD;
			return live & ~(F_CF | F_OF);
		}
		return 0;
	case U_SETCF:
		/* It rebuilds the other bits from the lazy state: garbage
		 * in the dead ones does no harm. */
		return (live & ~F_CF) | (u->x == 2 ? F_CF : 0);
	default:
		/* Readers, exits, memory accesses, helpers. */
		return F_ARITH;
	}
}

void tcg_opt_flags(struct uop *u, unsigned n)
{
	unsigned live = F_ARITH;

	while (n--)
		live = live_before(&u[n], live);
}

/* Micro-ops that cannot fault, call out or set c->brk. */
static bool uop_pure(const struct uop *u)
{
	switch (u->op) {
	case U_LD: case U_ST: case U_LDL: case U_STC: case U_DIV:
	case U_HELPER: case U_EXC:
		return false;
	}
	return true;
}

/*
 * Drop the U_INSN of instructions whose micro-ops cannot fault or call a
 * helper (the only readers of insn_eip/insn_next), when the instruction
 * before cannot have set c->brk either (only memory accesses and helpers
 * do, and the U_INSN after them is where the block stops).  A block's
 * last micro-op always leaves it, so insn_next is not needed at the end;
 * if not (a cut block), the last instruction keeps its marker.  Returns
 * the new number of micro-ops.
 */
unsigned tcg_opt_insns(struct uop *u, unsigned n)
{
	const struct uop *tail = n ? &u[n - 1] : NULL;
	bool prev_pure = true, cut;
	unsigned out = 0, k = 0, last = 0;

	cut = !tail || !(tail->op == U_JMP || tail->op == U_JMPI || tail->op == U_EXC ||
			 (tail->op == U_HELPER && (tail->aux & 1)));
	for (unsigned j = 0; j < n; j++)
		if (u[j].op == U_INSN)
			last = j;
	while (k < n) {
		unsigned end = k + 1;
		bool pure = true;

		while (end < n && u[end].op != U_INSN)
			end++;
		for (unsigned j = k + 1; j < end; j++)
			pure &= uop_pure(&u[j]);
		if (u[k].op != U_INSN || !pure || !prev_pure || (cut && k == last))
			u[out++] = u[k];
		for (unsigned j = k + 1; j < end; j++)
			u[out++] = u[j];
		prev_pure = pure;
		k = end;
	}
	return out;
}

/* Does u name temporary t as an operand or a result? */
static bool uop_mentions(const struct uop *u, unsigned t)
{
	switch (u->op) {
	case U_INSN: case U_JMPI: case U_JCC: case U_EXC: case U_SETCF:
		return false;
	case U_MOVI: case U_LDR: case U_GETCC: case U_GETCF: case U_GETF:
		return u->d == t;
	case U_STR: case U_MUL: case U_DIV: case U_JMP: case U_JNZ: case U_JZ:
		return u->a == t;
	case U_ST:
		return u->a == t || u->b == t;
	case U_MOV: case U_ADDI: case U_SHLI: case U_SARI: case U_SEXT: case U_ZEXT:
	case U_NOT: case U_BSWAP: case U_LD: case U_LDL: case U_INCDEC: case U_NEG:
	case U_BSF: case U_BSR: case U_POPCNT: case U_TZCNT: case U_LZCNT:
		return u->d == t || u->a == t;
	case U_ADD: case U_SUB: case U_AND: case U_OR: case U_XOR: case U_STC:
	case U_ALU: case U_SHIFT: case U_IMUL2: case U_BT:
		return u->d == t || u->a == t || u->b == t;
	case U_SHD:
		return u->d == t || u->a == t || u->b == t || u->aux == t;
	case U_SELECT:
		return u->d == t || u->a == t || u->b == t || u->x == t;
	}
	return true;	/* helpers may use any temporary */
}

/*
 * Fold "U_MOVI t, imm" into the ALU, IMUL2 or SHIFT that consumes t as
 * its second operand (UF_BIMM: the operand is u->imm), when nothing
 * else in the instruction reads t: one dispatch less per instruction
 * with an immediate.  Temporaries do not live across instructions, so
 * the search stops at the next U_INSN; run before tcg_opt_insns.
 * Returns the new number of micro-ops.
 */
unsigned tcg_opt_imm(struct uop *u, unsigned n)
{
	unsigned out = 0;

	for (unsigned k = 0; k < n; k++) {
		unsigned t = u[k].d, j;
		bool fold = false;

		if (u[k].op == U_MOVI) {
			for (j = k + 1; j < n && u[j].op != U_INSN; j++)
				if (uop_mentions(&u[j], t))
					break;
			if (j < n && (u[j].op == U_ALU || u[j].op == U_IMUL2 || u[j].op == U_SHIFT) &&
			    u[j].b == t && u[j].a != t && !(u[j].aux & UF_BIMM)) {
				fold = true;
				/* Later readers of t would need the constant. */
				for (unsigned l = j + 1; fold && u[j].d != t && l < n &&
				     u[l].op != U_INSN; l++)
					fold = !uop_mentions(&u[l], t);
			}
			if (fold) {
				u[j].aux |= UF_BIMM;
				u[j].imm = u[k].imm;
				continue;
			}
		}
		u[out++] = u[k];
	}
	return out;
}
