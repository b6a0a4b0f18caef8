#!/bin/bash
# Build the Linux test guest from Debian packages:
#
#     tests/guests/linux/build.sh [OUTDIR]      (default: build/guests/linux)
#
# OUTDIR/vmlinuz    the kernel of linux-image-cloud-amd64 (a bzImage)
# OUTDIR/initrd.gz  busybox-static, the virtio/SCSI modules and /init
#
# The .deb files are kept in OUTDIR/debs; a second run downloads nothing and
# rebuilds nothing unless this script or the package set changed.  Needs
# apt-get (a package list, `apt-get update`) the first time only.
#
# /init mounts proc, sys and devtmpfs, loads the modules in dependency
# order, prints "VIREO-INIT uptime=<seconds>", runs the command given on the
# kernel command line as vireo.cmd=<base64 of the shell command> with
# `sh -c`, prints "VIREO-CMD-EXIT <status>" and powers off (poweroff -f).
# The ACPI power button (button and evdev modules) makes it print
# "VIREO-POWER-BUTTON", sync and power off at any time.
# Base64 (standard alphabet, '=' padding allowed) keeps spaces and quotes
# out of the kernel's own command-line parsing:
#     -append "console=ttyS0 vireo.cmd=$(printf 'ls /dev' | base64 -w0)"
# Without vireo.cmd nothing runs and the status printed is 0.
# vireo.shell=1 instead starts an interactive shell on the console (what
# `make run` asks for); leaving it powers off.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
OUT=${1:-$ROOT/build/guests/linux}
mkdir -p "$OUT/debs"
OUT=$(cd "$OUT" && pwd)
DEBS=$OUT/debs

# Modules the tests need; their dependencies are added from .modinfo.
WANT="virtio_pci virtio_blk virtio_scsi sd_mod sr_mod button evdev"

log() { echo "build.sh: $*" >&2; }

# The versioned kernel package behind the linux-image-cloud-amd64 metapackage.
kernel_deb=$(ls "$DEBS"/linux-image-*-cloud-amd64_*.deb 2>/dev/null | head -n1 || true)
if [ -z "$kernel_deb" ]; then
	pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
	      sed -n 's/^ *Depends: \(linux-image-[0-9].*-cloud-amd64\)$/\1/p' | head -n1)
	if [ -z "$pkg" ]; then
		log "cannot resolve linux-image-cloud-amd64 (run apt-get update?)"
		exit 1
	fi
	log "downloading $pkg"
	(cd "$DEBS" && apt-get download -q "$pkg" >&2)
	kernel_deb=$(ls "$DEBS"/linux-image-*-cloud-amd64_*.deb | head -n1)
fi
busybox_deb=$(ls "$DEBS"/busybox-static_*.deb 2>/dev/null | head -n1 || true)
if [ -z "$busybox_deb" ]; then
	log "downloading busybox-static"
	(cd "$DEBS" && apt-get download -q busybox-static >&2)
	busybox_deb=$(ls "$DEBS"/busybox-static_*.deb | head -n1)
fi

stamp=$( (cat "$0"; basename "$kernel_deb"; basename "$busybox_deb") | sha256sum | cut -d' ' -f1)
if [ -f "$OUT/vmlinuz" ] && [ -f "$OUT/initrd.gz" ] &&
   [ "$(cat "$OUT/stamp" 2>/dev/null)" = "$stamp" ]; then
	echo "$OUT"
	exit 0
fi

work=$(mktemp -d "$OUT/work.XXXXXX")
trap 'rm -rf "$work"' EXIT
dpkg-deb -x "$kernel_deb" "$work/kernel"
dpkg-deb -x "$busybox_deb" "$work/busybox"
moddir=$(ls -d "$work"/kernel/lib/modules/* | head -n1)
kver=$(basename "$moddir")

# Module name (dashes and underscores are the same to the kernel) -> file.
modfile() {
	local n=${1//-/_} f
	f=$(find "$moddir/kernel" \( -name "$n.ko" -o -name "$n.ko.xz" -o -name "$n.ko.zst" \
	    -o -name "${n//_/-}.ko" -o -name "${n//_/-}.ko.xz" -o -name "${n//_/-}.ko.zst" \) |
	    head -n1)
	echo "$f"
}

is_builtin() {
	grep -qE "/(${1//_/[-_]})\.ko\$" "$moddir/modules.builtin"
}

# An uncompressed copy of a module in $work/mods, name.ko.
unpack_module() {
	local name=$1 src=$2 dst=$work/mods/$1.ko
	case "$src" in
	*.xz)  xz -dc "$src" >"$dst" ;;
	*.zst) zstd -qdc "$src" >"$dst" ;;
	*)     cp "$src" "$dst" ;;
	esac
}

module_depends() {
	objcopy -O binary --only-section=.modinfo "$work/mods/$1.ko" "$work/modinfo"
	tr '\0' '\n' <"$work/modinfo" | sed -n 's/^depends=//p' | tr ',' ' '
}

# Depth-first walk: a module is appended after everything it depends on,
# so /init can load the list in order (there is no modules.dep in there).
mkdir -p "$work/mods"
order=()
declare -A state
visit() {
	local n=${1//-/_} f d
	case "${state[$n]:-}" in
	done) return ;;
	active) log "module dependency loop at $n"; exit 1 ;;
	esac
	if is_builtin "$n"; then
		state[$n]=done
		return
	fi
	f=$(modfile "$n")
	if [ -z "$f" ]; then
		log "module $n not found in $kver"
		exit 1
	fi
	state[$n]=active
	unpack_module "$n" "$f"
	for d in $(module_depends "$n"); do
		visit "$d"
	done
	state[$n]=done
	order+=("$n")
}
for m in $WANT; do
	visit "$m"
done
log "kernel $kver, modules: ${order[*]}"

root=$work/root
mkdir -p "$root"/{bin,sbin,proc,sys,dev,tmp,lib/modules}
cp "$work/busybox/bin/busybox" "$root/bin/busybox"
for n in "${order[@]}"; do
	cp "$work/mods/$n.ko" "$root/lib/modules/"
done
printf '%s\n' "${order[@]}" >"$root/lib/modules/order"
# The kernel opens /dev/console for init before devtmpfs is mounted.
mknod -m 600 "$root/dev/console" c 5 1 2>/dev/null || true

cat >"$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
exec 0</dev/console 1>/dev/console 2>&1
for m in $(cat /lib/modules/order); do
	insmod /lib/modules/$m.ko || echo "VIREO-INIT insmod $m failed"
done
# The ACPI power button (QMP system_powerdown): a clean shutdown, as a
# full system's init would do it.  evdev wants whole 24-byte events.
for ev in /sys/class/input/input*/name; do
	case "$(cat "$ev")" in
	"Power Button")
		for node in "${ev%/name}"/event*; do
			# devtmpfs makes the node a moment after the module loads.
			( dev=/dev/"${node##*/}"; n=0
			  while [ ! -e "$dev" ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
			  dd if="$dev" bs=24 count=1 >/dev/null 2>&1 || exit
			  echo "VIREO-POWER-BUTTON: shutting down"
			  sync
			  poweroff -f ) &
		done ;;
	esac
done
read up idle </proc/uptime
echo "VIREO-INIT uptime=$up"
cmd=
shell=
for w in $(cat /proc/cmdline); do
	case "$w" in
	vireo.cmd=*) cmd=${w#vireo.cmd=} ;;
	vireo.shell=1) shell=1 ;;
	esac
done
if [ -n "$shell" ]; then
	# An interactive shell on the console, with job control; poweroff -f ends the VM.
	echo "VIREO-SHELL: type 'poweroff -f' to power off"
	setsid cttyhack sh -l
	poweroff -f
fi
status=0
if [ -n "$cmd" ]; then
	if script=$(echo "$cmd" | base64 -d); then
		sh -c "$script"
		status=$?
	else
		echo "VIREO-INIT vireo.cmd is not base64"
		status=127
	fi
fi
echo "VIREO-CMD-EXIT $status"
poweroff -f
INIT
chmod 755 "$root/init"

(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) |
	gzip -9n >"$work/initrd.gz"
cp "$work/kernel/boot/vmlinuz-$kver" "$work/vmlinuz"
mv "$work/vmlinuz" "$OUT/vmlinuz"
mv "$work/initrd.gz" "$OUT/initrd.gz"
echo "$kver" >"$OUT/kernel-version"
echo "$stamp" >"$OUT/stamp"
echo "$OUT"
