#!/usr/bin/env bash
# Boots the meshgate image under QEMU (TCG, never KVM) and drives it through
# its serial console, as an operator would:
#   1. qcow2 + config volume (FAT, label MESHGATE) + virtio NIC on QEMU user
#      networking: kernel boots, /init (= build/meshgate) runs boot_init,
#      finds the config volume;
#   2. the console prompt appears, `status` shows the DPDK port up;
#   3. mTLS requests from the host through hostfwd: 200 for the allowed
#      SPIFFE identity, refused for another;
#   4. `shutdown` powers the VM off cleanly;
#   5. the hybrid ISO boots (BIOS, as a CD) to the prompt.
# Steps 2-5 need the console (`meshgate> `) in build/meshgate and say
# "# skip" until it is there. Prints boot-to-prompt times and image sizes.
# Env: IMAGE_TEST_KEEP=1 keeps build/test-image (serial logs) afterwards.
set -u
source "$(dirname "$0")/../lib.sh"
top=$TESTS_TOP
img=$top/build/images
work=$top/build/test-image
rm -rf "$work"
mkdir -p "$work"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
}
trap cleanup EXIT

# ------------------------------------------------------------------ image
qcow=$img/meshgate.qcow2
iso=$img/meshgate.iso
stale=0
[ -f "$qcow" ] && [ -f "$iso" ] || stale=1
for f in "$MESHGATE" "$top"/images/*; do [ "$f" -nt "$qcow" ] && stale=1; done
# build.sh records which /init the image holds
[ "$(cat "$img/meshgate.init" 2>/dev/null)" = "$(sha256sum < "$MESHGATE" 2>/dev/null)" ] || stale=1
if [ ! -x "$MESHGATE" ]; then
	not_ok "image: $MESHGATE is not built"
	tap_exit
fi
if [ $stale = 1 ]; then
	if bash "$top/images/build.sh" --init "$MESHGATE" >"$work/build.log" 2>&1; then
		ok "image builds"
	else
		not_ok "image builds"; tail -20 "$work/build.log"; tap_exit
	fi
fi
mb() { stat -c %s "$1" | awk '{printf "%.1f MB", $1 / 1048576}'; }
echo "# image sizes: iso $(mb "$iso"), qcow2 $(mb "$qcow")"

# ---------------------------------------------------------- config volume
has_console=0
grep -q 'meshgate> ' "$MESHGATE" && has_console=1
vol=$work/vol
mkdir -p "$vol"
cp "$top/tests/image/appliance.yaml" "$vol/meshgate.yaml"
have_pki=0
if [ -x "$top/tests/pki/gen.sh" ] || [ -f "$top/tests/pki/gen.sh" ]; then
	if bash "$top/tests/pki/gen.sh" "$top/build/pki" >"$work/pki.log" 2>&1; then
		have_pki=1
		cp "$top/build/pki"/{ca.pem,gateway-chain.pem,gateway.key} "$vol/"
	fi
fi
rm -f "$work/config.img"
mkfs.vfat -C -n MESHGATE "$work/config.img" 4096 >/dev/null &&
	mcopy -i "$work/config.img" "$vol"/* ::/ &&
	check "config volume built (FAT, label MESHGATE)" true ||
	{ not_ok "config volume built"; tap_exit; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --------------------------------------------------------------- VM helpers
# vm_start NAME QEMU-ARGS...: serial on a pipe pair, output to $work/NAME.serial
vm_start() {
	local name=$1; shift
	vm_dir=$work/$name
	mkdir -p "$vm_dir"
	mkfifo "$vm_dir/s.in" "$vm_dir/s.out"
	vm_log=$vm_dir/serial.log
	: > "$vm_log"
	vm_t0=$(date +%s.%N)
	qemu-system-x86_64 -machine pc,accel=tcg -cpu max -m 1024 -smp 1 -vga none -display none \
		-no-reboot -nic none -device virtio-rng-pci \
		-chardev pipe,id=s0,path="$vm_dir/s" -serial chardev:s0 \
		"$@" >"$vm_dir/qemu.log" 2>&1 &
	vm_pid=$!
	pids+=("$vm_pid")
	cat "$vm_dir/s.out" >>"$vm_log" &
	pids+=($!)
	exec {vm_in}>"$vm_dir/s.in"
}
vm_alive() { kill -0 "$vm_pid" 2>/dev/null; }
# vm_wait FIXED-STRING SECONDS: 0 when it shows on the console
vm_wait() {
	local deadline=$(( $(date +%s) + $2 ))
	while [ "$(date +%s)" -lt "$deadline" ]; do
		grep -qF -- "$1" "$vm_log" && return 0
		vm_alive || { grep -qF -- "$1" "$vm_log"; return; }
		sleep 0.2
	done
	return 1
}
vm_elapsed() { echo "$(date +%s.%N) $vm_t0" | awk '{printf "%.1f", $1 - $2}'; }
vm_send() { printf '%s\r' "$1" >&"$vm_in"; }
vm_fatal() { tr -d '\r' < "$vm_log" | grep -m1 'FATAL' ; }
vm_stop() {
	exec {vm_in}>&-
	if vm_alive; then kill "$vm_pid"; fi
	wait "$vm_pid" 2>/dev/null
}
show_log() { echo "   --- $1 (last lines)"; tr -d '\r' < "$vm_log" | grep -v '^\s*$' | tail -15 | sed 's/^/   | /'; }

# ------------------------------------------------------------- 1. qcow2 boot
port=$(free_port)
vm_start qcow2 \
	-drive file="$qcow",if=virtio,format=qcow2,snapshot=on \
	-drive file="$work/config.img",if=virtio,format=raw,readonly=on \
	-netdev user,id=n0,net=198.18.4.0/24,hostfwd=tcp:127.0.0.1:$port-198.18.4.15:8443 \
	-device virtio-net-pci,netdev=n0,addr=0x4,mac=52:54:00:4d:47:01
if vm_wait "boot: config: config volume vdb (vfat), 1 file(s)" 120; then
	ok "qcow2: kernel boots, /init runs boot_init, config volume found"
	echo "# qcow2: boot_init done after $(vm_elapsed) s"
else
	fatal=$(vm_fatal)
	not_ok "qcow2: kernel boots, /init runs boot_init, config volume found${fatal:+ ($fatal)}"
	show_log "$vm_dir/serial.log"
	tap_exit
fi
# The configured NIC must be handed to DPDK (drivers/boot.h boot_bind_nics)
# before the EAL starts; until appliance/run.c does, the appliance cannot open it.
binds=0
grep -q 'boot_bind_nics' "$top"/appliance/*.c 2>/dev/null && binds=1
if [ $has_console = 0 ] || [ $binds = 0 ]; then
	why="no console prompt in $MESHGATE yet"
	[ $binds = 0 ] && why="appliance/run.c does not call boot_bind_nics yet (NIC stays on virtio-pci)"
	echo "# skip qcow2 console, status, mTLS, shutdown and the ISO boot: $why"
	vm_wait "meshgate" 30 >/dev/null
	vm_stop
	tap_exit
fi

# -------------------------------------------------------- 2. console, status
if vm_wait "meshgate> " 90; then
	ok "qcow2: console prompt"
	echo "# qcow2: boot to prompt $(vm_elapsed) s"
else
	fatal=$(vm_fatal)
	not_ok "qcow2: console prompt${fatal:+ ($fatal)}"
	show_log "$vm_dir/serial.log"
	vm_stop; tap_exit
fi
mark=$(wc -l < "$vm_log")
vm_send status
sleep 3
if tail -n +"$mark" "$vm_log" | tr -d '\r' | grep -qiE '(net0|port|link).*\bup\b'; then
	ok "qcow2: status shows the DPDK port up"
else
	not_ok "qcow2: status shows the DPDK port up"
	show_log "$vm_dir/serial.log"
fi

# ---------------------------------------------------------------- 3. mTLS
if [ $have_pki = 0 ]; then
	echo "# skip mTLS through hostfwd: tests/pki/gen.sh failed or is missing"
else
	pki=$top/build/pki
	req() {
		curl -s -o /dev/null -w '%{http_code}' --max-time 30 \
			--resolve "meshgate.test:$port:127.0.0.1" --cacert "$pki/ca.pem" \
			--cert "$pki/$1.pem" --key "$pki/$1.key" "https://meshgate.test:$port/"
	}
	code=$(req frontend); code=${code:-000}
	expect_eq "qcow2: mTLS frontend (allowed) through hostfwd gets 200" "$code" 200
	code=$(req other); code=${code:-000}
	if [ "$code" != 200 ]; then ok "qcow2: mTLS other identity refused ($code)"
	else not_ok "qcow2: mTLS other identity refused (got 200)"; fi
fi

# ------------------------------------------------------------- 4. shutdown
vm_send shutdown
deadline=$(( $(date +%s) + 60 ))
while vm_alive && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.2; done
if ! vm_alive && grep -q 'reboot: Power down' "$vm_log"; then
	ok "qcow2: shutdown powers the VM off"
else
	not_ok "qcow2: shutdown powers the VM off"
	show_log "$vm_dir/serial.log"
fi
vm_stop

# ------------------------------------------------------------ 5. ISO (BIOS)
vm_start iso -cdrom "$iso" -boot d \
	-drive file="$work/config.img",if=virtio,format=raw,readonly=on \
	-netdev user,id=n0,net=198.18.4.0/24 \
	-device virtio-net-pci,netdev=n0,addr=0x4
if vm_wait "meshgate> " 150; then
	ok "iso (BIOS, CD): console prompt"
	echo "# iso: boot to prompt $(vm_elapsed) s"
else
	not_ok "iso (BIOS, CD): console prompt"
	show_log "$vm_dir/serial.log"
fi
vm_stop
[ "${IMAGE_TEST_KEEP:-0}" = 1 ] || rm -rf "$work"/*/s.in "$work"/*/s.out
tap_exit
