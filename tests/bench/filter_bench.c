/* Packet-filter benchmark: packets/s through filter_frame() with 10 and
 * 10,000 ingress rules, median of 5 runs of 2M frames each, one core.
 *
 *   new        every frame judged by the rules (no flow table): half the
 *              frames match a rule (a /32 or /24 peer + port range), half
 *              fall to default deny;
 *   flow       every frame belongs to an established flow (table lookup);
 *   shared     worst case for the trie: every rule has peer 0.0.0.0/0 and
 *              its own port range, so all sit on one node (which then gets
 *              its port index: 256 buckets of 256 ports);
 *   naive      a linear first-match scan of the same rules (the reference
 *              the unit test compares against), for scale;
 *   hook-off   no direction enforced: the cost of the hook itself.
 * Ratios compare 10,000 to 10 rules. DPDK's rte_acl is not measured here:
 * net/ builds without DPDK headers (see filter.h). Run: make bench-filter */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "net/filter.h"
#include "tests/unit/filter_frames.h"

#define RUNS 5
#define FRAMES 2000000
#define NFRAMES 4096
#define GW IP4(198, 18, 28, 1)

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}
static uint32_t st = 88172645u;
static uint32_t rnd(void) { st ^= st << 13; st ^= st >> 17; st ^= st << 5; return st; }

static struct filter_rule *rules;
static struct frame frames[NFRAMES];

static void gen_rules(size_t n, bool shared)
{
	for (size_t i = 0; i < n; i++) {
		struct filter_rule *r = &rules[i];
		memset(r, 0, sizeof *r);
		r->dir = FILTER_INGRESS;
		r->proto = FILTER_PROTO_TCP;
		r->group = (uint32_t)i;
		if (shared) {
			r->port_lo = (uint16_t)(1 + i * 6);
			r->port_hi = (uint16_t)(r->port_lo + 2);
		} else {
			r->peer.prefix = i % 2 ? 32 : 24;
			r->peer.addr = (IP4(10, 0, 0, 0) | (rnd() & 0xffffff)) & (~0u << (32 - r->peer.prefix));
			r->port_lo = (uint16_t)(1000 + rnd() % 1000);
			r->port_hi = (uint16_t)(r->port_lo + rnd() % 8);
		}
	}
}

static void gen_frames(size_t n, bool shared)
{
	for (int i = 0; i < NFRAMES; i++) {
		const struct filter_rule *r = &rules[rnd() % n];
		uint32_t src;
		uint16_t dport;
		if (i % 2 == 0) {           /* matches rule r */
			src = shared ? IP4(10, 0, 0, 0) | (rnd() & 0xffffff) : r->peer.addr | (r->peer.prefix == 24 ? rnd() & 0xff : 0);
			dport = (uint16_t)(r->port_lo + rnd() % (r->port_hi - r->port_lo + 1u));
		} else {                    /* most likely matches nothing */
			src = IP4(172, 16, 0, 0) | (rnd() & 0xffff);
			dport = (uint16_t)(shared ? 60001 + rnd() % 5000 : 1000 + rnd() % 1000);
		}
		ff_ipv4(&frames[i], FILTER_PROTO_TCP, src, GW, (uint16_t)(1024 + rnd() % 60000), dport);
	}
}

static long naive(size_t n, uint32_t peer, uint16_t dport)
{
	for (size_t i = 0; i < n; i++) {
		const struct filter_rule *r = &rules[i];
		uint32_t m = r->peer.prefix ? ~0u << (32 - r->peer.prefix) : 0;
		if ((peer & m) == r->peer.addr && dport >= r->port_lo && dport <= r->port_hi)
			return (long)i;
	}
	return -1;
}

enum mode { NEW, FLOW, NAIVE, OFF };

static double run(struct filter *f, struct filter_flows *fl, enum mode m, size_t n, unsigned long *pass)
{
	double t = now();
	unsigned long p = 0;
	for (int i = 0; i < FRAMES; i++) {
		const struct frame *fr = &frames[i & (NFRAMES - 1)];
		if (m == NAIVE) {
			uint32_t src = (uint32_t)fr->b[26] << 24 | (uint32_t)fr->b[27] << 16 | (uint32_t)fr->b[28] << 8 | fr->b[29];
			p += naive(n, src, (uint16_t)(fr->b[36] << 8 | fr->b[37])) >= 0;
		} else {
			p += filter_reason_passes(filter_frame(f, fl, 0, m == FLOW ? FILTER_EGRESS : FILTER_INGRESS,
							       fr->b, fr->n, 1000));
		}
	}
	*pass = p;
	return FRAMES / (now() - t);
}

static double median(struct filter *f, struct filter_flows *fl, enum mode m, size_t n, unsigned long *pass)
{
	double r[RUNS];
	for (int k = 0; k < RUNS; k++)
		r[k] = run(f, fl, m, n, pass);
	qsort(r, RUNS, sizeof r[0], cmp);
	return r[RUNS / 2];
}

int main(void)
{
	static const size_t sizes[] = {10, 10000};
	static const char *const names[] = {"new", "flow", "naive", "hook-off"};
	double res[2][2][4];
	setvbuf(stdout, NULL, _IOLBF, 0);
	rules = calloc(10000, sizeof *rules);
	printf("%-7s %-7s %-9s %14s %10s %8s\n", "rules", "set", "mode", "packets/s", "ns/packet", "passed");
	for (int shared = 0; shared <= 1; shared++) {
		for (int s = 0; s < 2; s++) {
			size_t n = sizes[s];
			gen_rules(n, shared);
			gen_frames(n, shared);
			for (int m = NEW; m <= OFF; m++) {
				struct filter_config c;
				memset(&c, 0, sizeof c);
				c.rules = rules; c.nrules = n; c.ngroups = (uint32_t)n; c.nports = 1;
				c.enforce[0][FILTER_INGRESS] = m != OFF;
				/* FLOW: the frames are judged as egress of an ingress-enforced
				 * port after a first pass inserted them, then as ingress
				 * replies would be looked up: measure the lookup side */
				c.enforce[0][FILTER_EGRESS] = m == FLOW;
				char err[128];
				struct filter *f = filter_new(&c, err, sizeof err);
				if (!f) {
					fprintf(stderr, "filter_new: %s\n", err);
					return 1;
				}
				struct filter_flows *fl = NULL;
				if (m == FLOW) {
					fl = filter_flows_new(4 * NFRAMES, 7);
					/* ingress pass with egress enforced records each flow */
					c.enforce[0][FILTER_INGRESS] = false;
					struct filter *seed = filter_new(&c, err, sizeof err);
					for (int i = 0; i < NFRAMES; i++) {
						struct frame rev;
						const uint8_t *b = frames[i].b;
						uint32_t src = (uint32_t)b[26] << 24 | (uint32_t)b[27] << 16 | (uint32_t)b[28] << 8 | b[29];
						uint16_t sport = (uint16_t)(b[34] << 8 | b[35]), dport = (uint16_t)(b[36] << 8 | b[37]);
						/* a packet from the peer to us records the flow... */
						ff_ipv4(&rev, FILTER_PROTO_TCP, src, GW, dport, sport);
						filter_frame(seed, fl, 0, FILTER_INGRESS, rev.b, rev.n, 1000);
						/* ...and our reply to it is what is measured */
						ff_ipv4(&frames[i], FILTER_PROTO_TCP, GW, src, sport, dport);
					}
					filter_free(seed);
				}
				unsigned long pass;
				double pps = median(f, fl, (enum mode)m, n, &pass);
				res[shared][s][m] = pps;
				printf("%-7zu %-7s %-9s %14.0f %10.1f %7.1f%%\n", n, shared ? "shared" : "cidrs",
				       names[m], pps, 1e9 / pps, 100.0 * (double)pass / FRAMES);
				filter_free(f);
				filter_flows_free(fl);
				if (m == FLOW)
					gen_frames(n, shared);  /* restore ingress frames */
			}
		}
	}
	printf("\nratio 10,000 / 10 rules (packets/s):\n");
	for (int shared = 0; shared <= 1; shared++)
		for (int m = NEW; m <= OFF; m++)
			printf("  %-7s %-9s %.2f\n", shared ? "shared" : "cidrs", names[m], res[shared][1][m] / res[shared][0][m]);
	free(rules);
	return 0;
}
