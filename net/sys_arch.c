/* lwIP's platform hooks for NO_SYS=1: the clock (sys_now) and randomness
 * (LWIP_RAND, used for TCP initial sequence numbers and ephemeral ports). */
#include <errno.h>
#include <stdint.h>
#include <sys/random.h>
#include <time.h>

#include "lwip/arch.h"
#include "lwip/sys.h"
#include "net/stack.h"

uint64_t net_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint32_t net_now_ms(void)
{
	/* wraps every ~49 days; lwIP compares with u32 differences */
	return (uint32_t)(net_now_us() / 1000u);
}

static uint64_t pass_us;
static int pass_set;

uint64_t net_clock_pass(void)
{
	pass_us = net_now_us();
	pass_set = 1;
	return pass_us;
}

uint64_t net_pass_us(void)
{
	return pass_set ? pass_us : net_now_us();
}

uint32_t net_pass_ms(void)
{
	/* wraps as net_now_ms does */
	return (uint32_t)(net_pass_us() / 1000u);
}

u32_t sys_now(void)
{
	return net_pass_ms();
}

/* getrandom() in batches so a burst of new connections is not a burst of
 * system calls. */
#define RAND_BATCH 64
static unsigned int rand_buf[RAND_BATCH];
static unsigned rand_left;
static uint64_t rand_fallback;

unsigned int meshgate_lwip_rand(void)
{
	if (rand_left == 0) {
		size_t got = 0;
		while (got < sizeof(rand_buf)) {
			ssize_t n = getrandom((char *)rand_buf + got, sizeof(rand_buf) - got, 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			got += (size_t)n;
		}
		if (got < sizeof(rand_buf)) {
			/* No kernel randomness (should not happen after boot): a
			 * splitmix64 stream seeded from the clock keeps lwIP going
			 * with ISNs that are at least not constant. */
			if (rand_fallback == 0) {
				struct timespec ts;
				clock_gettime(CLOCK_MONOTONIC, &ts);
				rand_fallback = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uintptr_t)&ts;
			}
			for (unsigned i = 0; i < RAND_BATCH; i++) {
				uint64_t z = (rand_fallback += 0x9e3779b97f4a7c15ull);
				z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
				z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
				rand_buf[i] = (unsigned int)(z ^ (z >> 31));
			}
		}
		rand_left = RAND_BATCH;
	}
	return rand_buf[--rand_left];
}
