# Benchmarks: built on request, never part of `make check`.
#   make -f Makefile -f tests/bench/bench.mk bench
# (or `make bench` once the Makefile has `include tests/bench/bench.mk`).
# They play the guest through the unit-test harness, so they link its
# helper objects; --whole-archive so that every -device type registers.

BENCH_SRCS := $(wildcard tests/bench/*_bench.c)
BENCH_BINS := $(BENCH_SRCS:%.c=$(BUILD)/%)

$(BUILD)/tests/bench/%_bench: $(BUILD)/tests/bench/%_bench.o $(UNIT_HELPER_OBJS) $(BUILD)/libvireo.a
	$(CC) $(LDFLAGS) -o $@ $< $(UNIT_HELPER_OBJS) $(WHOLE) $(LDLIBS)

bench: $(BENCH_BINS)

.PHONY: bench
