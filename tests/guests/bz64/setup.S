/*
 * The real-mode part of the bzImage: boot sector and setup header (Linux
 * boot protocol 2.15, Documentation/arch/x86/boot.rst).  The guest supports
 * only the 64-bit entry, so the real-mode entry just says so on COM1 and
 * fails through isa-debug-exit.  bz_setup_sects and bz_syssize come from
 * bz.ld, which knows the sizes.
 */
#define LOADED_HIGH	0x01
#define XLF_KERNEL_64	0x0001

	.section .setup, "ax"
	.code16
	.globl _setup
_setup:
	.org 0x1f1
setup_sects:		.byte bz_setup_sects
root_flags:		.word 0
syssize:		.long bz_syssize
ram_size:		.word 0
vid_mode:		.word 0xffff		/* "normal" */
root_dev:		.word 0
boot_flag:		.word 0xaa55
	.org 0x200
jump:			.byte 0xeb, realmode_entry - 1f
1:
header:			.ascii "HdrS"
version:		.word 0x020f
realmode_swtch:		.long 0
start_sys_seg:		.word 0x1000
kernel_version:		.word 0
type_of_loader:		.byte 0
loadflags:		.byte LOADED_HIGH
setup_move_size:	.word 0x8000
code32_start:		.long 0x100000
ramdisk_image:		.long 0
ramdisk_size:		.long 0
bootsect_kludge:	.long 0
heap_end_ptr:		.word 0
ext_loader_ver:		.byte 0
ext_loader_type:	.byte 0
cmd_line_ptr:		.long 0
initrd_addr_max:	.long 0x7fffffff
kernel_alignment:	.long 0x100000
relocatable_kernel:	.byte 0
min_alignment:		.byte 0
	.org 0x236
xloadflags:		.word XLF_KERNEL_64
cmdline_size:		.long 4095
hardware_subarch:	.long 0
hardware_subarch_data:	.quad 0
payload_offset:		.long 0
payload_length:		.long 0
setup_data:		.quad 0
	.org 0x258
pref_address:		.quad 0x100000
init_size:		.long bz_init_size
handover_offset:	.long 0
kernel_info_offset:	.long 0
	.org 0x26c

realmode_entry:
	cli
	call 2f
2:	popw %si
	addw $(msg16 - 2b), %si
3:	movb %cs:(%si), %bl
	testb %bl, %bl
	jz 5f
	movw $0x3fd, %dx
4:	inb %dx, %al
	testb $0x20, %al
	jz 4b
	movw $0x3f8, %dx
	movb %bl, %al
	outb %al, %dx
	incw %si
	jmp 3b
5:	movl $0x11, %eax			/* EXIT_FAIL */
	movw $0xf4, %dx
	outl %eax, %dx
6:	hlt
	jmp 6b

msg16:	.asciz "vireo test bzImage: real-mode entry, only the 64-bit entry is supported\n"
