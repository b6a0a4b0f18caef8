/*
 * One stub per vector: push the vector number (a dummy error code first
 * where the CPU pushes none, so the frame is always the same), then the
 * common path saves the registers and calls isr_dispatch(vector).
 */
	.code32
	.section .text
	.balign 16
	.globl isr_stubs
isr_stubs:
	vec = 0
	.rept 256
	.balign 16
	.if (vec == 8) || (vec >= 10 && vec <= 14) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
	.else
	pushl $0
	.endif
	pushl $vec
	jmp isr_common
	vec = vec + 1
	.endr

isr_common:
	pushal
	cld
	pushl 32(%esp)			/* the vector */
	call isr_dispatch
	addl $4, %esp
	popal
	addl $8, %esp			/* vector and error code */
	/*
	 * Return without IRET: where KVM runs 32-bit guest code through its
	 * instruction emulator (nested KVM on PVM, as on the CI host), that
	 * emulator only knows real-mode IRET and the VM dies with an
	 * emulation failure.  At the same privilege level IRET is POPF plus
	 * a far return, so rotate the frame from [EIP][CS][EFLAGS] to
	 * [EFLAGS][EIP][CS] and do those.  An interrupt taken right after
	 * POPF nests on top of [EIP][CS] and returns to the LRET.
	 */
	pushl %eax			/* [eax][EIP][CS][EFLAGS] */
	movl 12(%esp), %eax
	xchgl %eax, 4(%esp)		/* [eax][EFLAGS][CS][EFLAGS], eax = EIP */
	xchgl %eax, 8(%esp)		/* [eax][EFLAGS][EIP][EFLAGS], eax = CS */
	movl %eax, 12(%esp)		/* [eax][EFLAGS][EIP][CS] */
	popl %eax
	popfl
	lret
