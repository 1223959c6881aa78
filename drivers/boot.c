/* Boot-time Linux calls for meshgate as PID 1: see boot.h for the contract. */
#include "drivers/boot.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/rtc.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <termios.h>
#include <unistd.h>

/* A wall clock before this (2025-01-01T00:00:00Z) cannot be right for a
 * meshgate build: every certificate would look "not yet valid" or "expired"
 * wrongly, so the RTC is consulted and the operator warned. */
#define BOOT_CLOCK_FLOOR 1735689600
/* ISO 9660 puts its primary volume descriptor at 32 KiB: the probe reads
 * this much of each block device. */
#define BOOT_PROBE_BYTES (36 * 1024)
#define BOOT_CONFIG_WAIT_DEFAULT_S 3
#define BOOT_POLL_MS 100

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Bounded copy; returns -1 (and copies nothing) when src does not fit. */
static int copy_str(char *dst, size_t len, const char *src)
{
	size_t n = strlen(src);
	if (n >= len)
		return -1;
	memcpy(dst, src, n + 1);
	return 0;
}

static void warn(struct boot_info *bi, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void warn(struct boot_info *bi, const char *fmt, ...)
{
	va_list ap;
	if (bi->nwarnings >= BOOT_MAX_WARNINGS)
		return;
	va_start(ap, fmt);
	vsnprintf(bi->warnings[bi->nwarnings++], sizeof bi->warnings[0], fmt, ap);
	va_end(ap);
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Reads a small sysfs/procfs file into buf, newline stripped. -1 on error. */
static int read_small(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, len - 1);
	int saved = errno;
	close(fd);
	if (n < 0) {
		errno = saved;
		return -1;
	}
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	return 0;
}

static int write_small(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t len = strlen(text);
	ssize_t n = write(fd, text, len);
	int saved = errno;
	close(fd);
	if (n < 0 || (size_t)n != len) {
		errno = n < 0 ? saved : EIO;
		return -1;
	}
	return 0;
}

static int mkdir_p(const char *path)
{
	char tmp[BOOT_MAX_PATH];
	snprintf(tmp, sizeof tmp, "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

/* mount() that tolerates "already mounted" (EBUSY), e.g. devtmpfs when the
 * kernel was built with DEVTMPFS_MOUNT. */
static int mount_at(const char *src, const char *dir, const char *type,
		    unsigned long flags, const char *data, char *err, size_t errlen)
{
	if (mkdir_p(dir) < 0) {
		set_err(err, errlen, "cannot create %s: %s", dir, strerror(errno));
		return -1;
	}
	if (mount(src, dir, type, flags, data) < 0 && errno != EBUSY) {
		set_err(err, errlen, "cannot mount %s on %s: %s", type, dir, strerror(errno));
		return -1;
	}
	return 0;
}

/* Value of "key=" on the kernel command line; the last occurrence wins
 * (that is how the kernel treats console=). */
static int cmdline_get(const char *cmdline, const char *key, char *val, size_t vallen)
{
	size_t klen = strlen(key);
	int found = 0;
	const char *p = cmdline;
	while (*p) {
		while (*p == ' ')
			p++;
		const char *end = p;
		while (*end && *end != ' ')
			end++;
		if ((size_t)(end - p) > klen && strncmp(p, key, klen) == 0 && p[klen] == '=') {
			size_t n = (size_t)(end - p) - klen - 1;
			if (n >= vallen)
				n = vallen - 1;
			memcpy(val, p + klen + 1, n);
			val[n] = '\0';
			found = 1;
		}
		p = end;
	}
	return found;
}

static void setup_console(struct boot_info *bi, const char *cmdline)
{
	char con[48];
	snprintf(bi->console, sizeof bi->console, "/dev/console");
	if (cmdline_get(cmdline, "console", con, sizeof con)) {
		con[strcspn(con, ",")] = '\0';
		if (con[0])
			snprintf(bi->console, sizeof bi->console, "/dev/%s", con);
	}
	/* The kernel opens /dev/console as fds 0-2 for init when the initramfs
	 * has the node; make sure of it either way. */
	if (fcntl(0, F_GETFD) < 0 || fcntl(1, F_GETFD) < 0 || fcntl(2, F_GETFD) < 0) {
		int fd = open("/dev/console", O_RDWR | O_NOCTTY);
		if (fd >= 0) {
			for (int i = 0; i < 3; i++)
				if (fcntl(i, F_GETFD) < 0)
					dup2(fd, i);
			if (fd > 2)
				close(fd);
		}
	}
	/* Make the console our controlling terminal so the console code can
	 * use job-control-free termios calls; PID 1 ignores SIGINT anyway. */
	setsid();
	ioctl(0, TIOCSCTTY, 1);
}

/* Loads every module of a list written by images/build.sh. `bi` may be NULL
 * (lists loaded after boot_init: failures then only show as the caller's
 * "not found" error). */
static void load_modules(const char *list, struct boot_info *bi)
{
	FILE *f = fopen(list, "re");
	if (!f) {
		if (bi)
			warn(bi, "no %s: no kernel modules loaded", list);
		return;
	}
	char line[BOOT_MAX_PATH + 128];
	int lineno = 0;
	while (fgets(line, sizeof line, f)) {
		lineno++;
		line[strcspn(line, "\n")] = '\0';
		if (line[0] == '\0' || line[0] == '#')
			continue;
		/* "PATH [module parameters]" */
		char *params = strchr(line, ' ');
		if (params)
			*params++ = '\0';
		int fd = open(line, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			if (bi) {
				bi->modules_failed++;
				warn(bi, "%s:%d: %s: %s", list, lineno, line, strerror(errno));
			}
			continue;
		}
		long rc = syscall(SYS_finit_module, fd, params ? params : "", 0);
		int e = errno;
		close(fd);
		if (!bi)
			continue;
		if (rc == 0 || e == EEXIST) {
			bi->modules_loaded++;
		} else {
			/* e.g. ENODEV from a CPU-specific crc module: the generic
			 * one listed next to it does the work. */
			bi->modules_failed++;
			const char *base = strrchr(line, '/');
			warn(bi, "module %s: %s", base ? base + 1 : line, strerror(e));
		}
	}
	fclose(f);
}

static unsigned long meminfo_kb(const char *key)
{
	FILE *f = fopen("/proc/meminfo", "re");
	char line[128];
	unsigned long v = 0;
	size_t klen = strlen(key);
	if (!f)
		return 0;
	while (fgets(line, sizeof line, f))
		if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
			v = strtoul(line + klen + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

static int reserve_hugepages(struct boot_info *bi, const char *cmdline,
			     char *err, size_t errlen)
{
	char val[32], buf[32];
	unsigned long hp_kb = meminfo_kb("Hugepagesize");
	unsigned long want;
	bi->hugepage_kb = (unsigned)hp_kb;
	if (hp_kb == 0) {
		warn(bi, "kernel has no hugepages: DPDK needs --no-huge");
		return 0;
	}
	if (cmdline_get(cmdline, "meshgate.hugepages", val, sizeof val)) {
		char *end;
		want = strtoul(val, &end, 10);
		if (*end) {
			set_err(err, errlen, "kernel parameter meshgate.hugepages=%s: not a number", val);
			return -1;
		}
	} else {
		unsigned long total_kb = meminfo_kb("MemTotal");
		unsigned long cap_kb = (unsigned long)BOOT_HUGEPAGE_CAP_MB * 1024;
		unsigned long quarter = total_kb / 4;
		want = (quarter < cap_kb ? quarter : cap_kb) / hp_kb;
	}
	if (mount_at("hugetlbfs", "/dev/hugepages", "hugetlbfs", MS_NOSUID | MS_NODEV, NULL,
		     err, errlen) < 0)
		return -1;
	snprintf(val, sizeof val, "%lu", want);
	if (write_small("/proc/sys/vm/nr_hugepages", val) < 0)
		warn(bi, "cannot reserve %lu hugepages: %s", want, strerror(errno));
	if (read_small("/proc/sys/vm/nr_hugepages", buf, sizeof buf) == 0)
		bi->hugepages = (unsigned)strtoul(buf, NULL, 10);
	if (bi->hugepages < want)
		warn(bi, "reserved %u of %lu hugepages (memory fragmented or too small)",
		     bi->hugepages, want);
	return 0;
}

static int wait_entropy(struct boot_info *bi, char *err, size_t errlen)
{
	unsigned char probe[16];
	uint64_t t0 = now_ms();
	ssize_t n;
	do
		n = getrandom(probe, sizeof probe, 0);   /* blocks until seeded */
	while (n < 0 && errno == EINTR);
	explicit_bzero(probe, sizeof probe);
	if (n < 0) {
		set_err(err, errlen, "getrandom: %s", strerror(errno));
		return -1;
	}
	bi->entropy_wait_ms = (unsigned)(now_ms() - t0);
	return 0;
}

static void check_clock(struct boot_info *bi)
{
	time_t now = time(NULL);
	if (now < BOOT_CLOCK_FLOOR) {
		/* The kernel sets the clock from rtc0 at boot (RTC_HCTOSYS);
		 * try once more in case the RTC driver came up late. */
		int fd = open("/dev/rtc0", O_RDONLY | O_CLOEXEC);
		struct rtc_time rt;
		if (fd >= 0 && ioctl(fd, RTC_RD_TIME, &rt) == 0) {
			struct tm tm = {
				.tm_sec = rt.tm_sec, .tm_min = rt.tm_min, .tm_hour = rt.tm_hour,
				.tm_mday = rt.tm_mday, .tm_mon = rt.tm_mon, .tm_year = rt.tm_year,
			};
			time_t rtc = timegm(&tm);   /* the RTC keeps UTC */
			if (rtc >= BOOT_CLOCK_FLOOR) {
				struct timespec ts = { .tv_sec = rtc };
				clock_settime(CLOCK_REALTIME, &ts);
				now = rtc;
			}
		}
		if (fd >= 0)
			close(fd);
	}
	bi->clock = now;
	bi->clock_ok = now >= BOOT_CLOCK_FLOOR;
	if (!bi->clock_ok)
		warn(bi, "clock reads %lld (before 2025): set the machine's RTC to UTC, "
		     "certificate validity checks will fail", (long long)now);
}

/* ------------------------------------------------------------ config volume */

static uint16_t le16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }

static void copy_label(const unsigned char *src, size_t n, char *label, size_t labellen)
{
	size_t len = n < labellen - 1 ? n : labellen - 1;
	memcpy(label, src, len);
	label[len] = '\0';
	while (len > 0 && (label[len - 1] == ' ' || label[len - 1] == '\0'))
		label[--len] = '\0';
	for (size_t i = 0; i < len; i++)
		if (!isprint((unsigned char)label[i]))
			label[i] = '?';
}

int boot_probe_label(const unsigned char *buf, size_t len,
		     char *label, size_t labellen, char *fstype, size_t fstypelen)
{
	/* ext2/3/4: superblock at 1024, magic 0xEF53 at +56, name at +120. */
	if (len >= 1024 + 136 && le16(buf + 1024 + 56) == 0xEF53) {
		copy_label(buf + 1024 + 120, 16, label, labellen);
		snprintf(fstype, fstypelen, "ext4");
		return 1;
	}
	/* ISO 9660 primary volume descriptor: type 1, "CD001", volume id at +40. */
	if (len >= 32768 + 72 && buf[32768] == 1 && memcmp(buf + 32769, "CD001", 5) == 0) {
		copy_label(buf + 32768 + 40, 32, label, labellen);
		snprintf(fstype, fstypelen, "iso9660");
		return 1;
	}
	/* FAT: boot sector signature, extended BPB signature 0x29 and the
	 * "FAT" type string (an MBR has the first, not the others). FAT32 keeps
	 * its extended BPB at 64, FAT12/16 at 36. */
	if (len >= 512 && buf[510] == 0x55 && buf[511] == 0xAA &&
	    (buf[0] == 0xEB || buf[0] == 0xE9)) {
		if (le16(buf + 22) == 0 && buf[66] == 0x29 && memcmp(buf + 82, "FAT32", 5) == 0) {
			copy_label(buf + 71, 11, label, labellen);
		} else if (buf[38] == 0x29 && memcmp(buf + 54, "FAT", 3) == 0) {
			copy_label(buf + 43, 11, label, labellen);
		} else {
			return 0;
		}
		if (strcmp(label, "NO NAME") == 0)
			label[0] = '\0';
		snprintf(fstype, fstypelen, "vfat");
		return 1;
	}
	return 0;
}

struct volume {
	char dev[32];
	char fstype[16];
	enum boot_config_source source;
};

/* One pass over /sys/class/block. Returns 1 and fills `vol` with the best
 * candidate (MESHGATE before cidata), else 0. */
static int scan_volumes(struct volume *vol)
{
	static unsigned char buf[BOOT_PROBE_BYTES];   /* boot time only, single-threaded */
	DIR *d = opendir("/sys/class/block");
	struct dirent *de;
	int found = 0;
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char path[300], sz[32], label[40], fstype[16];
		if (de->d_name[0] == '.' || strncmp(de->d_name, "loop", 4) == 0 ||
		    strncmp(de->d_name, "ram", 3) == 0)
			continue;
		snprintf(path, sizeof path, "/sys/class/block/%s/size", de->d_name);
		if (read_small(path, sz, sizeof sz) < 0 || strtoull(sz, NULL, 10) == 0)
			continue;
		snprintf(path, sizeof path, "/dev/%s", de->d_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
		if (fd < 0)
			continue;
		ssize_t n = pread(fd, buf, sizeof buf, 0);
		close(fd);
		if (n <= 0 || !boot_probe_label(buf, (size_t)n, label, sizeof label,
						fstype, sizeof fstype))
			continue;
		enum boot_config_source src;
		if (strcasecmp(label, BOOT_CONFIG_LABEL) == 0)
			src = BOOT_CONFIG_VOLUME;
		else if (strcasecmp(label, BOOT_CLOUD_INIT_LABEL) == 0)
			src = BOOT_CONFIG_CLOUD_INIT;
		else
			continue;
		if (!found || (src == BOOT_CONFIG_VOLUME && vol->source != BOOT_CONFIG_VOLUME) ||
		    (src == vol->source && strcmp(de->d_name, vol->dev) < 0)) {
			if (copy_str(vol->dev, sizeof vol->dev, de->d_name) < 0)
				continue;
			snprintf(vol->fstype, sizeof vol->fstype, "%s", fstype);
			vol->source = src;
			found = 1;
		}
	}
	closedir(d);
	return found;
}

static int is_yaml_name(const char *name)
{
	size_t n = strlen(name);
	if (name[0] == '.')     /* hidden files, macOS "._x.yaml" forks */
		return 0;
	return (n > 5 && strcasecmp(name + n - 5, ".yaml") == 0) ||
	       (n > 4 && strcasecmp(name + n - 4, ".yml") == 0);
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

static int find_config(struct boot_info *bi, const char *cmdline, char *err, size_t errlen)
{
	char val[32];
	struct volume vol;
	unsigned wait_s = BOOT_CONFIG_WAIT_DEFAULT_S;
	memset(&vol, 0, sizeof vol);
	bi->config_source = BOOT_CONFIG_DEMO;
	if (cmdline_get(cmdline, "meshgate.config", val, sizeof val) && strcmp(val, "demo") == 0)
		return 0;
	if (cmdline_get(cmdline, "meshgate.config_wait", val, sizeof val))
		wait_s = (unsigned)strtoul(val, NULL, 10);
	/* Block devices (USB, SCSI scans) appear asynchronously after their
	 * modules load: poll until one is labelled or the wait is over. */
	uint64_t deadline = now_ms() + (uint64_t)wait_s * 1000u;
	int found;
	while (!(found = scan_volumes(&vol)) && now_ms() < deadline)
		usleep(BOOT_POLL_MS * 1000);
	if (!found)
		return 0;

	const char *label = vol.source == BOOT_CONFIG_VOLUME ? BOOT_CONFIG_LABEL : BOOT_CLOUD_INIT_LABEL;
	char devpath[48];
	snprintf(devpath, sizeof devpath, "/dev/%s", vol.dev);
	if (mount_at(devpath, BOOT_CONFIG_MOUNT, vol.fstype,
		     MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, err, errlen) < 0) {
		size_t used = strlen(err);
		set_err(err + used, errlen - used, " (volume labelled %s on %s)", label, vol.dev);
		return -1;
	}
	snprintf(bi->config_device, sizeof bi->config_device, "%s", vol.dev);
	snprintf(bi->config_fstype, sizeof bi->config_fstype, "%s", vol.fstype);
	bi->config_source = vol.source;

	if (vol.source == BOOT_CONFIG_CLOUD_INIT) {
		/* NoCloud: user-data carries the Appliance YAML (a leading
		 * "#cloud-config" line is a YAML comment). Its relative paths
		 * resolve against the seed volume, so certificates can sit there. */
		struct stat st;
		snprintf(bi->config_files[0], BOOT_MAX_PATH, "%s/user-data", BOOT_CONFIG_MOUNT);
		if (stat(bi->config_files[0], &st) < 0 || !S_ISREG(st.st_mode)) {
			set_err(err, errlen, "cloud-init seed on %s (label %s) has no user-data file",
				vol.dev, label);
			return -1;
		}
		bi->nconfig_files = 1;
		return 0;
	}

	DIR *d = opendir(BOOT_CONFIG_MOUNT);
	struct dirent *de;
	static char names[BOOT_MAX_CONFIG_FILES][256];
	int n = 0, extra = 0;
	if (!d) {
		set_err(err, errlen, "cannot list config volume %s: %s", vol.dev, strerror(errno));
		return -1;
	}
	while ((de = readdir(d))) {
		if (!is_yaml_name(de->d_name))
			continue;
		if (n == BOOT_MAX_CONFIG_FILES) {
			extra++;
			continue;
		}
		if (copy_str(names[n], sizeof names[0], de->d_name) == 0)
			n++;
	}
	closedir(d);
	if (extra) {
		set_err(err, errlen, "config volume %s holds more than %d *.yaml files in its top directory",
			vol.dev, BOOT_MAX_CONFIG_FILES);
		return -1;
	}
	if (n == 0) {
		set_err(err, errlen, "config volume %s (label %s) has no *.yaml or *.yml file in its top directory",
			vol.dev, label);
		return -1;
	}
	qsort(names, (size_t)n, sizeof names[0], cmp_names);
	for (int i = 0; i < n; i++)
		if (snprintf(bi->config_files[i], BOOT_MAX_PATH, "%s/%s", BOOT_CONFIG_MOUNT,
			     names[i]) >= BOOT_MAX_PATH) {
			set_err(err, errlen, "config volume %s: file name too long: %s", vol.dev, names[i]);
			return -1;
		}
	bi->nconfig_files = n;
	return 0;
}

static int has_iommu_groups(const char *sysfs)
{
	char path[256];
	snprintf(path, sizeof path, "%s/kernel/iommu_groups", sysfs);
	DIR *d = opendir(path);
	struct dirent *de;
	int any = 0;
	if (!d)
		return 0;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.') {
			any = 1;
			break;
		}
	closedir(d);
	return any;
}

#define BOOT_EFIVARS "/sys/firmware/efi/efivars"
#define BOOT_SECUREBOOT_VAR BOOT_EFIVARS "/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"
#define BOOT_LOCKDOWN "/sys/kernel/security/lockdown"

/* The selected mode of "none [integrity] confidentiality", or "". */
static void lockdown_mode(char *mode, size_t len)
{
	char buf[96];
	mode[0] = '\0';
	if (read_small(BOOT_LOCKDOWN, buf, sizeof buf) < 0)
		return;
	char *open_br = strchr(buf, '['), *close_br = open_br ? strchr(open_br, ']') : NULL;
	if (open_br && close_br && (size_t)(close_br - open_br - 1) < len) {
		memcpy(mode, open_br + 1, (size_t)(close_br - open_br - 1));
		mode[close_br - open_br - 1] = '\0';
	}
}

static void check_firmware(struct boot_info *bi)
{
	struct stat st;
	bi->uefi = stat("/sys/firmware/efi", &st) == 0;
	bi->secure_boot = -1;
	if (bi->uefi) {
		/* read-only: nothing here may change firmware variables */
		if (mount("efivarfs", BOOT_EFIVARS, "efivarfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
			  NULL) == 0 || errno == EBUSY) {
			unsigned char v[8];
			int fd = open(BOOT_SECUREBOOT_VAR, O_RDONLY | O_CLOEXEC);
			if (fd >= 0) {
				/* 4 bytes of attributes, then the 1-byte value */
				if (read(fd, v, sizeof v) >= 5)
					bi->secure_boot = v[4] == 1;
				close(fd);
			} else if (errno == ENOENT) {
				bi->secure_boot = 0;
			}
		}
	} else {
		bi->secure_boot = 0;
	}
	if (mount("securityfs", "/sys/kernel/security", "securityfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  NULL) < 0 && errno != EBUSY)
		warn(bi, "cannot mount securityfs: %s (lockdown mode unknown)", strerror(errno));
	lockdown_mode(bi->lockdown, sizeof bi->lockdown);
}

enum boot_error boot_init(struct boot_info *out, char *err, size_t errlen)
{
	static char cmdline[4096];
	struct utsname u;
	char buf[64];
	memset(out, 0, sizeof *out);
	if (getpid() != 1) {
		set_err(err, errlen, "boot_init: not PID 1, nothing to do");
		return BOOT_ERR_NOT_PID1;
	}
	uint64_t t0 = now_ms();
	umask(022);
	if (mount_at("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, err, errlen) < 0 ||
	    mount_at("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, err, errlen) < 0 ||
	    mount_at("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755", err, errlen) < 0)
		return BOOT_ERR_MOUNT;
	/* DPDK's EAL wants a writable /var/run; the initramfs root is tmpfs. */
	if (mkdir_p("/run/meshgate") < 0 || mkdir_p("/var/run") < 0 || mkdir_p("/tmp") < 0) {
		set_err(err, errlen, "cannot create /run, /var/run, /tmp: %s", strerror(errno));
		return BOOT_ERR_MOUNT;
	}
	if (read_small("/proc/cmdline", cmdline, sizeof cmdline) < 0)
		cmdline[0] = '\0';
	if (read_small("/proc/uptime", buf, sizeof buf) == 0)
		out->uptime_at_init = strtod(buf, NULL);
	if (uname(&u) == 0)
		snprintf(out->kernel_release, sizeof out->kernel_release, "%s", u.release);

	setup_console(out, cmdline);
	if (fcntl(1, F_GETFD) < 0) {
		set_err(err, errlen, "no /dev/console: check console= on the kernel command line");
		return BOOT_ERR_CONSOLE;
	}
	/* Transparent hugepages "always" backs every touched 2 MiB of the
	 * appliance's sparse pools (one 4 KiB free-list link per connection
	 * slot) with a whole huge page: a 1 GiB VM ran out of memory and PID 1,
	 * which the OOM killer cannot kill, panicked. DPDK uses hugetlbfs. */
	if (write_small("/sys/kernel/mm/transparent_hugepage/enabled", "madvise") < 0)
		warn(out, "cannot set transparent hugepages to madvise: %s", strerror(errno));
	load_modules(BOOT_MODULE_LIST, out);
	check_firmware(out);        /* after the modules: efivarfs is one */
	out->iommu = has_iommu_groups("/sys");
	if (reserve_hugepages(out, cmdline, err, errlen) < 0)
		return BOOT_ERR_MOUNT;
	if (wait_entropy(out, err, errlen) < 0)
		return BOOT_ERR_ENTROPY;
	check_clock(out);
	if (find_config(out, cmdline, err, errlen) < 0)
		return out->config_source == BOOT_CONFIG_DEMO && strstr(err, "cannot mount") ?
		       BOOT_ERR_MOUNT : BOOT_ERR_CONFIG;
	out->boot_ms = (unsigned)(now_ms() - t0);
	return BOOT_OK;
}

void boot_info_print(const struct boot_info *bi, FILE *out)
{
	static const char *const source_names[] = {
		[BOOT_CONFIG_DEMO] = "embedded demo (no volume labelled " BOOT_CONFIG_LABEL
				     " or " BOOT_CLOUD_INIT_LABEL ")",
		[BOOT_CONFIG_VOLUME] = "config volume",
		[BOOT_CONFIG_CLOUD_INIT] = "cloud-init NoCloud user-data",
	};
	struct tm tm;
	char when[32] = "?";
	if (gmtime_r(&bi->clock, &tm))
		strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
	fprintf(out, "boot: kernel %s, console %s, up %.2f s at init, boot_init %u ms\n",
		bi->kernel_release, bi->console, bi->uptime_at_init, bi->boot_ms);
	fprintf(out, "boot: firmware %s, Secure Boot %s, kernel lockdown %s\n",
		bi->uefi ? "UEFI" : "BIOS",
		bi->secure_boot > 0 ? "on" : bi->secure_boot == 0 ? "off" : "unknown",
		bi->lockdown[0] ? bi->lockdown : "unknown");
	fprintf(out, "boot: modules %d loaded, %d failed; iommu %s (NICs go to %s)\n",
		bi->modules_loaded, bi->modules_failed, bi->iommu ? "yes" : "no",
		bi->iommu ? "vfio-pci" : "uio_pci_generic");
	fprintf(out, "boot: hugepages %u x %u kB; entropy ready after %u ms; clock %s%s\n",
		bi->hugepages, bi->hugepage_kb, bi->entropy_wait_ms, when,
		bi->clock_ok ? "" : " (WRONG)");
	if (bi->config_source == BOOT_CONFIG_DEMO)
		fprintf(out, "boot: config: %s\n", source_names[BOOT_CONFIG_DEMO]);
	else
		fprintf(out, "boot: config: %s %s (%s), %d file(s)\n",
			source_names[bi->config_source], bi->config_device, bi->config_fstype,
			bi->nconfig_files);
	for (int i = 0; i < bi->nconfig_files; i++)
		fprintf(out, "boot:   %s\n", bi->config_files[i]);
	for (int i = 0; i < bi->nwarnings; i++)
		fprintf(out, "boot: warning: %s\n", bi->warnings[i]);
	fflush(out);
}

/* ------------------------------------------------------------------- NICs */

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* "DDDD:BB:DD.F" or "BB:DD.F" -> canonical lower-case with domain. */
static int parse_pci(const char *s, char pci[BOOT_PCI_ADDR_LEN])
{
	unsigned dom = 0, bus, dev, fn;
	char tail;
	int n = 0;
	size_t len = strlen(s);
	for (size_t i = 0; i < len; i++)
		if (!(hexval(s[i]) >= 0 || s[i] == ':' || s[i] == '.'))
			return 0;
	if (len == 12 && sscanf(s, "%4x:%2x:%2x.%1u%n%c", &dom, &bus, &dev, &fn, &n, &tail) == 4 &&
	    s[4] == ':' && s[7] == ':' && s[10] == '.') {
		/* full form */
	} else if (len == 7 && sscanf(s, "%2x:%2x.%1u%n%c", &bus, &dev, &fn, &n, &tail) == 3 &&
		   s[2] == ':' && s[5] == '.') {
		dom = 0;
	} else {
		return 0;
	}
	if (dev > 0x1f || fn > 7)
		return 0;
	snprintf(pci, BOOT_PCI_ADDR_LEN, "%04x:%02x:%02x.%u", dom, bus, dev, fn);
	return 1;
}

static int parse_mac(const char *s, unsigned char mac[6])
{
	if (strlen(s) != 17)
		return 0;
	for (int i = 0; i < 6; i++) {
		int hi = hexval(s[i * 3]), lo = hexval(s[i * 3 + 1]);
		if (hi < 0 || lo < 0 || (i < 5 && s[i * 3 + 2] != ':' && s[i * 3 + 2] != '-'))
			return 0;
		mac[i] = (unsigned char)(hi << 4 | lo);
	}
	return 1;
}

/* The PCI device an interface sits on: the last path component of its
 * resolved device link that looks like a PCI address (virtio NICs hang a
 * "virtioN" below the PCI function). */
static int pci_of_path(const char *path, char pci[BOOT_PCI_ADDR_LEN])
{
	char copy[PATH_MAX];
	snprintf(copy, sizeof copy, "%s", path);
	for (;;) {
		char *slash = strrchr(copy, '/');
		if (!slash)
			return 0;
		if (parse_pci(slash + 1, pci) && strlen(slash + 1) == 12)
			return 1;
		*slash = '\0';
	}
}

enum boot_error boot_resolve_nic(const char *sysfs, const char *spec,
				 char pci[BOOT_PCI_ADDR_LEN], char *err, size_t errlen)
{
	char path[PATH_MAX];
	struct stat st;
	unsigned char mac[6];
	if (parse_pci(spec, pci)) {
		snprintf(path, sizeof path, "%s/bus/pci/devices/%s", sysfs, pci);
		if (stat(path, &st) < 0) {
			set_err(err, errlen, "NIC %s: no such PCI device", spec);
			return BOOT_ERR_NIC_NOT_FOUND;
		}
		return BOOT_OK;
	}
	if (!parse_mac(spec, mac)) {
		set_err(err, errlen, "NIC '%s': give a PCI address (0000:00:03.0) or a MAC "
			"(52:54:00:12:34:56); kernel interface names are not accepted", spec);
		return BOOT_ERR_NIC_SPEC;
	}
	snprintf(path, sizeof path, "%s/class/net", sysfs);
	DIR *d = opendir(path);
	struct dirent *de;
	if (!d) {
		set_err(err, errlen, "NIC %s: cannot list %s: %s", spec, path, strerror(errno));
		return BOOT_ERR_NIC_NOT_FOUND;
	}
	int found = 0;
	while (!found && (de = readdir(d))) {
		char addr[64], real[PATH_MAX];
		unsigned char other[6];
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/class/net/%s/address", sysfs, de->d_name);
		if (read_small(path, addr, sizeof addr) < 0 || !parse_mac(addr, other) ||
		    memcmp(mac, other, 6) != 0)
			continue;
		snprintf(path, sizeof path, "%s/class/net/%s/device", sysfs, de->d_name);
		if (!realpath(path, real))
			continue;       /* virtual interface (bond, vlan) sharing the MAC */
		found = pci_of_path(real, pci);
	}
	closedir(d);
	if (!found) {
		set_err(err, errlen, "NIC %s: no PCI network interface has this MAC (is its kernel "
			"driver in the image, and is it not already bound to DPDK? "
			"a PCI address always works)", spec);
		return BOOT_ERR_NIC_NOT_FOUND;
	}
	return BOOT_OK;
}

static unsigned long sysfs_hex(const char *sysfs, const char *pci, const char *attr)
{
	char path[PATH_MAX], buf[32];
	snprintf(path, sizeof path, "%s/bus/pci/devices/%s/%s", sysfs, pci, attr);
	if (read_small(path, buf, sizeof buf) < 0)
		return ~0UL;
	return strtoul(buf, NULL, 16);
}

enum boot_error boot_find_demo_nic(const char *sysfs, char pci[BOOT_PCI_ADDR_LEN],
				   char *what, size_t whatlen, char *err, size_t errlen)
{
	char path[PATH_MAX], best_virtio[BOOT_PCI_ADDR_LEN] = "", best_eth[BOOT_PCI_ADDR_LEN] = "";
	unsigned long eth_id[2] = {0, 0};
	snprintf(path, sizeof path, "%s/bus/pci/devices", sysfs);
	DIR *d = opendir(path);
	struct dirent *de;
	if (!d) {
		set_err(err, errlen, "no NIC for the demo: cannot list %s: %s", path, strerror(errno));
		return BOOT_ERR_NIC_NOT_FOUND;
	}
	while ((de = readdir(d))) {
		char addr[BOOT_PCI_ADDR_LEN];
		if (strlen(de->d_name) != 12 || !parse_pci(de->d_name, addr))
			continue;
		unsigned long vendor = sysfs_hex(sysfs, addr, "vendor");
		unsigned long device = sysfs_hex(sysfs, addr, "device");
		unsigned long class = sysfs_hex(sysfs, addr, "class");
		if (vendor == 0x1af4 && (device == 0x1000 || device == 0x1041)) {
			if (!best_virtio[0] || strcmp(addr, best_virtio) < 0)
				memcpy(best_virtio, addr, sizeof addr);
		} else if (class != ~0UL && (class >> 8) == 0x0200) {
			if (!best_eth[0] || strcmp(addr, best_eth) < 0) {
				memcpy(best_eth, addr, sizeof addr);
				eth_id[0] = vendor;
				eth_id[1] = device;
			}
		}
	}
	closedir(d);
	if (best_virtio[0]) {
		memcpy(pci, best_virtio, BOOT_PCI_ADDR_LEN);
		set_err(what, whatlen, "virtio-net");
		return BOOT_OK;
	}
	if (best_eth[0]) {
		memcpy(pci, best_eth, BOOT_PCI_ADDR_LEN);
		set_err(what, whatlen, "Ethernet %04lx:%04lx", eth_id[0] & 0xffff, eth_id[1] & 0xffff);
		return BOOT_OK;
	}
	set_err(err, errlen, "no NIC for the demo: no virtio-net or Ethernet PCI device in %s "
		"(attach one, or give a config volume labelled %s)", path, BOOT_CONFIG_LABEL);
	return BOOT_ERR_NIC_NOT_FOUND;
}

static int current_driver(const char *pci, char *name, size_t len)
{
	char path[256], target[PATH_MAX];
	snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/driver", pci);
	ssize_t n = readlink(path, target, sizeof target - 1);
	if (n < 0) {
		name[0] = '\0';
		return 0;
	}
	target[n] = '\0';
	const char *base = strrchr(target, '/');
	return copy_str(name, len, base ? base + 1 : target) == 0;
}

static enum boot_error bind_one(const char *spec, const char *pci, char *err, size_t errlen)
{
	char path[256], cur[64];
	struct stat st;
	snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/iommu_group", pci);
	const char *target = stat(path, &st) == 0 ? "vfio-pci" : "uio_pci_generic";
	char lockdown[16];
	lockdown_mode(lockdown, sizeof lockdown);
	if (strcmp(target, "uio_pci_generic") == 0 && lockdown[0] && strcmp(lockdown, "none") != 0) {
		set_err(err, errlen, "NIC %s (%s): no IOMMU, and kernel lockdown (%s, from Secure "
			"Boot) forbids DPDK's uio_pci_generic access to the NIC: enable the IOMMU "
			"(VT-d / AMD-Vi in the firmware) so NICs go to vfio-pci, or disable Secure Boot",
			spec, pci, lockdown);
		return BOOT_ERR_NIC_DRIVER;
	}
	snprintf(path, sizeof path, "/sys/bus/pci/drivers/%s", target);
	if (stat(path, &st) < 0) {
		set_err(err, errlen, "NIC %s (%s): driver %s is not loaded (missing from %s?)",
			spec, pci, target, BOOT_MODULE_LIST);
		return BOOT_ERR_NIC_DRIVER;
	}
	if (current_driver(pci, cur, sizeof cur) && strcmp(cur, target) == 0)
		return BOOT_OK;
	snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/driver_override", pci);
	if (write_small(path, target) < 0) {
		set_err(err, errlen, "NIC %s (%s): cannot set driver_override: %s",
			spec, pci, strerror(errno));
		return BOOT_ERR_NIC_BIND;
	}
	if (cur[0]) {
		snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/driver/unbind", pci);
		if (write_small(path, pci) < 0) {
			set_err(err, errlen, "NIC %s (%s): cannot unbind from %s: %s",
				spec, pci, cur, strerror(errno));
			return BOOT_ERR_NIC_BIND;
		}
	}
	int probe_errno = write_small("/sys/bus/pci/drivers_probe", pci) < 0 ? errno : 0;
	if (!current_driver(pci, cur, sizeof cur) || strcmp(cur, target) != 0) {
		set_err(err, errlen, "NIC %s (%s): %s refused the device%s%s%s", spec, pci, target,
			probe_errno ? " (" : "", probe_errno ? strerror(probe_errno) : "",
			probe_errno ? ")" : "");
		if (strcmp(target, "uio_pci_generic") == 0) {
			size_t used = strlen(err);
			set_err(err + used, errlen - used,
				"; uio_pci_generic needs INTx masking, boot with an IOMMU "
				"(intel_iommu=on / amd_iommu) for vfio-pci");
		}
		return BOOT_ERR_NIC_BIND;
	}
	return BOOT_OK;
}

enum boot_error boot_bind_nics(const char *const *nics, int n,
			       char pci_out[][BOOT_PCI_ADDR_LEN], char *err, size_t errlen)
{
	if (n < 0 || n > BOOT_MAX_NICS) {
		set_err(err, errlen, "%d NICs given, at most %d", n, BOOT_MAX_NICS);
		return BOOT_ERR_NIC_SPEC;
	}
	static int nic_modules_loaded;
	unsigned char mac[6];
	for (int i = 0; i < n; i++)
		if (!nic_modules_loaded && parse_mac(nics[i], mac)) {
			/* Only MACs need kernel NIC drivers (to read the address):
			 * loading them costs seconds, so only when asked. */
			load_modules(BOOT_NIC_MODULE_LIST, NULL);
			nic_modules_loaded = 1;
		}
	for (int i = 0; i < n; i++) {
		enum boot_error e = boot_resolve_nic("/sys", nics[i], pci_out[i], err, errlen);
		if (e != BOOT_OK)
			return e;
		e = bind_one(nics[i], pci_out[i], err, errlen);
		if (e != BOOT_OK)
			return e;
	}
	return BOOT_OK;
}

/* ------------------------------------------------------ fatal and power */

static void console_cooked(void)
{
	struct termios t;
	if (tcgetattr(0, &t) < 0)
		return;
	t.c_lflag |= ICANON | ECHO | ECHOE | ISIG;
	t.c_iflag |= ICRNL;
	t.c_oflag |= OPOST | ONLCR;
	tcsetattr(0, TCSANOW, &t);
}

void boot_fatal(const char *reason)
{
	if (fcntl(2, F_GETFD) < 0) {
		int fd = open("/dev/console", O_RDWR | O_NOCTTY);
		if (fd >= 0 && fd != 2) {
			dup2(fd, 2);
			close(fd);
		}
	}
	dprintf(2, "\nmeshgate: FATAL: %s\n", reason);
	if (getpid() != 1)
		_exit(1);
	console_cooked();
	/* the run loop's console may have left fd 0 non-blocking */
	int fl = fcntl(0, F_GETFL);
	if (fl >= 0 && (fl & O_NONBLOCK))
		fcntl(0, F_SETFL, fl & ~O_NONBLOCK);
	dprintf(2, "meshgate: the appliance is stopped; type 'poweroff' or 'reboot'\n");
	char line[128];
	size_t used = 0;
	for (;;) {
		char c;
		ssize_t n = read(0, &c, 1);
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			sleep(3600);   /* no console input: stay alive, quietly */
			continue;
		}
		if (c != '\n' && c != '\r') {
			if (used < sizeof line - 1)
				line[used++] = c;
			continue;
		}
		line[used] = '\0';
		used = 0;
		if (strcmp(line, "poweroff") == 0)
			boot_poweroff();
		else if (strcmp(line, "reboot") == 0)
			boot_reboot();
		dprintf(2, "meshgate: FATAL: %s\nmeshgate: type 'poweroff' or 'reboot'\n", reason);
	}
}

static void power(int how)
{
	sync();
	umount2(BOOT_CONFIG_MOUNT, MNT_DETACH);
	sync();
	reboot(how);
}

void boot_poweroff(void) { power(RB_POWER_OFF); }
void boot_reboot(void) { power(RB_AUTOBOOT); }
