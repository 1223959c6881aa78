# Boot images (issue #5): `make image` builds build/images/meshgate.iso (hybrid:
# CD or USB stick / disk, BIOS and UEFI) and build/images/meshgate.qcow2 from
# Debian's own kernel package. `make image IMAGE_FLAVOUR=cloud` builds
# meshgate-cloud.{iso,qcow2} with Debian's cloud kernel (VMs only).
# tests/image/test_image.sh boots them under QEMU (TCG) in `make test`.
IMAGE_PKGS := grub-pc-bin grub-efi-amd64-bin grub-common xorriso mtools dosfstools \
	kmod xz-utils qemu-utils python3 file binutils
TEST_PKGS += qemu-system-x86 ovmf fdisk $(IMAGE_PKGS)
IMAGE_FLAVOUR ?= generic

.PHONY: image image-deps
image-deps: deps
	$(call install_missing,$(IMAGE_PKGS))

image: image-deps
	@$(MAKE) --no-print-directory all
	@bash images/build.sh --flavour $(IMAGE_FLAVOUR)

# drivers/boot.c on a fake sysfs tree (tests/image/test_boot.c): a cmocka
# binary beside the unit tests, linked with drivers/boot.o alone.
UNIT_BINS += $(BUILD)/tests/test_boot
$(BUILD)/tests/test_boot: tests/image/test_boot.c $(BUILD)/dobj/drivers/boot.o
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ -lcmocka

# A stand-in /init for checking drivers/boot.c alone (images/README.md).
.PHONY: image-probe
$(BUILD)/images/boot_probe: tests/image/boot_probe.c $(BUILD)/dobj/drivers/boot.o
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -static -o $@ $^
image-probe: image-deps $(BUILD)/images/boot_probe
	@bash images/build.sh --init $(BUILD)/images/boot_probe --name probe
