/* SSE/SSE2 helpers shared by translate_sse.c and sse.c. */
#ifndef VIREO_TCG_SSE_H
#define VIREO_TCG_SSE_H

#include "accel/tcg/tcg.h"

#define SSE_MEM 0xff		/* u->b: the source is memory at T[u->a] */
#define SSE_IMM 0xfe		/* u->x: a shift count comes from the immediate */

/* tcg_sse_mov kinds */
enum { SM_LOAD_U, SM_LOAD_A, SM_STORE_U, SM_STORE_A, SM_LOAD_SS, SM_LOAD_SD,
       SM_STORE_SS, SM_STORE_SD, SM_LOAD_LO, SM_LOAD_HI, SM_STORE_LO, SM_STORE_HI,
       SM_LOAD_Q, SM_STORE_Q };

/* tcg_sse_int: kind, element width (log2 bytes), signedness */
enum { SK_ADD, SK_SUB, SK_ADDS, SK_SUBS, SK_CMPEQ, SK_CMPGT, SK_MIN, SK_MAX, SK_AVG,
       SK_MULLO, SK_MULHI, SK_AND, SK_ANDN, SK_OR, SK_XOR };
#define SI(kind, wlog, sgn) ((kind) | ((wlog) << 4) | ((sgn) << 6))
static inline unsigned tcg_sse_int_width(unsigned op) { return 1u << ((op >> 4) & 3); }
static inline bool tcg_sse_int_signed(unsigned op) { return (op >> 6) & 1; }
static inline unsigned tcg_sse_int_kind(unsigned op) { return op & 15; }

/* tcg_sse_shuf kinds; unpacks carry the element width in bits 4-5 */
enum { SU_PUNPCKL, SU_PUNPCKH, SU_PSHUFD, SU_PSHUFLW, SU_PSHUFHW, SU_SHUFPS, SU_SHUFPD,
       SU_PACKSSWB, SU_PACKUSWB, SU_PACKSSDW };

/* tcg_sse_shift kinds (op >> 2), element width log2 in op & 3 */
enum { SS_SLL, SS_SRL, SS_SRA, SS_SLLDQ, SS_SRLDQ };

/* tcg_sse_special kinds */
enum { SP_PMADDWD, SP_PMULUDQ, SP_PSADBW };

/* aux bit 1 of a helper: the MMX form (8 bytes, mm registers) */
#define AUX_MMX 2

/* tcg_sse_fp: op | form << 4 */
enum { FO_ADD, FO_SUB, FO_MUL, FO_DIV, FO_MIN, FO_MAX, FO_SQRT, FO_RCP, FO_RSQRT, FO_CMP };
enum { FORM_PS, FORM_PD, FORM_SS, FORM_SD };
/* tcg_sse_cvt kinds */
enum { CV_SI2SS, CV_SI2SD, CV_SS2SI, CV_TSS2SI, CV_SD2SI, CV_TSD2SI, CV_SS2SD, CV_SD2SS,
       CV_PS2PD, CV_PD2PS, CV_DQ2PS, CV_PS2DQ, CV_TPS2DQ, CV_DQ2PD, CV_PD2DQ, CV_TPD2DQ,
       /* with an MMX register */
       CV_PI2PS, CV_PS2PI, CV_TPS2PI, CV_PI2PD, CV_PD2PI, CV_TPD2PI };

void tcg_sse_check(struct tcg_cpu *c);
/* The source operand: register u->b, or bytes at T[u->a] in segment u->x. */
void tcg_sse_src(struct tcg_cpu *c, const struct uop *u, struct xmm *v, unsigned bytes,
		 bool aligned);
void tcg_sse_fp(struct tcg_cpu *c, const struct uop *u);
/* SSE3 */
enum { S3_ADDSUB, S3_HADD, S3_HSUB };
void tcg_sse3_fp(struct tcg_cpu *c, const struct uop *u);
enum { SD_MOVSHDUP, SD_MOVSLDUP, SD_MOVDDUP };
void tcg_sse3_dup(struct tcg_cpu *c, const struct uop *u);
/* SSSE3 */
enum { S3X_PSHUFB, S3X_PHADDW, S3X_PHADDD, S3X_PHADDSW, S3X_PHSUBW, S3X_PHSUBD, S3X_PHSUBSW,
       S3X_PMADDUBSW, S3X_PMULHRSW, S3X_PSIGNB, S3X_PSIGNW, S3X_PSIGND, S3X_PABSB, S3X_PABSW,
       S3X_PABSD, S3X_PALIGNR };
void tcg_ssse3(struct tcg_cpu *c, const struct uop *u);
/* SSE4.1 */
enum { S41_PBLENDVB, S41_BLENDVPS, S41_BLENDVPD, S41_BLENDPS, S41_BLENDPD, S41_PBLENDW,
       S41_PTEST, S41_PMOVSXBW, S41_PMOVZXBW, S41_PMOVSXBD, S41_PMOVZXBD, S41_PMOVSXBQ,
       S41_PMOVZXBQ, S41_PMOVSXWD, S41_PMOVZXWD, S41_PMOVSXWQ, S41_PMOVZXWQ, S41_PMOVSXDQ,
       S41_PMOVZXDQ, S41_PMULDQ, S41_PACKUSDW, S41_PHMINPOSUW, S41_MPSADBW, S41_MOVNTDQA };
void tcg_sse41(struct tcg_cpu *c, const struct uop *u);
void tcg_sse41_extract(struct tcg_cpu *c, const struct uop *u);
void tcg_sse41_insert(struct tcg_cpu *c, const struct uop *u);
void tcg_sse41_insertps_src(struct tcg_cpu *c, const struct uop *u);
void tcg_sse41_round(struct tcg_cpu *c, const struct uop *u);
void tcg_sse41_dp(struct tcg_cpu *c, const struct uop *u);
void tcg_crc32(struct tcg_cpu *c, const struct uop *u);
void tcg_pcmpstr(struct tcg_cpu *c, const struct uop *u);
void tcg_sse_comis(struct tcg_cpu *c, const struct uop *u);
void tcg_sse_cvt(struct tcg_cpu *c, const struct uop *u);
void tcg_sse_mov(struct tcg_cpu *c, const struct uop *u);
void tcg_sse_movd(struct tcg_cpu *c, const struct uop *u);
void tcg_sse_int(struct tcg_cpu *c, const struct uop *u);
void tcg_sse_int_core(const struct uop *u, struct xmm *d, const struct xmm *s);
void tcg_sse_shuf_core(const struct uop *u, struct xmm *d, const struct xmm *s);
void tcg_sse_shift_core(const struct uop *u, struct xmm *d, uint64_t n);
void tcg_sse_special(struct tcg_cpu *c, const struct uop *u);
void tcg_sse_special_core(const struct uop *u, struct xmm *d, const struct xmm *s);
void tcg_sse_pextrw(struct tcg_cpu *c, const struct uop *u);
void tcg_sse_pinsrw(struct tcg_cpu *c, const struct uop *u);
void tcg_sse_maskmov(struct tcg_cpu *c, const struct uop *u);
/* MMX (mmx.c): the same operations on the x87 registers' mantissas */
void tcg_mmx_int(struct tcg_cpu *c, const struct uop *u);
void tcg_mmx_shuf(struct tcg_cpu *c, const struct uop *u);
void tcg_mmx_shift(struct tcg_cpu *c, const struct uop *u);
void tcg_mmx_special(struct tcg_cpu *c, const struct uop *u);
void tcg_mmx_mov(struct tcg_cpu *c, const struct uop *u);
void tcg_mmx_movd(struct tcg_cpu *c, const struct uop *u);
void tcg_mmx_movmsk(struct tcg_cpu *c, const struct uop *u);
void tcg_mmx_emms(struct tcg_cpu *c, const struct uop *u);
void tcg_mmx_pextrw(struct tcg_cpu *c, const struct uop *u);
void tcg_mmx_pinsrw(struct tcg_cpu *c, const struct uop *u);
void tcg_mmx_maskmov(struct tcg_cpu *c, const struct uop *u);
void tcg_mmx_check(struct tcg_cpu *c);
void tcg_mmx_enter(struct tcg_cpu *c);
uint64_t tcg_mm_get(const struct tcg_cpu *c, unsigned r);
void tcg_mm_put(struct tcg_cpu *c, unsigned r, uint64_t v);
void tcg_sse_shuf(struct tcg_cpu *c, const struct uop *u);
void tcg_sse_shift(struct tcg_cpu *c, const struct uop *u);
void tcg_sse_movmsk(struct tcg_cpu *c, const struct uop *u);
void tcg_sse_mxcsr(struct tcg_cpu *c, const struct uop *u);
void tcg_fxsave(struct tcg_cpu *c, const struct uop *u);
void tcg_fxrstor(struct tcg_cpu *c, const struct uop *u);
void tcg_fx_image(const struct tcg_cpu *c, uint8_t img[512], unsigned nxmm, bool wide);
int tcg_fx_restore(struct tcg_cpu *c, const uint8_t img[512], unsigned nxmm, bool wide);
enum { FC_INIT, FC_CLEX, FC_STSW_AX, FC_STSW, FC_STCW, FC_LDCW };
void tcg_fpu_ctl(struct tcg_cpu *c, const struct uop *u);
void tcg_fpu_init(struct tcg_cpu *c);
void tcg_x87(struct tcg_cpu *c, const struct uop *u);

#endif
