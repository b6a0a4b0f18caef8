/*
 * Protected-mode part of the bzImage, loaded at 1 MiB.  The 32-bit entry
 * (load address + 0) is not supported and says so; the 64-bit entry (load
 * address + 0x200) is entered in long mode with an identity map, rsi = the
 * zero page (boot_params).
 */
	.section .text.entry, "ax"
	.code32
	.globl entry32
entry32:
	cli
	movl $msg32, %esi
1:	movb (%esi), %bl
	testb %bl, %bl
	jz 3f
	movw $0x3fd, %dx
2:	inb %dx, %al
	testb $0x20, %al
	jz 2b
	movw $0x3f8, %dx
	movb %bl, %al
	outb %al, %dx
	incl %esi
	jmp 1b
3:	movl $0x11, %eax			/* EXIT_FAIL */
	movw $0xf4, %dx
	outl %eax, %dx
4:	hlt
	jmp 4b
msg32:	.asciz "vireo test bzImage: 32-bit entry, only the 64-bit entry is supported\n"

	.org 0x200
	.code64
	.globl entry64
entry64:
	cli
	cld
	leaq boot_stack_top(%rip), %rsp
	movq %rsi, %rbx
	leaq __bss_start(%rip), %rdi
	leaq __bss_end(%rip), %rcx
	subq %rdi, %rcx
	xorl %eax, %eax
	rep stosb
	movq %rbx, %rdi
	call rt_start64
5:	cli
	hlt
	jmp 5b

	.section .bss
	.balign 16
boot_stack:
	.skip 16384
boot_stack_top:
