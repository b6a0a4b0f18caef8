# Bare-metal test guests, built from source with gcc/as/ld (no downloads).
#
# Every guest in GUESTS32 is linked twice from the same objects: NAME.mb.elf
# (multiboot v1 header) and NAME.pvh.elf (PVH ELF note).  Every guest in
# GUESTS64 is also built as NAME64.bzimage, a Linux boot protocol 2.15 image
# entered at its 64-bit entry point.

GUEST_DIR  := tests/guests
GUEST_OUT  := $(BUILD)/tests/guests
GUESTS32   := hello smp timer memmap pciscan ioloop counter power virtioblk cpuid dirty \
	randseq spin fault rtcdate
GUESTS64   := hello memmap pciscan

GUEST_CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror -ffreestanding \
	-fno-pic -fno-pie -fno-stack-protector -fno-builtin -nostdlib \
	-fno-asynchronous-unwind-tables -mno-sse -mno-mmx -mno-80387 \
	-mgeneral-regs-only -I$(GUEST_DIR)
GUEST_CFLAGS32 := $(GUEST_CFLAGS) -m32 -march=i686
GUEST_CFLAGS64 := $(GUEST_CFLAGS) -m64 -mno-red-zone -mcmodel=small
GUEST_LDFLAGS  := -nostdlib -static -z noexecstack --no-warn-rwx-segments \
	-z max-page-size=0x1000

RT32_OBJS := $(GUEST_OUT)/rt32/rt.o $(GUEST_OUT)/rt32/boot32.o \
	$(GUEST_OUT)/rt32/idt32.o $(GUEST_OUT)/rt32/isr32.o
RT64_OBJS := $(GUEST_OUT)/rt64/rt.o $(GUEST_OUT)/rt64/boot64.o \
	$(GUEST_OUT)/rt64/head64.o $(GUEST_OUT)/rt64/setup.o

GUEST_IMAGES := $(foreach g,$(GUESTS32),$(GUEST_OUT)/$(g).mb.elf $(GUEST_OUT)/$(g).pvh.elf) \
	$(foreach g,$(GUESTS64),$(GUEST_OUT)/$(g)64.bzimage)

guests: $(GUEST_IMAGES)

GUEST_HDRS := $(wildcard $(GUEST_DIR)/rt/*.h)

$(GUEST_OUT)/rt32/%.o: $(GUEST_DIR)/rt/%.c $(GUEST_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS32) -c -o $@ $<

$(GUEST_OUT)/rt32/%.o: $(GUEST_DIR)/rt/%.S
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS32) -c -o $@ $<

$(GUEST_OUT)/rt32/start-mb.o: $(GUEST_DIR)/rt/start32.S
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS32) -DMULTIBOOT -c -o $@ $<

$(GUEST_OUT)/rt32/start-pvh.o: $(GUEST_DIR)/rt/start32.S
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS32) -DPVH -c -o $@ $<

$(GUEST_OUT)/rt64/%.o: $(GUEST_DIR)/rt/%.c $(GUEST_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS64) -c -o $@ $<

$(GUEST_OUT)/rt64/%.o: $(GUEST_DIR)/bz64/%.c $(GUEST_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS64) -c -o $@ $<

$(GUEST_OUT)/rt64/%.o: $(GUEST_DIR)/bz64/%.S
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS64) -c -o $@ $<

$(GUEST_OUT)/obj32/%.o: $(GUEST_DIR)/%.c $(GUEST_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS32) -c -o $@ $<

$(GUEST_OUT)/obj32/%.o: $(GUEST_DIR)/%.S
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS32) -c -o $@ $<

$(GUEST_OUT)/obj64/%.o: $(GUEST_DIR)/%.c $(GUEST_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS64) -c -o $@ $<

# The smp guest has its real-mode AP trampoline in a separate file.
GUEST_EXTRA_smp := $(GUEST_OUT)/obj32/smp_tramp.o

.SECONDEXPANSION:
$(GUEST_OUT)/%.mb.elf: $(GUEST_OUT)/rt32/start-mb.o $(RT32_OBJS) $(GUEST_OUT)/obj32/%.o \
		$$(GUEST_EXTRA_$$*) $(GUEST_DIR)/rt/guest32.ld
	$(LD) -m elf_i386 $(GUEST_LDFLAGS) -T $(GUEST_DIR)/rt/guest32.ld -o $@ \
		$(filter %.o,$^)

$(GUEST_OUT)/%.pvh.elf: $(GUEST_OUT)/rt32/start-pvh.o $(RT32_OBJS) $(GUEST_OUT)/obj32/%.o \
		$$(GUEST_EXTRA_$$*) $(GUEST_DIR)/rt/guest32.ld
	$(LD) -m elf_i386 $(GUEST_LDFLAGS) -T $(GUEST_DIR)/rt/guest32.ld -o $@ \
		$(filter %.o,$^)

# The linker script lays the setup sectors out at load address 0 and the
# 64-bit kernel after them (LMA) at 1 MiB (VMA); objcopy keeps the LMA
# layout, which is exactly the bzImage file layout.
$(GUEST_OUT)/%64.elf: $(RT64_OBJS) $(GUEST_OUT)/obj64/%.o $(GUEST_DIR)/bz64/bz.ld
	$(LD) -m elf_x86_64 $(GUEST_LDFLAGS) -T $(GUEST_DIR)/bz64/bz.ld -o $@ \
		$(filter %.o,$^)

$(GUEST_OUT)/%64.bzimage: $(GUEST_OUT)/%64.elf
	objcopy -O binary $< $@
