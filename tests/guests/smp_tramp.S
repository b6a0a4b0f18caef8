/*
 * AP start-up: smp.c copies tramp_start..tramp_end to a page below 1 MiB
 * and names that page in the SIPI vector.  The AP starts there in real
 * mode with CS = page >> 4, IP = 0, loads the guest's GDT, enters flat
 * 32-bit protected mode, takes a stack of its own and calls ap_main().
 */
#define AP_STACK_SIZE	4096
#define AP_MAX		256

	.section .text
	.code16
	.balign 16
	.globl tramp_start, tramp_end
tramp_start:
	cli
	cld
	movw %cs, %ax
	movw %ax, %ds
	lgdtl (tramp_gdt_desc - tramp_start)
	movl %cr0, %eax
	orl $1, %eax
	movl %eax, %cr0
	ljmpl $0x08, $ap_entry32
	.balign 4
tramp_gdt_desc:
	.word 3 * 8 - 1			/* the three descriptors of start32.S */
	.long gdt
tramp_end:

	.code32
ap_entry32:
	movl $0x10, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %fs
	movl %eax, %gs
	movl %eax, %ss
	movl $1, %eax
	lock xaddl %eax, ap_next_stack
	cmpl $AP_MAX, %eax
	jae 2f				/* more APs than stacks: park it */
	incl %eax
	shll $12, %eax			/* AP_STACK_SIZE */
	addl $ap_stacks, %eax
	movl %eax, %esp
	call ap_main
2:	cli
	hlt
	jmp 2b

	.section .bss
	.balign 16
	.globl ap_next_stack
ap_next_stack:
	.long 0
	.balign 16
ap_stacks:
	.skip AP_STACK_SIZE * AP_MAX
