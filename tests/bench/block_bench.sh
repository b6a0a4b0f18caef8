#!/bin/sh
# Block layer vs fio on the same file: 4 KiB random read/write IOPS and
# 1 MiB sequential throughput at queue depth 32, both with io_uring and
# O_DIRECT.  Run by hand after `make`:
#
#   tests/bench/block_bench.sh [FILE] [SIZE_MiB] [SECONDS] [raw|qcow2]
#
# FILE defaults to a fresh file under build/; qcow2 is preallocated so the
# numbers measure the data path, not cluster allocation.
set -e
cd "$(dirname "$0")/../.."
FILE=${1:-build/bench.img}
SIZE=${2:-1024}
SECS=${3:-5}
FMT=${4:-raw}
command -v fio >/dev/null || { echo "fio is missing: apt-get install fio" >&2; exit 1; }
make -s build/libvireo.a
cc -O2 -std=gnu11 -D_GNU_SOURCE -Iinclude -o build/block_bench tests/bench/block_bench.c \
	-Wl,--whole-archive build/libvireo.a -Wl,--no-whole-archive \
	$(pkg-config --cflags --libs glib-2.0 json-glib-1.0 liburing zlib libzstd) -laio -lpthread

if [ "$FMT" = qcow2 ]; then
	qemu-img create -q -f qcow2 -o preallocation=full "$FILE" "${SIZE}M"
else
	[ -f "$FILE" ] || fio --name=fill --filename="$FILE" --size="${SIZE}M" --rw=write \
		--bs=1M --direct=1 --ioengine=io_uring --output=/dev/null
fi

printf "%-10s %6s %12s %12s %8s\n" test bs vireo fio ratio
for spec in randread:4k randwrite:4k read:1M write:1M; do
	rw=${spec%%:*}; bs=${spec#*:}
	bytes=$(numfmt --from=iec "$(echo "$bs" | tr a-z A-Z)")
	v=$(build/block_bench "$FILE" "$FMT" io_uring none "$rw" "$bytes" 32 "$SECS")
	if [ "$FMT" = raw ]; then
		f=$(fio --name=b --filename="$FILE" --size="${SIZE}M" --rw="$rw" --bs="$bs" \
			--iodepth=32 --direct=1 --ioengine=io_uring --time_based \
			--runtime="$SECS" --output-format=json | python3 -c '
import json, sys
j = json.load(sys.stdin)["jobs"][0]
d = j["read"] if j["read"]["io_bytes"] else j["write"]
print("iops=%.0f mibps=%.1f" % (d["iops"], d["bw_bytes"] / 1048576))')
	else
		f="iops=0 mibps=0"
	fi
	case $bs in 4k) key=iops;; *) key=mibps;; esac
	vv=$(echo "$v" | sed -n "s/.*$key=\([0-9.]*\).*/\1/p")
	fv=$(echo "$f" | sed -n "s/.*$key=\([0-9.]*\).*/\1/p")
	ratio=$(python3 -c "print('%.2f' % ($vv / $fv) if $fv else 'n/a')")
	printf "%-10s %6s %12s %12s %8s  (%s)\n" "$rw" "$bs" "$vv" "$fv" "$ratio" "$key"
done
