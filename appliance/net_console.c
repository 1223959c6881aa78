/* lwIP pool usage for the console: see net_console.h. lwIP headers stay in
 * this file (PLATFORM-NOTES: some of its macros clash with glibc's). */
#include "appliance/net_console.h"

#include "appliance/console.h"
#include "lwip/memp.h"
#include "lwip/stats.h"
#include "net/pcb_index.h"

#if !MEMP_STATS
#error "net_console needs lwIP's MEMP_STATS (LWIP_STATS=1 in net/lwipopts.h)"
#endif

static const struct { int pool; const char *name; } pools[] = {
	{MEMP_TCP_PCB, "lwip tcp pcbs"},
	{MEMP_TCP_PCB_LISTEN, "lwip listen pcbs"},
	{MEMP_TCP_SEG, "lwip tcp segments"},
	{MEMP_PBUF, "lwip pbuf refs"},
	{MEMP_PBUF_POOL, "lwip pbuf pool"},
};

void net_console_print_pools(struct console *c)
{
	for (size_t i = 0; i < sizeof pools / sizeof pools[0]; i++) {
		const struct stats_mem *m = lwip_stats.memp[pools[i].pool];
		if (!m)
			continue;
		console_printf(c, "  %-20s %u / %u in use (peak %u, refused %u)\n", pools[i].name,
			       (unsigned)m->used, (unsigned)m->avail, (unsigned)m->max, (unsigned)m->err);
	}
	struct net_pcb_index_stats x;
	net_pcb_index_get_stats(&x);
	console_printf(c, "  %-20s %u indexed; segments: %llu moved to the front, %llu there already, "
		       "%llu unknown; %llu repaired, %llu rebuilds\n", "tcp pcb index", (unsigned)x.indexed,
		       (unsigned long long)x.moved, (unsigned long long)x.at_front,
		       (unsigned long long)x.unknown, (unsigned long long)x.repaired,
		       (unsigned long long)x.rebuilds);
	console_printf(c, "  %-20s %llu entered, %llu freed at once past the cap of %u\n", "tcp time-wait",
		       (unsigned long long)x.time_wait, (unsigned long long)x.time_wait_freed,
		       (unsigned)NET_TIME_WAIT_MAX);
}
