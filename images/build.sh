#!/usr/bin/env bash
# Builds the meshgate boot images from Debian's own kernel package:
#
#   build/images/meshgate.iso     hybrid ISO: CD or USB stick / disk, BIOS and UEFI
#   build/images/meshgate.qcow2   the same image as a VM disk (qemu-img convert)
#
# usage: images/build.sh [--flavour generic|cloud] [--init FILE] [--name NAME]
#   --flavour cloud  Debian's cloud kernel (boots ~2x faster under emulation;
#                    no AMD IOMMU, no Intel NIC drivers): VMs only.
#                    Output is NAME-cloud.{iso,qcow2}.
#   --init FILE      the binary that becomes /init (default build/meshgate)
#   --name NAME      output base name (default meshgate)
#
# Nothing on the host is touched: the kernel .deb is fetched with
# `apt-get download` into build/images/deb and unpacked with dpkg-deb -x;
# the initramfs is written by images/mkcpio.py (no root, no mknod).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
out=$top/build/images
flavour=generic
init=$top/build/meshgate
name=meshgate

while [ $# -gt 0 ]; do
	case $1 in
	--flavour) flavour=$2; shift 2 ;;
	--init) init=$2; shift 2 ;;
	--name) name=$2; shift 2 ;;
	*) echo "images/build.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
case $flavour in
generic) meta=linux-image-amd64; suffix= ;;
cloud) meta=linux-image-cloud-amd64; suffix=-cloud ;;
*) echo "images/build.sh: --flavour must be generic or cloud" >&2; exit 2 ;;
esac
[ -x "$init" ] || { echo "images/build.sh: $init not found: build it first (make)" >&2; exit 1; }
file "$init" | grep -q 'statically linked' ||
	{ echo "images/build.sh: $init must be statically linked (it is the whole userland)" >&2; exit 1; }

say() { echo "image: $*"; }
mkdir -p "$out/deb"

# ------------------------------------------------------------- kernel package
# The metapackage names the current versioned kernel package.
resolve() { apt-cache depends "$meta" 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}'; }
pkg=$(resolve || true)
if [ -z "$pkg" ]; then
	say "apt lists have no $meta: running apt-get update"
	apt-get update -q >/dev/null
	pkg=$(resolve)
fi
[ -n "$pkg" ] || { echo "images/build.sh: cannot resolve $meta" >&2; exit 1; }
# fetch PKG: prints the path of PKG's .deb in build/images/deb (downloaded once)
fetch() {
	local deb
	deb=$(ls "$out"/deb/"$1"_*_amd64.deb 2>/dev/null | tail -1 || true)
	if [ -z "$deb" ]; then
		say "fetching $1" >&2
		(cd "$out/deb" && apt-get download -q "$1" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2 || true)
		deb=$(ls "$out"/deb/"$1"_*_amd64.deb 2>/dev/null | tail -1 || true)
		[ -n "$deb" ] || { echo "images/build.sh: apt-get download $1 failed" >&2; return 1; }
	fi
	echo "$deb"
}
deb=$(fetch "$pkg")
kroot=$out/kernel$suffix
if [ ! -f "$kroot/.unpacked" ] || [ "$(cat "$kroot/.unpacked")" != "$(basename "$deb")" ]; then
	say "unpacking $(basename "$deb")"
	rm -rf "$kroot"
	mkdir -p "$kroot"
	dpkg-deb -x "$deb" "$kroot"
	basename "$deb" > "$kroot/.unpacked"
fi
kver=$(ls "$kroot/lib/modules" | head -1)
vmlinuz=$kroot/boot/vmlinuz-$kver
[ -f "$vmlinuz" ] || { echo "images/build.sh: no kernel in $deb" >&2; exit 1; }
# Debian ships no modules.dep in the package (postinst runs depmod): make one
# inside the unpacked tree only.
[ -f "$kroot/lib/modules/$kver/modules.dep" ] || depmod -b "$kroot" "$kver"

# ----------------------------------------------------------------- initramfs
stage=$out/initramfs$suffix
rm -rf "$stage"
mkdir -p "$stage"/{dev,proc,sys,run,tmp,var,lib/modules} 
ln -s ../run "$stage/var/run"
cp "$init" "$stage/init"
strip --strip-debug "$stage/init" 2>/dev/null || true
chmod 755 "$stage/init"

list=$stage/lib/modules/load.list
for l in load nic; do
	echo "# Written by images/build.sh for $kver ($flavour): load in this order." \
		> "$stage/lib/modules/$l.list"
done
declare -A seen=()
skipped=()
while read -r mod _; do
	[ -z "$mod" ] || [[ $mod == \#* ]] && continue
	if [ "$mod" = "[nic]" ]; then list=$stage/lib/modules/nic.list; continue; fi
	if ! deps=$(modprobe --show-depends -d "$kroot" -S "$kver" "$mod" 2>/dev/null); then
		skipped+=("$mod")
		continue
	fi
	while read -r kind path params; do
		[ "$kind" = insmod ] || continue      # "builtin X": nothing to load
		rel=${path#"$kroot"}
		[ -n "${seen[$rel]:-}" ] && continue
		seen[$rel]=1
		dest=$stage$rel
		mkdir -p "$(dirname "$dest")"
		case $rel in
		# The running kernel may lack module decompression: ship plain .ko.
		*.ko.xz) xz -dc "$path" > "${dest%.xz}"; rel=${rel%.xz} ;;
		*.ko.zst) zstd -qdc "$path" > "${dest%.zst}"; rel=${rel%.zst} ;;
		*.ko.gz) gzip -dc "$path" > "${dest%.gz}"; rel=${rel%.gz} ;;
		*) cp "$path" "$dest" ;;
		esac
		echo "$rel${params:+ $params}" >> "$list"
	done <<< "$deps"
done < "$top/images/modules.list"
[ ${#skipped[@]} -eq 0 ] || say "$flavour kernel lacks modules: ${skipped[*]} (skipped)"
nmods=$(grep -c '^/' "$stage/lib/modules/load.list")
nnic=$(grep -c '^/' "$stage/lib/modules/nic.list" || true)

initrd=$out/initrd$suffix.img
python3 "$top/images/mkcpio.py" "$stage" "$initrd.cpio" --node dev/console:c:5:1:600
# XZ: the smallest image; the kernel needs the CRC32 check, not CRC64.
xz -T1 --check=crc32 -6 -c "$initrd.cpio" > "$initrd"
rm -f "$initrd.cpio"

# ----------------------------------------------------------------------- ISO
iso_tree=$out/iso$suffix
rm -rf "$iso_tree"
mkdir -p "$iso_tree/boot/grub"
cp "$vmlinuz" "$iso_tree/boot/vmlinuz"
cp "$initrd" "$iso_tree/boot/initrd.img"
cp "$top/images/grub.cfg" "$iso_tree/boot/grub/grub.cfg"
iso=$out/$name$suffix.iso
# BIOS: grub-mkrescue's El Torito image and hybrid MBR, trimmed GRUB (no
# locales, themes or fonts, only the modules grub.cfg uses).
# UEFI, with or without Secure Boot: Debian's signed chain instead of
# grub-mkrescue's unsigned GRUB: shim (signed by Microsoft's UEFI CA) ->
# Debian's signed GRUB for removable media (gcdx64.efi: finds its root by
# /.disk/info, then reads /boot/grub/grub.cfg) -> Debian's signed kernel,
# which under Secure Boot locks down and loads only signed modules (Debian's
# are). So the ISO is assembled again with xorriso around a new efi.img.
base=$out/$name$suffix-base.iso
grub-mkrescue -o "$base" --locales= --themes= --fonts= --compress=xz \
	--install-modules="linux normal iso9660 part_msdos part_gpt fat serial terminal echo test" \
	"$iso_tree" -- -volid MESHGATE_BOOT >"$out/grub-mkrescue.log" 2>&1 ||
	{ cat "$out/grub-mkrescue.log" >&2; exit 1; }
rm -rf "$iso_tree"
xorriso -osirrox on -indev "$base" -extract / "$iso_tree" >"$out/xorriso.log" 2>&1 ||
	{ cat "$out/xorriso.log" >&2; exit 1; }
rm -f "$base"
chmod -R u+w "$iso_tree"
# grub-mkrescue's EFI GRUB and its Mac (HFS+) equipment are replaced
rm -rf "$iso_tree"/{efi.img,boot.catalog,System,mach_kernel} "$iso_tree/boot/grub/x86_64-efi"
mkdir -p "$iso_tree/.disk"
echo "meshgate $kver" > "$iso_tree/.disk/info"

sb=$out/efi-signed
for p in shim-signed grub-efi-amd64-signed; do
	d=$(fetch "$p")
	if [ ! -f "$sb/.$p" ] || [ "$(cat "$sb/.$p")" != "$(basename "$d")" ]; then
		mkdir -p "$sb"
		dpkg-deb -x "$d" "$sb"
		basename "$d" > "$sb/.$p"
	fi
done
shim=$sb/usr/lib/shim/shimx64.efi.signed
grubefi=$sb/usr/lib/grub/x86_64-efi-signed/gcdx64.efi.signed
[ -f "$shim" ] && [ -f "$grubefi" ] ||
	{ echo "images/build.sh: no $shim or $grubefi in the signed packages" >&2; exit 1; }
efi_kb=$(( ($(stat -c %s "$shim") + $(stat -c %s "$grubefi")) / 1024 + 512 ))
rm -f "$iso_tree/efi.img"
mkfs.vfat -C -n MESHGATEEFI "$iso_tree/efi.img" "$efi_kb" >/dev/null
mmd -i "$iso_tree/efi.img" ::/EFI ::/EFI/BOOT
mcopy -i "$iso_tree/efi.img" "$shim" ::/EFI/BOOT/BOOTX64.EFI
mcopy -i "$iso_tree/efi.img" "$grubefi" ::/EFI/BOOT/grubx64.efi
rm -f "$iso"
xorriso -as mkisofs -graft-points -r -V MESHGATE_BOOT -o "$iso" \
	-b boot/grub/i386-pc/eltorito.img -no-emul-boot -boot-load-size 4 -boot-info-table \
	--grub2-boot-info --grub2-mbr /usr/lib/grub/i386-pc/boot_hybrid.img \
	-eltorito-alt-boot --efi-boot efi.img -efi-boot-part --efi-boot-image \
	--protective-msdos-label "$iso_tree" >"$out/xorriso.log" 2>&1 ||
	{ cat "$out/xorriso.log" >&2; exit 1; }

# ---------------------------------------------------------------------- qcow2
# A hybrid ISO boots as a disk (BIOS via its MBR, UEFI via its EFI partition).
qcow=$out/$name$suffix.qcow2
qemu-img convert -q -f raw -O qcow2 -c "$iso" "$qcow"

sha256sum < "$init" > "$out/$name$suffix.init"   # which /init this image holds

sz() { stat -c %s "$1" | awk '{printf "%.1f MB", $1 / 1048576}'; }
say "kernel $kver ($flavour) $(sz "$vmlinuz"), $nmods+$nnic modules, initramfs $(sz "$initrd")"
say "UEFI: $(cat "$sb/.shim-signed" "$sb/.grub-efi-amd64-signed" | tr '\n' ' ')(Secure Boot chain)"
say "$iso $(sz "$iso")"
say "$qcow $(sz "$qcow")"
