/* Boot-time Linux calls for meshgate running as PID 1 in its own image.
 *
 * The image (images/build.sh) is a Debian kernel plus an initramfs holding
 * only /init (= the static meshgate), the kernel modules listed in
 * /lib/modules/load.list (absolute paths, one per line, dependency order
 * computed at build time with `modprobe --show-depends`), /var/run and
 * /dev/console. appliance/main.c calls, when getpid() == 1 and before anything
 * else:
 *
 *     struct boot_info bi;
 *     char err[256];
 *     if (boot_init(&bi, err, sizeof err) != BOOT_OK) boot_fatal(err);
 *     boot_info_print(&bi, stdout);
 *     ... config_load(bi.config_files, bi.nconfig_files, ...) or the embedded
 *         demo when bi.nconfig_files == 0 ...
 *     ... boot_bind_nics(devices, n, pci, err, sizeof err) for the configured
 *         PCI addresses / MACs, then port_open() with the returned addresses ...
 *     ... on `shutdown`: boot_poweroff() ...
 *
 * Nothing here allocates after it returns, nothing exits: errors are
 * `enum boot_error` values plus a message in the caller's buffer naming the
 * device, file or kernel parameter to check. Secrets (keys on the config
 * volume) are never read or printed here: only file names are reported.
 *
 * Kernel command-line parameters read (all optional):
 *   meshgate.hugepages=N     2 MiB pages to reserve (default: a quarter of
 *                            RAM, at most 1 GiB: DPDK takes ~20 MiB of mbufs
 *                            per port, the rest of RAM is the appliance's
 *                            heap, ~90 KiB per pooled connection; 0 = none,
 *                            DPDK then runs with --no-huge)
 *   meshgate.config_wait=S   seconds to wait for a config volume to appear
 *                            (default 3; USB sticks can take that long)
 *   meshgate.config=demo     skip the config-volume search
 *   console=...              the last one is /dev/console; reported in
 *                            boot_info.console */
#ifndef MESHGATE_BOOT_H
#define MESHGATE_BOOT_H
#include <stddef.h>
#include <stdio.h>
#include <time.h>

#define BOOT_MODULE_LIST "/lib/modules/load.list"      /* loaded by boot_init */
#define BOOT_NIC_MODULE_LIST "/lib/modules/nic.list"   /* kernel NIC drivers, loaded
							* by boot_bind_nics for MACs */
#define BOOT_CONFIG_MOUNT "/run/meshgate/config"  /* read-only mount point */
#define BOOT_CONFIG_LABEL "MESHGATE"              /* FAT / ext4 / ISO label */
#define BOOT_CLOUD_INIT_LABEL "cidata"            /* NoCloud seed label */
#define BOOT_MAX_CONFIG_FILES 16  /* *.yaml files taken from the volume */
#define BOOT_MAX_PATH 512
#define BOOT_MAX_NICS 8           /* = CONFIG_MAX_PORTS */
#define BOOT_PCI_ADDR_LEN 16      /* "0000:00:03.0" + NUL, with room */
#define BOOT_MAX_WARNINGS 8
#define BOOT_HUGEPAGE_CAP_MB 1024 /* default reservation is at most this */

enum boot_error {
	BOOT_OK = 0,
	BOOT_ERR_NOT_PID1,      /* boot_init() outside the image: nothing done */
	BOOT_ERR_MOUNT,         /* proc/sysfs/devtmpfs/hugetlbfs/config mount */
	BOOT_ERR_CONSOLE,       /* no /dev/console to talk on */
	BOOT_ERR_ENTROPY,       /* getrandom() failed (not: "had to wait") */
	BOOT_ERR_CONFIG,        /* a config volume exists but is unusable */
	BOOT_ERR_NIC_SPEC,      /* a NIC name that is neither PCI address nor MAC */
	BOOT_ERR_NIC_NOT_FOUND, /* no such PCI device / no interface with that MAC */
	BOOT_ERR_NIC_DRIVER,    /* vfio-pci / uio_pci_generic missing */
	BOOT_ERR_NIC_BIND,      /* the kernel refused the bind */
};

enum boot_config_source {
	BOOT_CONFIG_DEMO = 0,   /* no volume: use the embedded demo default */
	BOOT_CONFIG_VOLUME,     /* volume labelled MESHGATE: its *.yaml files */
	BOOT_CONFIG_CLOUD_INIT, /* NoCloud seed labelled cidata: its user-data */
};

struct boot_info {
	char kernel_release[65];    /* uname -r */
	char console[64];           /* "/dev/ttyS0": the last console= */
	double uptime_at_init;      /* seconds since kernel start when boot_init ran */
	unsigned boot_ms;           /* time boot_init() took */

	int modules_loaded;         /* finit_module successes (incl. already there) */
	int modules_failed;         /* e.g. a CPU-specific crc module: warning only */

	int iommu;                  /* 1: IOMMU groups exist, NICs go to vfio-pci */
	int uefi;                   /* 1: started by UEFI firmware, 0: BIOS */
	int secure_boot;            /* 1: UEFI Secure Boot on, 0: off, -1: unknown */
	char lockdown[16];          /* kernel lockdown: "none", "integrity",
				     * "confidentiality"; "" if unknown. Not
				     * "none": uio_pci_generic cannot be used
				     * (DPDK maps PCI BARs through sysfs, which
				     * lockdown forbids), NICs need vfio-pci */
	unsigned hugepages;         /* pages actually reserved (read back) */
	unsigned hugepage_kb;       /* their size */
	unsigned entropy_wait_ms;   /* how long the first getrandom() blocked */

	time_t clock;               /* wall clock after the check */
	int clock_ok;               /* 0: before the build date, certificate
				     * validity checks will fail */

	enum boot_config_source config_source;
	char config_device[32];     /* "vdb", "sdb1" */
	char config_fstype[16];     /* "vfat", "ext4", "iso9660" */
	char config_files[BOOT_MAX_CONFIG_FILES][BOOT_MAX_PATH];  /* absolute, sorted */
	int nconfig_files;          /* 0 with BOOT_CONFIG_DEMO */

	char warnings[BOOT_MAX_WARNINGS][160];  /* non-fatal problems, for the console */
	int nwarnings;
};

/* Brings the machine up as described above: mounts /proc, /sys, /dev
 * (devtmpfs) and /dev/hugepages, makes sure fds 0-2 are the console, creates
 * /run, /var/run and /tmp, reads the firmware type, Secure Boot state
 * (efivarfs, mounted read-only) and kernel lockdown mode (securityfs),
 * sets transparent hugepages to "madvise" (so
 * untouched pool memory stays unbacked), loads the modules of BOOT_MODULE_LIST (a module
 * that fails is counted and warned about, not fatal), reserves hugepages,
 * waits for the kernel's entropy pool (blocking getrandom), checks the clock
 * against the RTC, and looks for a config volume, mounted read-only,
 * nosuid, nodev, noexec at BOOT_CONFIG_MOUNT.
 * Returns BOOT_OK with `out` filled; otherwise the error and a one-line
 * reason in `err` (the caller passes it to boot_fatal()). Only for PID 1:
 * returns BOOT_ERR_NOT_PID1 and changes nothing otherwise. */
enum boot_error boot_init(struct boot_info *out, char *err, size_t errlen);

/* Prints a short summary (kernel, console, modules, IOMMU, hugepages,
 * entropy wait, clock, config source and file names, warnings), one
 * "boot: ..." line per item. */
void boot_info_print(const struct boot_info *bi, FILE *out);

/* Hands NICs to DPDK. Each entry of `nics` is a PCI address
 * ("0000:00:03.0" or "00:03.0") or a MAC ("52:54:00:12:34:56", any case);
 * a MAC is resolved through /sys/class/net/<if>/address and the interface's
 * PCI device, so its kernel driver must be in the image (virtio_net, e1000,
 * e1000e, igb, ixgbe, i40e are, in BOOT_NIC_MODULE_LIST, loaded on the first
 * MAC seen: a few seconds under emulation) and the NIC not yet bound to DPDK. Kernel
 * interface names are never accepted. Each device is bound to vfio-pci when
 * it has an IOMMU group, else to uio_pci_generic, with driver_override so no
 * other driver takes it back. pci_out[i] receives the canonical PCI address
 * of nics[i] (what port_open() wants). n <= BOOT_MAX_NICS. Binding an
 * already-bound device again is a no-op. Stops at the first failure. */
enum boot_error boot_bind_nics(const char *const *nics, int n,
			       char pci_out[][BOOT_PCI_ADDR_LEN],
			       char *err, size_t errlen);

/* Resolves one NIC spec as boot_bind_nics() does, without binding it.
 * `sysfs` is the sysfs root ("/sys"; tests pass a fake tree). */
enum boot_error boot_resolve_nic(const char *sysfs, const char *spec,
				 char pci[BOOT_PCI_ADDR_LEN],
				 char *err, size_t errlen);

/* The NIC the image's embedded demo default runs on, when no config volume
 * names one: the first virtio-net PCI function (vendor 1af4, device 1000 or
 * 1041) in PCI address order, else the first Ethernet-class (0x0200) PCI
 * device. `sysfs` is the sysfs root ("/sys"; tests pass a fake tree).
 * Fills `pci` (canonical address) and `what` ("virtio-net" or
 * "Ethernet VVVV:DDDD") and returns BOOT_OK, or BOOT_ERR_NIC_NOT_FOUND with
 * the reason in err. Binds nothing. */
enum boot_error boot_find_demo_nic(const char *sysfs, char pci[BOOT_PCI_ADDR_LEN],
				   char *what, size_t whatlen, char *err, size_t errlen);

/* Prints "meshgate: FATAL: <reason>" on the console and keeps the console
 * alive forever: every line typed there prints the reason again, and the
 * lines "poweroff" / "reboot" do that. Never returns and, as PID 1, never
 * exits (that would panic the kernel). Outside the image (not PID 1) it
 * exits with status 1 after printing, so host runs fail normally. */
void boot_fatal(const char *reason) __attribute__((noreturn));

/* sync(), unmounts the config volume and powers the machine off. Returns
 * only if the kernel refused (not PID 1 / no CAP_SYS_BOOT), errno set. */
void boot_poweroff(void);
void boot_reboot(void);

/* Parses a label out of a filesystem superblock image: `buf` holds at least
 * the first 36 KiB of the device (shorter buffers only match what fits).
 * Fills `label` (trailing spaces trimmed) and `fstype` ("vfat", "ext4",
 * "iso9660") and returns 1, or returns 0 for anything else. Pure: unit-testable. */
int boot_probe_label(const unsigned char *buf, size_t len,
		     char *label, size_t labellen, char *fstype, size_t fstypelen);

#endif
