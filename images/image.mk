# Boot images (issue #5): `make image` builds build/images/meshgate.iso (hybrid:
# CD or USB stick / disk, BIOS and UEFI) and build/images/meshgate.qcow2 from
# Debian's own kernel package. `make image IMAGE_FLAVOUR=cloud` builds
# meshgate-cloud.{iso,qcow2} with Debian's cloud kernel (VMs only).
# tests/image/test_image.sh boots them under QEMU (TCG) in `make test`.
IMAGE_PKGS := grub-pc-bin grub-efi-amd64-bin grub-common xorriso mtools dosfstools \
	kmod xz-utils qemu-utils python3 file binutils
TEST_PKGS += qemu-system-x86 ovmf $(IMAGE_PKGS)
IMAGE_FLAVOUR ?= generic

.PHONY: image image-deps
image-deps: deps
	$(call install_missing,$(IMAGE_PKGS))

image: image-deps
	@$(MAKE) --no-print-directory all
	@bash images/build.sh --flavour $(IMAGE_FLAVOUR)
