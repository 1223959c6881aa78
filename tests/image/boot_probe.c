/* A stand-in /init for checking drivers/boot.c on its own (images/build.sh
 * --init build/images/boot_probe): boot_init, the summary, binding the NIC
 * with QEMU's default MAC, then a tiny console: "poweroff", "fatal".
 * The real image boots build/meshgate; this only isolates boot problems. */
#include "drivers/boot.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
	struct boot_info bi;
	char err[512];
	if (boot_init(&bi, err, sizeof err) != BOOT_OK)
		boot_fatal(err);
	boot_info_print(&bi, stdout);
	const char *nics[] = { "52:54:00:12:34:56" };
	char pci[1][BOOT_PCI_ADDR_LEN];
	if (boot_bind_nics(nics, 1, pci, err, sizeof err) != BOOT_OK)
		printf("probe: bind: %s\n", err);
	else
		printf("probe: NIC %s bound (%s)\n", pci[0], bi.iommu ? "vfio-pci" : "uio_pci_generic");
	printf("MESHGATE-PROBE-OK\n");
	fflush(stdout);
	char line[128];
	while (fgets(line, sizeof line, stdin)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (strcmp(line, "poweroff") == 0)
			boot_poweroff();
		if (strcmp(line, "fatal") == 0)
			boot_fatal("probe asked for it");
		printf("probe: %s?\n", line);
		fflush(stdout);
	}
	boot_fatal("console closed");
}
