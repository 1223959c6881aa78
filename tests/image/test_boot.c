/* drivers/boot.c on a fake sysfs tree: NIC specs (PCI address, MAC, never
 * an interface name), the demo NIC choice, and the filesystem label probe.
 * Built by images/image.mk as build/tests/test_boot (linked with
 * drivers/boot.o only), run by tests/run-suite.sh from tests/. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "drivers/boot.h"

static char root[64];

static void mkdirs(const char *path)
{
	char tmp[512];
	snprintf(tmp, sizeof tmp, "%s", path);
	for (char *p = tmp + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			mkdir(tmp, 0755);
			*p = '/';
		}
	mkdir(tmp, 0755);
}

static void put(const char *rel, const char *text)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", root, rel);
	*strrchr(path, '/') = '\0';
	mkdirs(path);
	snprintf(path, sizeof path, "%s/%s", root, rel);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "%s\n", text);
	fclose(f);
}

/* A PCI function under /sys/devices and its /sys/bus/pci/devices link. */
static void pci_dev(const char *addr, const char *vendor, const char *device, const char *class)
{
	char rel[256], link[512], target[256];
	snprintf(rel, sizeof rel, "devices/pci0000:00/%s/vendor", addr);
	put(rel, vendor);
	snprintf(rel, sizeof rel, "devices/pci0000:00/%s/device", addr);
	put(rel, device);
	snprintf(rel, sizeof rel, "devices/pci0000:00/%s/class", addr);
	put(rel, class);
	snprintf(link, sizeof link, "%s/bus/pci/devices", root);
	mkdirs(link);
	snprintf(link, sizeof link, "%s/bus/pci/devices/%s", root, addr);
	snprintf(target, sizeof target, "../../../devices/pci0000:00/%s", addr);
	assert_int_equal(symlink(target, link), 0);
}

/* A kernel interface with a MAC: class/net/IF/address and IF/device ->
 * the PCI function's virtioN child (as virtio_net lays it out) or the
 * function itself. */
static void netif(const char *ifname, const char *mac, const char *device_rel)
{
	char rel[256], link[512], target[256];
	snprintf(rel, sizeof rel, "class/net/%s/address", ifname);
	put(rel, mac);
	snprintf(link, sizeof link, "%s/class/net/%s/device", root, ifname);
	if (device_rel) {
		char dir[512];
		snprintf(dir, sizeof dir, "%s/devices/%s", root, device_rel);
		mkdirs(dir);
		snprintf(target, sizeof target, "../../../devices/%s", device_rel);
		assert_int_equal(symlink(target, link), 0);
	}
}

static int setup(void **state)
{
	snprintf(root, sizeof root, "/tmp/mg-boot-test-XXXXXX");
	if (!mkdtemp(root))
		return -1;
	pci_dev("0000:00:03.0", "0x8086", "0x100e", "0x020000");       /* e1000 */
	pci_dev("0000:00:05.0", "0x1af4", "0x1041", "0x020000");       /* virtio-net, modern */
	pci_dev("0000:00:04.0", "0x1af4", "0x1000", "0x020000");       /* virtio-net, legacy */
	pci_dev("0000:00:06.0", "0x1af4", "0x1001", "0x010000");       /* virtio-blk */
	netif("ens4", "52:54:00:4d:47:01", "pci0000:00/0000:00:04.0/virtio1");
	netif("ens3", "52:54:00:12:34:56", "pci0000:00/0000:00:03.0");
	netif("bond0", "52:54:00:12:34:56", NULL);     /* virtual: same MAC, no device */
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_pci_address(void **state)
{
	char pci[BOOT_PCI_ADDR_LEN], err[256];
	assert_int_equal(boot_resolve_nic(root, "0000:00:04.0", pci, err, sizeof err), BOOT_OK);
	assert_string_equal(pci, "0000:00:04.0");
	assert_int_equal(boot_resolve_nic(root, "00:05.0", pci, err, sizeof err), BOOT_OK);
	assert_string_equal(pci, "0000:00:05.0");
	assert_int_equal(boot_resolve_nic(root, "0000:00:1f.0", pci, err, sizeof err),
			 BOOT_ERR_NIC_NOT_FOUND);
	assert_non_null(strstr(err, "0000:00:1f.0: no such PCI device"));
}

static void test_mac(void **state)
{
	char pci[BOOT_PCI_ADDR_LEN], err[256];
	assert_int_equal(boot_resolve_nic(root, "52:54:00:4d:47:01", pci, err, sizeof err), BOOT_OK);
	assert_string_equal(pci, "0000:00:04.0");          /* through virtio1 to its PCI function */
	assert_int_equal(boot_resolve_nic(root, "52:54:00:4D:47:01", pci, err, sizeof err), BOOT_OK);
	assert_string_equal(pci, "0000:00:04.0");
	assert_int_equal(boot_resolve_nic(root, "52-54-00-12-34-56", pci, err, sizeof err), BOOT_OK);
	assert_string_equal(pci, "0000:00:03.0");          /* bond0 shares the MAC, has no device */
	assert_int_equal(boot_resolve_nic(root, "52:54:00:00:00:99", pci, err, sizeof err),
			 BOOT_ERR_NIC_NOT_FOUND);
	assert_non_null(strstr(err, "no PCI network interface has this MAC"));
}

static void test_interface_names_refused(void **state)
{
	const char *bad[] = {"ens4", "eth0", "net_tap0", "", "0000:00:04", "52:54:00:4d:47",
			     "0000:00:20.0", "0000:00:04.8", "52:54:00:4d:47:01:02"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char pci[BOOT_PCI_ADDR_LEN], err[256];
		assert_int_equal(boot_resolve_nic(root, bad[i], pci, err, sizeof err), BOOT_ERR_NIC_SPEC);
		assert_non_null(strstr(err, "kernel interface names are not accepted"));
	}
}

static void test_demo_nic(void **state)
{
	char pci[BOOT_PCI_ADDR_LEN], what[48], err[256];
	/* virtio first (lowest address), although the e1000 sits lower */
	assert_int_equal(boot_find_demo_nic(root, pci, what, sizeof what, err, sizeof err), BOOT_OK);
	assert_string_equal(pci, "0000:00:04.0");
	assert_string_equal(what, "virtio-net");
}

static void test_demo_nic_fallbacks(void **state)
{
	char pci[BOOT_PCI_ADDR_LEN], what[48], err[256], path[256];
	/* without virtio-net: the first Ethernet-class device */
	snprintf(path, sizeof path, "%s/bus/pci/devices/0000:00:04.0", root);
	assert_int_equal(unlink(path), 0);
	snprintf(path, sizeof path, "%s/bus/pci/devices/0000:00:05.0", root);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(boot_find_demo_nic(root, pci, what, sizeof what, err, sizeof err), BOOT_OK);
	assert_string_equal(pci, "0000:00:03.0");
	assert_string_equal(what, "Ethernet 8086:100e");
	/* no NIC at all: a reason naming what to do */
	snprintf(path, sizeof path, "%s/bus/pci/devices/0000:00:03.0", root);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(boot_find_demo_nic(root, pci, what, sizeof what, err, sizeof err),
			 BOOT_ERR_NIC_NOT_FOUND);
	assert_non_null(strstr(err, "no virtio-net or Ethernet PCI device"));
	assert_non_null(strstr(err, "MESHGATE"));
}

/* Labels from superblocks written by hand at their documented offsets. */
static void test_probe_label(void **state)
{
	static unsigned char buf[36 * 1024];
	char label[40], fstype[16];
	/* FAT32: jump, boot signature, extended BPB (0x29 at 66), label at 71,
	 * "FAT32" at 82; sectors-per-FAT16 (22) zero */
	memset(buf, 0, sizeof buf);
	buf[0] = 0xeb;
	buf[510] = 0x55;
	buf[511] = 0xaa;
	buf[66] = 0x29;
	memcpy(buf + 71, "MESHGATE   ", 11);
	memcpy(buf + 82, "FAT32   ", 8);
	assert_int_equal(boot_probe_label(buf, sizeof buf, label, sizeof label, fstype, sizeof fstype), 1);
	assert_string_equal(label, "MESHGATE");
	assert_string_equal(fstype, "vfat");
	/* an MBR (signature, no jump) is not a filesystem */
	buf[0] = 0xfa;
	assert_int_equal(boot_probe_label(buf, sizeof buf, label, sizeof label, fstype, sizeof fstype), 0);
	/* FAT16: extended BPB at 38, label at 43, "FAT16" at 54; "NO NAME" = no label */
	memset(buf, 0, sizeof buf);
	buf[0] = 0xeb;
	buf[510] = 0x55;
	buf[511] = 0xaa;
	buf[22] = 0x20;
	buf[38] = 0x29;
	memcpy(buf + 43, "NO NAME    ", 11);
	memcpy(buf + 54, "FAT16   ", 8);
	assert_int_equal(boot_probe_label(buf, sizeof buf, label, sizeof label, fstype, sizeof fstype), 1);
	assert_string_equal(label, "");
	/* ext4: magic 0xEF53 at 1024+56, label at 1024+120 */
	memset(buf, 0, sizeof buf);
	buf[1024 + 56] = 0x53;
	buf[1024 + 57] = 0xef;
	memcpy(buf + 1024 + 120, "cidata", 6);
	assert_int_equal(boot_probe_label(buf, sizeof buf, label, sizeof label, fstype, sizeof fstype), 1);
	assert_string_equal(label, "cidata");
	assert_string_equal(fstype, "ext4");
	/* ISO 9660: "CD001" at 32769, volume id at 32768+40 */
	memset(buf, 0, sizeof buf);
	buf[32768] = 1;
	memcpy(buf + 32769, "CD001", 5);
	memset(buf + 32768 + 40, ' ', 32);
	memcpy(buf + 32768 + 40, "CIDATA", 6);
	assert_int_equal(boot_probe_label(buf, sizeof buf, label, sizeof label, fstype, sizeof fstype), 1);
	assert_string_equal(label, "CIDATA");
	assert_string_equal(fstype, "iso9660");
	/* nothing recognisable, and a buffer too short for the ext4 magic */
	memset(buf, 0, sizeof buf);
	assert_int_equal(boot_probe_label(buf, sizeof buf, label, sizeof label, fstype, sizeof fstype), 0);
	assert_int_equal(boot_probe_label(buf, 1000, label, sizeof label, fstype, sizeof fstype), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pci_address),
		cmocka_unit_test(test_mac),
		cmocka_unit_test(test_interface_names_refused),
		cmocka_unit_test(test_demo_nic),
		cmocka_unit_test(test_demo_nic_fallbacks),
		cmocka_unit_test(test_probe_label),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
