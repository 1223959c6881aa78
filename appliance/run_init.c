/* meshgate as PID 1 in its bootable image (images/): boot the machine
 * (drivers/boot), run the appliance on the config volume's files or the
 * embedded demo, power off on shutdown. Never returns. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "appliance/run.h"
#include "appliance/run_internal.h"
#include "drivers/boot.h"

bool run_is_pid1(void)
{
	return getpid() == 1;
}

int run_as_init(int argc, char **argv)
{
	struct boot_info bi;
	char err[512];
	if (boot_init(&bi, err, sizeof err) != BOOT_OK)
		boot_fatal(err);
	boot_info_print(&bi, stdout);
	struct run_options o;
	memset(&o, 0, sizeof o);
	for (int i = 0; i < bi.nconfig_files && i < RUN_MAX_CONFIGS; i++)
		o.configs[o.nconfigs++] = bi.config_files[i];
	o.console = "stdio";
	o.state_dir = "/run/meshgate/demo";
	struct appliance *a = &the_appliance;
	memset(a, 0, sizeof *a);
	a->opt = o;
	setvbuf(stdout, NULL, _IOLBF, 0);
	a->boot = &bi;
	int rc = run_inner(a);
	run_teardown(a);
	if (rc != 0)
		boot_fatal("meshgate stopped: see the messages above");
	boot_poweroff();
	boot_fatal("power off refused by the kernel");
}
