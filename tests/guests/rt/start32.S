/*
 * 32-bit entry of the test guests.  Assembled twice: with -DMULTIBOOT it
 * carries a multiboot v1 header (the loader takes the ELF program headers:
 * flags bit 16 clear), with -DPVH a XEN_ELFNOTE_PHYS32_ENTRY note.  Both
 * enter in flat 32-bit protected mode without paging; the GDT the loader
 * left may be gone, so load our own before touching a segment register.
 */
#define MB_MAGIC	0x1badb002
#define MB_FLAGS	0x00000002	/* memory info (mem_*, mmap) wanted */
#define XEN_ELFNOTE_PHYS32_ENTRY 18

#define BOOT_PROTO_MULTIBOOT	1
#define BOOT_PROTO_PVH		2

#define STACK_SIZE	16384

#ifdef MULTIBOOT
	.section .multiboot, "a"
	.balign 4
	.long MB_MAGIC
	.long MB_FLAGS
	.long -(MB_MAGIC + MB_FLAGS)
#define PROTO BOOT_PROTO_MULTIBOOT
#endif

#ifdef PVH
	.section .note.Xen, "a"
	.balign 4
	.long 4				/* name size: "Xen\0" */
	.long 4				/* descriptor size */
	.long XEN_ELFNOTE_PHYS32_ENTRY
	.asciz "Xen"
	.long _start
#define PROTO BOOT_PROTO_PVH
#endif

	.section .text.entry, "ax"
	.code32
	.globl _start
_start:
	cli
	cld
	lgdt gdt_desc
	ljmp $0x08, $1f
1:	movl $0x10, %ecx
	movl %ecx, %ds
	movl %ecx, %es
	movl %ecx, %fs
	movl %ecx, %gs
	movl %ecx, %ss
	movl $boot_stack_top, %esp

	/* Zero .bss (the stack is in it, nothing is on it yet). */
	movl %eax, %esi
	movl $__bss_start, %edi
	movl $__bss_end, %ecx
	subl %edi, %ecx
	xorl %eax, %eax
	rep stosb

	pushl %ebx			/* multiboot info / PVH start_info */
	pushl %esi			/* multiboot: magic in eax */
	pushl $PROTO
	call rt_start32
2:	cli
	hlt
	jmp 2b

	.section .rodata
	.balign 8
	.globl gdt
gdt:
	.quad 0
	.quad 0x00cf9a000000ffff	/* 0x08: flat 32-bit code */
	.quad 0x00cf92000000ffff	/* 0x10: flat data */
gdt_end:
	.globl gdt_desc
gdt_desc:
	.word gdt_end - gdt - 1
	.long gdt

	.section .bss
	.balign 16
boot_stack:
	.skip STACK_SIZE
boot_stack_top:
