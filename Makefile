# vireo build.  `make` builds build/vireo; `make check` builds and runs every
# test; `make check-asan` does the same under ASan/UBSan.  SANITIZE=thread
# builds under ThreadSanitizer instead (docs/sanitizers.md); it is run by
# hand, not by `make check`.
#
# Sources are found by wildcard, one folder per subsystem, so adding a file
# to a subsystem never needs a Makefile edit.  Every .c outside main.c goes
# into build/libvireo.a, which the unit tests link against.

BUILD    ?= build
CC       ?= gcc
PKGS     := glib-2.0 json-glib-1.0 liburing zlib libzstd liblz4 libxxhash
CFLAGS   ?= -O2 -g
CFLAGS   += -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter \
            -Wno-missing-field-initializers -fno-strict-aliasing \
            -D_GNU_SOURCE -pthread -I. -Iinclude \
            $(shell pkg-config --cflags $(PKGS))
LDLIBS   := $(shell pkg-config --libs $(PKGS)) -laio -lpthread -lrt -lm
# SANITIZE=1: ASan+UBSan.  SANITIZE=thread: ThreadSanitizer, which cannot
# be combined with ASan; use its own BUILD (build-tsan).
# TSan does not model __atomic_thread_fence (gcc warns, -Wtsan); the
# fences left order guest-visible memory (virtio rings, guest MFENCE), whose
# reports tests/tsan.supp explains.
ifeq ($(SANITIZE),thread)
CFLAGS   += -fsanitize=thread -fno-omit-frame-pointer -Wno-tsan
LDFLAGS  += -fsanitize=thread
else ifdef SANITIZE
CFLAGS   += -fsanitize=address,undefined -fno-omit-frame-pointer
LDFLAGS  += -fsanitize=address,undefined
endif

SUBDIRS  := util accel accel/kvm accel/tcg accel/xen vcpu hw virtio block \
            migration monitor
LIB_SRCS := $(foreach d,$(SUBDIRS),$(wildcard $(d)/*.c))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:%.c=$(BUILD)/%)
UNIT_HELPERS := $(filter-out $(UNIT_SRCS),$(wildcard tests/unit/*.c))
UNIT_HELPER_OBJS := $(UNIT_HELPERS:%.c=$(BUILD)/%.o)

all: $(BUILD)/vireo

# --whole-archive: device types register themselves from constructors that
# nothing else references.
WHOLE = -Wl,--whole-archive $(BUILD)/libvireo.a -Wl,--no-whole-archive

$(BUILD)/vireo: $(BUILD)/main.o $(BUILD)/libvireo.a
	$(CC) $(LDFLAGS) -o $@ $< $(WHOLE) $(LDLIBS)

$(BUILD)/libvireo.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

# Unit tests link the archive normally: they get the objects they use, so
# a device's test does not need the whole board.  A test of a -device type
# must reference a symbol of the type's file for its constructor to run.
$(BUILD)/tests/unit/test_%: $(BUILD)/tests/unit/test_%.o $(UNIT_HELPER_OBJS) $(BUILD)/libvireo.a
	$(CC) $(LDFLAGS) -o $@ $< $(UNIT_HELPER_OBJS) $(BUILD)/libvireo.a $(LDLIBS)

# Every public header must compile on its own.
HEADERS := $(wildcard include/*.h accel/accel.h)
$(BUILD)/hdrcheck/%.ok: %
	@mkdir -p $(dir $@)
	@echo '#include "$<"' | $(CC) $(CFLAGS) -x c -fsyntax-only - && touch $@
hdrcheck: $(HEADERS:%=$(BUILD)/hdrcheck/%.ok)

include tests/guests/guests.mk
# Benchmarks: `make bench` builds them; they are run by hand (docs/benchmarks.md).
include tests/bench/bench.mk

# The default guest: Debian's cloud kernel and a busybox initramfs, built
# from Debian's packages and cached (a second run downloads nothing).
linux-guest:
	tests/guests/linux/build.sh $(BUILD)/guests/linux

# Boot the default guest to a shell on the serial console (Ctrl-A x quits).
# ACCEL=kvm|tcg|kvm:tcg picks the accelerator; by default vireo's own
# choice (KVM when there is one), except on a PVM host (a nested,
# paravirtual KVM, module kvm_pvm), whose KVM stops a full Linux kernel
# with an emulation failure: there the guest boots under TCG.
ACCEL ?= $(if $(wildcard /sys/module/kvm_pvm),tcg)
run: $(BUILD)/vireo linux-guest
	@$(if $(and $(filter file,$(origin ACCEL)),$(ACCEL)),echo "make run: this host's KVM is PVM (nested, paravirtual) and cannot run a full Linux kernel; booting under TCG (ACCEL=kvm to try KVM anyway)")
	$(BUILD)/vireo $(if $(ACCEL),-accel $(ACCEL)) -m 512M -smp 2 -nographic \
		-kernel $(BUILD)/guests/linux/vmlinuz -initrd $(BUILD)/guests/linux/initrd.gz \
		-append "console=ttyS0 earlyprintk=ttyS0 vireo.shell=1"

tests: $(UNIT_BINS) guests hdrcheck $(BUILD)/vireo linux-guest

check: tests
	python3 tests/run.py --build $(BUILD)

check-asan:
	$(MAKE) BUILD=build-asan SANITIZE=1 check

clean:
	rm -rf $(BUILD) build-asan build-tsan

.PHONY: all tests check check-asan clean hdrcheck guests linux-guest run bench
.SECONDARY:
-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
