/* lwIP's Internet checksum as meshgate builds it (LWIP_CHKSUM in
 * net/lwipopts.h) against a deliberately naive RFC 1071 reference: every
 * length 0..1600 at every alignment 0..7, random bytes and all-0xff bytes
 * (the carry-heavy case), and pbuf chains with odd-length links through
 * lwIP's own inet_chksum_pbuf. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "lwip/init.h"
#include "lwip/inet_chksum.h"
#include "lwip/pbuf.h"

/* RFC 1071, big-endian 16-bit words, folded and complemented; returned as
 * the two bytes that go on the wire, read natively (what lwIP returns). */
static uint16_t reference(const unsigned char *p, size_t len)
{
	uint32_t sum = 0;
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons((uint16_t)~sum);
}

static void test_all_lengths_and_alignments(void **state)
{
	static unsigned char buf[1700];

	(void)state;
	srand(7);
	for (int fill = 0; fill < 2; fill++) {
		for (size_t i = 0; i < sizeof buf; i++)
			buf[i] = fill ? 0xff : (unsigned char)rand();
		for (int off = 0; off < 8; off++)
			for (int len = 0; len <= 1600; len++) {
				uint16_t got = inet_chksum(buf + off, (u16_t)len);
				uint16_t want = reference(buf + off, (size_t)len);

				if (got != want)
					fail_msg("fill %d off %d len %d: got %04x want %04x", fill, off,
						 len, got, want);
			}
	}
}

static void test_pbuf_chains(void **state)
{
	static unsigned char flat[3000];
	size_t total;

	(void)state;
	srand(11);
	for (int round = 0; round < 300; round++) {
		struct pbuf *head = NULL;
		size_t off = 0;
		int links = 1 + rand() % 5;

		for (int k = 0; k < links; k++) {
			u16_t len = (u16_t)(1 + rand() % 600);   /* odd lengths on purpose */
			struct pbuf *q = pbuf_alloc(PBUF_RAW, len, PBUF_RAM);

			assert_non_null(q);
			for (u16_t i = 0; i < len; i++)
				((unsigned char *)q->payload)[i] = flat[off + i] = (unsigned char)rand();
			off += len;
			if (head)
				pbuf_cat(head, q);
			else
				head = q;
		}
		total = off;
		assert_int_equal(inet_chksum_pbuf(head), reference(flat, total));
		pbuf_free(head);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_all_lengths_and_alignments),
		cmocka_unit_test(test_pbuf_chains),
	};

	lwip_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
