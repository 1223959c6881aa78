/* meshgate as PID 1 in its bootable image (images/): boot the machine
 * (drivers/boot), run the appliance on the config volume's files or the
 * image's embedded demo, power off on shutdown. Never returns: a fatal
 * error prints its reason and keeps the console alive (boot_fatal), since
 * PID 1 exiting would panic the kernel.
 *
 * Ports in the image name their NIC by PCI address ("0000:00:04.0", or
 * "00:04.0") or MAC ("52:54:00:4d:47:01"), optionally followed by DPDK
 * device arguments (",key=value"); never by kernel interface name, which
 * depends on probe order. prepare_ports() binds each NIC to vfio-pci (IOMMU
 * present) or uio_pci_generic and rewrites the device to its PCI address,
 * which is what the EAL allow-list and port_open() take. DPDK virtual
 * devices ("net_...") are left alone. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "appliance/config.h"
#include "appliance/run.h"
#include "appliance/run_internal.h"
#include "drivers/boot.h"

/* The image's demo default: QEMU user networking is 198.18.4.0/24 in the
 * tests and the README (net=198.18.4.0/24), its gateway is .2; the guest
 * takes .15, which hostfwd rules point at. */
#define IMAGE_DEMO_ADDR "198.18.4.15"
#define IMAGE_DEMO_PREFIX "24"
#define IMAGE_DEMO_GW "198.18.4.2"
#define IMAGE_STATE_DIR "/run/meshgate/demo"   /* tmpfs: a new demo PKI each boot */

/* NICs bound so far, by the spec the config gave. A NIC chosen by MAC
 * loses its kernel interface (and so its MAC in sysfs) once bound, so a
 * reload resolves it from here. */
struct image_nic {
	char spec[32];
	char pci[BOOT_PCI_ADDR_LEN];
};
static struct image_nic bound_nics[BOOT_MAX_NICS];
static int nbound_nics;
/* The last port preparation failure, for the FATAL line at boot. */
static char prepare_error[512];

bool run_is_pid1(void)
{
	return getpid() == 1;
}

/* Lower case, '-' as ':': "52-54-00-AB-..." and "52:54:00:ab:..." are one NIC. */
static void normalise_spec(const char *in, size_t n, char *out, size_t outlen)
{
	size_t i = 0;
	for (; i < n && i + 1 < outlen; i++) {
		char c = in[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		out[i] = c == '-' ? ':' : c;
	}
	out[i] = '\0';
}

static const char *bound_pci(const char *spec)
{
	for (int i = 0; i < nbound_nics; i++)
		if (strcmp(bound_nics[i].spec, spec) == 0)
			return bound_nics[i].pci;
	return NULL;
}

static int prepare_ports(struct config *cfg, char *err, size_t len);

static int image_prepare_ports(struct config *cfg, char *err, size_t len)
{
	int rc = prepare_ports(cfg, err, len);
	if (rc != 0)
		snprintf(prepare_error, sizeof prepare_error, "%s", err);
	return rc;
}

static int prepare_ports(struct config *cfg, char *err, size_t len)
{
	for (int i = 0; i < cfg->nports; i++) {
		struct config_port *p = &cfg->ports[i];
		if (strncmp(p->device, "net_", 4) == 0)
			continue;       /* DPDK virtual device: opened as written */
		size_t n = strcspn(p->device, ",");
		const char *devargs = p->device + n;   /* "" or ",key=value..." */
		char spec[32];
		if (n >= sizeof spec) {
			snprintf(err, len, "port %s (spec.ports[%d].device): '%.*s' is neither a PCI "
				 "address (0000:00:04.0) nor a MAC (52:54:00:12:34:56); kernel interface "
				 "names are not accepted", p->name, i, (int)n, p->device);
			return -1;
		}
		normalise_spec(p->device, n, spec, sizeof spec);
		const char *pci = bound_pci(spec);
		if (!pci) {
			const char *one[1] = {spec};
			char out[1][BOOT_PCI_ADDR_LEN];
			char why[384];
			if (nbound_nics == BOOT_MAX_NICS) {
				snprintf(err, len, "port %s (spec.ports[%d].device): more than %d NICs bound "
					 "since boot", p->name, i, BOOT_MAX_NICS);
				return -1;
			}
			if (boot_bind_nics(one, 1, out, why, sizeof why) != BOOT_OK) {
				snprintf(err, len, "port %s (spec.ports[%d].device): %s", p->name, i, why);
				return -1;
			}
			struct image_nic *b = &bound_nics[nbound_nics++];
			snprintf(b->spec, sizeof b->spec, "%s", spec);
			memcpy(b->pci, out[0], sizeof b->pci);
			pci = b->pci;
			printf("boot: port %s: NIC %s is PCI %s, now on %s\n", p->name, spec, pci,
			       the_appliance.boot && the_appliance.boot->iommu ? "vfio-pci"
									: "uio_pci_generic");
		}
		for (int j = 0; j < i; j++)
			if (strncmp(cfg->ports[j].device, pci, strlen(pci)) == 0 &&
			    (cfg->ports[j].device[strlen(pci)] == '\0' ||
			     cfg->ports[j].device[strlen(pci)] == ',')) {
				snprintf(err, len, "port %s (spec.ports[%d].device): NIC %s is PCI %s, "
					 "already used by port %s", p->name, i, spec, pci, cfg->ports[j].name);
				return -1;
			}
		char dev[sizeof p->device];
		if ((size_t)snprintf(dev, sizeof dev, "%s%s", pci, devargs) >= sizeof dev) {
			snprintf(err, len, "port %s (spec.ports[%d].device): device arguments too long",
				 p->name, i);
			return -1;
		}
		memcpy(p->device, dev, sizeof dev);
	}
	return 0;
}

/* The embedded demo of the image (run_demo_config, as the host demo) on the
 * machine's first NIC, at QEMU user networking's addresses. */
static const char *image_demo_config(char *buf, size_t len, const char *pci)
{
	char port[160];
	snprintf(port, sizeof port, "device: \"%s\", address: " IMAGE_DEMO_ADDR "/" IMAGE_DEMO_PREFIX
		 ", gateway: " IMAGE_DEMO_GW, pci);
	return run_demo_config(buf, len, "net0", port, false);
}

int run_as_init(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	static struct boot_info bi;
	static char demo[2048];
	char err[512];
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (boot_init(&bi, err, sizeof err) != BOOT_OK)
		boot_fatal(err);
	boot_info_print(&bi, stdout);

	struct appliance *a = &the_appliance;
	memset(a, 0, sizeof *a);
	struct run_options *o = &a->opt;
	for (int i = 0; i < bi.nconfig_files && i < RUN_MAX_CONFIGS; i++)
		o->configs[o->nconfigs++] = bi.config_files[i];
	if (bi.nconfig_files > RUN_MAX_CONFIGS)
		printf("boot: warning: only the first %d of %d config files are read\n",
		       RUN_MAX_CONFIGS, bi.nconfig_files);
	o->console = "stdio";
	o->state_dir = IMAGE_STATE_DIR;
	o->prepare_ports = image_prepare_ports;
	if (o->nconfigs == 0) {
		char pci[BOOT_PCI_ADDR_LEN], what[48];
		if (boot_find_demo_nic("/sys", pci, what, sizeof what, err, sizeof err) != BOOT_OK)
			boot_fatal(err);
		o->demo_config = image_demo_config(demo, sizeof demo, pci);
		if (!o->demo_config)
			boot_fatal("the demo configuration does not fit its buffer");
		printf("boot: no config volume: embedded demo on NIC %s (%s), " IMAGE_DEMO_ADDR
		       "/" IMAGE_DEMO_PREFIX " via " IMAGE_DEMO_GW ", listener 8443;\n"
		       "boot:   demo PKI in " IMAGE_STATE_DIR " (RAM, new at every boot). For your own "
		       "services and certificates, attach a config volume (images/README.md).\n",
		       pci, what);
	}
	a->boot = &bi;
	int rc = run_inner(a);
	run_teardown(a);
	if (rc == 2 && prepare_error[0])
		boot_fatal(prepare_error);
	if (rc == 2)
		boot_fatal("the configuration was refused (errors above); fix the config volume "
			   "and reboot");
	if (rc != 0)
		boot_fatal("meshgate stopped: see the messages above");
	printf("meshgate: powering off\n");
	fflush(stdout);
	boot_poweroff();
	boot_fatal("power off refused by the kernel");
}
