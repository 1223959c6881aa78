#!/usr/bin/env bash
# Boots the meshgate image under QEMU (TCG, never KVM; -cpu max because
# Debian's DPDK needs SSE4.2) and drives it through its serial console, as an
# operator would. Every VM: -nodefaults -nic none (no stray e1000 or empty
# CD drive), one virtio NIC on QEMU user networking 198.18.4.0/24 whose only
# way in is a hostfwd on 127.0.0.1, the serial console on a pipe pair,
# -no-reboot (panic=-1 in grub.cfg then ends QEMU on a kernel panic).
#
#   1. qcow2 as a virtio disk, UEFI with Secure Boot (Debian's OVMF with
#      Microsoft's keys, q35, Intel IOMMU: the NIC goes to vfio-pci; BIOS if
#      the ovmf package is missing), config volume (FAT, label MESHGATE)
#      naming the NIC by MAC: Secure Boot and lockdown reported, the prompt
#      appears, `status` shows the DPDK port up, mTLS from the host through
#      hostfwd gets 200 for the allowed SPIFFE identity and 403 for another,
#      `reload` works, `shutdown` powers the VM off;
#   2. the hybrid ISO as a CD, BIOS, no IOMMU and no config volume: the
#      embedded demo on the first virtio NIC, bound to uio_pci_generic;
#      prompt, `status` port up, `shutdown`;
#   3. the ISO written to a USB stick (BIOS, xhci, usb-storage) with one more
#      partition holding a cloud-init NoCloud seed (label cidata) whose
#      user-data is refused: PID 1 prints the reason (FILE:LINE: field) and
#      keeps the console alive; `poweroff` typed there powers the VM off.
# Prints boot-to-prompt times and image sizes.
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
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	[ "${IMAGE_TEST_KEEP:-0}" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT
trap "exit 130" INT TERM
t_start=$(date +%s)

# ------------------------------------------------------------------ image
qcow=$img/meshgate.qcow2
iso=$img/meshgate.iso
if [ ! -x "$MESHGATE" ]; then
	not_ok "image: $MESHGATE is not built"
	tap_exit
fi
stale=0
[ -f "$qcow" ] && [ -f "$iso" ] || stale=1
[ $stale = 1 ] || for f in "$MESHGATE" "$top"/images/*; do [ "$f" -nt "$qcow" ] && stale=1; done
# build.sh records which /init the image holds
[ "$(cat "$img/meshgate.init" 2>/dev/null)" = "$(sha256sum < "$MESHGATE")" ] || stale=1
if [ $stale = 1 ]; then
	t0=$(date +%s)
	if bash "$top/images/build.sh" --init "$MESHGATE" >"$work/build.log" 2>&1; then
		ok "image builds (images/build.sh)"
		echo "# image build: $(( $(date +%s) - t0 )) s"
	else
		not_ok "image builds (images/build.sh)"; tail -20 "$work/build.log"; tap_exit
	fi
fi
mb() { stat -c %s "$1" | awk '{printf "%.1f MB", $1 / 1048576}'; }
echo "# image sizes: iso $(mb "$iso"), qcow2 $(mb "$qcow"), kernel $(mb "$img/iso/boot/vmlinuz"), initramfs $(mb "$img/iso/boot/initrd.img")"

# ---------------------------------------------------------- config volume
pki=$top/build/pki
if ! bash "$top/tests/pki/gen.sh" "$pki" >"$work/pki.log" 2>&1; then
	not_ok "test PKI (tests/pki/gen.sh)"; cat "$work/pki.log"; tap_exit
fi
nic_mac=52:54:00:4d:47:01
vol=$work/vol
mkdir -p "$vol"
# The NIC by MAC (resolved through its kernel driver, then bound to DPDK).
sed "s/device: \"0000:00:04.0\"/device: \"$nic_mac\"/" "$top/tests/image/appliance.yaml" > "$vol/meshgate.yaml"
grep -q "$nic_mac" "$vol/meshgate.yaml" || { not_ok "config volume: NIC MAC substituted"; tap_exit; }
cp "$pki"/{ca.pem,gateway-chain.pem,gateway.key} "$vol/"
mkfs.vfat -C -n MESHGATE "$work/config.img" 4096 >/dev/null &&
	mcopy -i "$work/config.img" "$vol"/* ::/ ||
	{ not_ok "config volume built (FAT, label MESHGATE)"; tap_exit; }

# A USB stick: the ISO written to a 48 MB stick, plus a GPT partition after
# the image's own ones, holding a NoCloud seed (FAT, label CIDATA)
# whose user-data names a certificate that is not there.
seed=$work/seed
mkdir -p "$seed"
{ echo "#cloud-config"; cat "$top/tests/image/appliance.yaml"; } |
	sed 's/certificateChain: gateway-chain.pem/certificateChain: missing-chain.pem/' > "$seed/user-data"
printf 'instance-id: meshgate-test\nlocal-hostname: meshgate\n' > "$seed/meta-data"
cp "$pki"/{ca.pem,gateway.key} "$seed/"
stick=$work/stick.img
cp "$iso" "$stick" && truncate -s 48M "$stick" &&
	sfdisk -q --relocate gpt-bak-std "$stick" 2>/dev/null &&
	echo ',,EBD0A0A2-B9E5-4433-87C0-68B6B72699C7' | sfdisk -q --append "$stick" 2>/dev/null &&
	read -r p_num p_start p_size < <(sfdisk -d "$stick" |
		awk -F'[=,]' '$1 ~ /stick.img[0-9]+ :/ {n = $1; sub(/.*stick.img/, "", n); l = (n+0) " " ($2+0) " " ($4+0)} END {print l}') &&
	[ "${p_size:-0}" -gt 0 ] &&
	mkfs.vfat -C -n CIDATA "$work/seed.img" $((p_size / 2)) >/dev/null &&
	mcopy -i "$work/seed.img" "$seed"/* ::/ &&
	dd if="$work/seed.img" of="$stick" bs=512 seek="$p_start" conv=notrunc status=none ||
	{ not_ok "USB stick image: ISO + a partition with a NoCloud seed (sfdisk, FAT)"; tap_exit; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --------------------------------------------------------------- VM helpers
# vm_start NAME QEMU-ARGS...: serial on a pipe pair, output in $vm_log.
vm_start() {
	local name=$1; shift
	vm_name=$name
	vm_dir=$work/$name
	mkdir -p "$vm_dir"
	mkfifo "$vm_dir/s.in" "$vm_dir/s.out"
	vm_log=$vm_dir/serial.log
	: > "$vm_log"
	vm_t0=$(date +%s.%N)
	qemu-system-x86_64 -accel tcg -cpu max -m 1024 -smp 1 -nodefaults -vga none -display none \
		-no-reboot -nic none -device virtio-rng-pci \
		-chardev pipe,id=s0,path="$vm_dir/s" -serial chardev:s0 \
		"$@" >"$vm_dir/qemu.log" 2>&1 &
	vm_pid=$!
	pids+=("$vm_pid")
	cat "$vm_dir/s.out" >>"$vm_log" &
	vm_cat=$!
	pids+=("$vm_cat")
	exec {vm_in}>"$vm_dir/s.in"
}
vm_alive() { kill -0 "$vm_pid" 2>/dev/null; }
# vm_wait FIXED-STRING SECONDS [FROM-BYTE]: 0 when it shows on the console
vm_wait() {
	local deadline=$(( $(date +%s) + $2 )) from=${3:-0}
	while [ "$(date +%s)" -lt "$deadline" ]; do
		tail -c +$((from + 1)) "$vm_log" | grep -qaF -- "$1" && return 0
		vm_alive || { tail -c +$((from + 1)) "$vm_log" | grep -qaF -- "$1"; return; }
		sleep 0.2
	done
	return 1
}
vm_mark() { stat -c %s "$vm_log"; }
vm_since() { tail -c +$(($1 + 1)) "$vm_log" | tr -d '\r'; }
vm_elapsed() { echo "$(date +%s.%N) $vm_t0" | awk '{printf "%.1f", $1 - $2}'; }
vm_send() { printf '%s\r' "$1" >&"$vm_in"; }
vm_fatal() { tr -d '\r' < "$vm_log" | grep -am1 'FATAL' ; }
# vm_off SECONDS: 0 when QEMU exits by itself after the guest powered off
vm_off() {
	local deadline=$(( $(date +%s) + $1 ))
	while vm_alive && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.2; done
	! vm_alive && grep -qa 'reboot: Power down' "$vm_log"
}
vm_stop() {
	exec {vm_in}>&-
	if vm_alive; then kill "$vm_pid"; fi
	wait "$vm_pid" 2>/dev/null
	wait "$vm_cat" 2>/dev/null
}
show_log() {
	echo "   --- $vm_name serial console (last lines)"
	tr -d '\r' < "$vm_log" | sed 's/\x1b\[[0-9;?]*[A-Za-z]//g' | grep -av '^\s*$' | tail -15 | sed 's/^/   | /'
}
# prompt_stage NAME: the appliance starts and its console prompt appears;
# prints boot-to-prompt time. 0 when the appliance runs (even without the
# prompt: the later stages then still say what works).
prompt_stage() {
	if ! vm_wait "meshgate: ready" 150; then
		local fatal; fatal=$(vm_fatal)
		not_ok "$1: appliance starts${fatal:+ ($fatal)}"
		show_log
		return 1
	fi
	local ready; ready=$(vm_elapsed)
	if vm_wait "meshgate> " 15; then
		ok "$1: console prompt 'meshgate> '"
		echo "# $1: boot to prompt $(vm_elapsed) s ('meshgate: ready' at $ready s)"
	else
		not_ok "$1: console prompt 'meshgate> ' (ready at $ready s, no prompt: console in line mode?)"
	fi
	return 0
}
# status_stage NAME DRIVER: `status` shows the port up, and boot bound the NIC to DRIVER
status_stage() {
	local mark; mark=$(vm_mark)
	vm_send status
	vm_wait "pool" 20 "$mark"
	sleep 0.5
	if vm_since "$mark" | grep -qaE '^\s*net0\s.*\blink up\b'; then
		ok "$1: status shows the DPDK port net0 link up"
	else
		not_ok "$1: status shows the DPDK port net0 link up"
		show_log
	fi
	if grep -qa "boot: port net0: NIC .* now on $2" "$vm_log"; then
		ok "$1: NIC bound to $2"
	else
		not_ok "$1: NIC bound to $2"
	fi
}
shutdown_stage() {
	vm_send shutdown
	if vm_off 60; then
		ok "$1: shutdown powers the VM off"
	else
		not_ok "$1: shutdown powers the VM off"
		show_log
	fi
	vm_stop
}

# ------------------------- 1. qcow2, UEFI + Secure Boot, IOMMU, config volume
ovmf=/usr/share/OVMF
if [ -f $ovmf/OVMF_CODE_4M.secboot.fd ] && [ -f $ovmf/OVMF_VARS_4M.ms.fd ]; then
	# Microsoft's keys enrolled, Secure Boot on: what a server ships with
	cp $ovmf/OVMF_VARS_4M.ms.fd "$work/efivars.fd"
	firmware=(-machine q35 -drive if=pflash,format=raw,readonly=on,file=$ovmf/OVMF_CODE_4M.secboot.fd
		  -drive if=pflash,format=raw,file="$work/efivars.fd")
	fw="UEFI Secure Boot"
	fw_line="boot: firmware UEFI, Secure Boot on, kernel lockdown integrity"
else
	firmware=(-machine q35)
	fw=BIOS
	fw_line="boot: firmware BIOS"
	echo "# skip UEFI and Secure Boot: Debian's ovmf package is not installed; the qcow2 boots with BIOS"
fi
port=$(free_port)
vm_start qcow2 "${firmware[@]}" \
	-drive file="$qcow",if=virtio,format=qcow2,snapshot=on \
	-drive file="$work/config.img",if=virtio,format=raw,readonly=on \
	-device intel-iommu,intremap=on \
	-netdev user,id=n0,net=198.18.4.0/24,restrict=on,hostfwd=tcp:127.0.0.1:$port-198.18.4.15:8443 \
	-device virtio-net-pci,netdev=n0,addr=0x4,mac=$nic_mac,iommu_platform=on,disable-legacy=on
if vm_wait "boot: config: config volume vdb (vfat), 1 file(s)" 120; then
	ok "qcow2 ($fw): kernel boots, /init runs boot_init, config volume found"
else
	fatal=$(vm_fatal)
	not_ok "qcow2 ($fw): kernel boots, /init runs boot_init, config volume found${fatal:+ ($fatal)}"
	show_log
	tap_exit
fi
if grep -qa "$fw_line" "$vm_log"; then
	ok "qcow2: '$fw_line'"
else
	not_ok "qcow2: '$fw_line'"
	tr -d '\r' < "$vm_log" | grep -a '^boot: firmware'
fi
if prompt_stage "qcow2 ($fw)"; then
	status_stage "qcow2 ($fw, IOMMU)" vfio-pci
	req() {
		curl -s -o "$work/body" -w '%{http_code}' --max-time 30 \
			--resolve "meshgate.test:$port:127.0.0.1" --cacert "$pki/ca.pem" \
			--cert "$pki/$1.pem" --key "$pki/$1.key" "https://meshgate.test:$port/"
	}
	code=$(req frontend); code=${code:-000}
	expect_eq "qcow2: mTLS from the host through hostfwd, allowed identity (prod/sa/frontend)" "$code" 200
	code=$(req other); code=${code:-000}
	expect_eq "qcow2: mTLS, identity without an ALLOW rule (prod/sa/other) refused" "$code" 403
	grep -qa "RBAC" "$work/body" || echo "# 403 body: $(head -c 200 "$work/body")"
	# The NIC was chosen by MAC; bound to DPDK it has no kernel interface
	# (and no MAC in sysfs) any more: a reload must still find it.
	mark=$(vm_mark)
	vm_send reload
	if vm_wait "reload: generation 2 in service" 30 "$mark"; then
		ok "qcow2: reload re-reads the config volume (NIC chosen by MAC, already bound)"
	else
		not_ok "qcow2: reload re-reads the config volume (NIC chosen by MAC, already bound)"
		show_log
	fi
	code=$(req frontend); code=${code:-000}
	expect_eq "qcow2: mTLS after the reload, allowed identity" "$code" 200
	shutdown_stage "qcow2 ($fw)"
else
	vm_stop
fi

# --------------------------------- 2. ISO as a CD, BIOS, IOMMU, demo default
vm_start iso -machine q35 -cdrom "$iso" -boot d \
	-netdev user,id=n0,net=198.18.4.0/24,restrict=on \
	-device virtio-net-pci,netdev=n0,addr=0x4
if prompt_stage "iso (BIOS, CD)"; then
	if grep -qa "boot: no config volume: embedded demo on NIC 0000:00:04.0 (virtio-net)" "$vm_log"; then
		ok "iso: no config volume: embedded demo on the first virtio NIC"
	else
		not_ok "iso: no config volume: embedded demo on the first virtio NIC"
	fi
	status_stage "iso (BIOS, no IOMMU)" uio_pci_generic
	shutdown_stage "iso"
else
	vm_stop
fi

# ---------- 3. USB stick, BIOS: cloud-init seed refused, PID 1 stays alive
vm_start usb -machine pc -device qemu-xhci \
	-drive if=none,id=stick,file="$stick",format=raw,snapshot=on \
	-device usb-storage,drive=stick,bootindex=0 \
	-netdev user,id=n0,net=198.18.4.0/24,restrict=on \
	-device virtio-net-pci,netdev=n0,addr=0x4
if vm_wait "meshgate: FATAL:" 150 && vm_wait "type 'poweroff' or 'reboot'" 10; then
	if grep -qa "boot: config: cloud-init NoCloud user-data sda$p_num (vfat)" "$vm_log"; then
		ok "usb (BIOS, xhci): boots, finds the NoCloud seed on the stick's partition $p_num"
	else
		not_ok "usb (BIOS, xhci): boots, finds the NoCloud seed on the stick's partition $p_num"
		show_log
	fi
	if tr -d '\r' < "$vm_log" | grep -qaE "user-data:[0-9]+: spec.identity.certificateChain: .*missing-chain.pem"; then
		ok "usb: refused user-data named by FILE:LINE: field and the missing file"
	else
		not_ok "usb: refused user-data named by FILE:LINE: field and the missing file"
		show_log
	fi
	sleep 2
	mark=$(vm_mark)
	vm_send "help"
	if vm_wait "meshgate: FATAL:" 20 "$mark" && vm_alive; then
		ok "PID 1 fatal error: reason printed, console stays alive and answers"
	else
		not_ok "PID 1 fatal error: reason printed, console stays alive and answers"
		show_log
	fi
	vm_send poweroff
	if vm_off 60; then ok "fatal console: 'poweroff' powers the VM off"
	else not_ok "fatal console: 'poweroff' powers the VM off"; show_log; fi
else
	not_ok "usb stick with a refused cloud-init seed: PID 1 prints FATAL and the reason"
	show_log
fi
vm_stop
echo "# image test: $(( $(date +%s) - t_start )) s in all"
tap_exit
