/* The proxy's delayed-ACK clock (appliance/ack_wait.h), driven through
 * the timelines that matter: keep-alive request/response, where every ACK
 * rides on data and none may be sent alone; a peer that sends a head and
 * waits for its ACK; lwIP's own every-second-segment ACK. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "appliance/ack_wait.h"

#define DELAY 1000u

/* Keep-alive on one side: request at 0, our reply (data) at 50; the next
 * request at 900. At 1000, when the first request's delay has run out, the
 * ACK owed is the second request's, owed for 100 us only: not yet. Then the
 * reply at 950 carries it, and at 1900 nothing is owed. */
static void test_keepalive_never_acks_alone(void **state)
{
	(void)state;
	struct ack_wait w = {0};
	uint32_t snd = 5000;
	ack_wait_segment(&w, 0, snd, false);
	assert_true(w.waiting);
	snd += 200;                                     /* reply at 50 carries the ACK */
	ack_wait_segment(&w, 900, snd, false);         /* next request */
	assert_int_equal(w.since_us, 900);
	assert_int_equal(ack_wait_check(&w, 1000, snd, true, DELAY), 1900);
	snd += 200;                                     /* reply at 950 */
	assert_int_equal(ack_wait_check(&w, 1900, snd, false, DELAY), 0);
	assert_false(w.waiting);
}

/* A peer that sends a response head and waits for our ACK before the body
 * (Nagle): nothing goes out from us, so the ACK is sent when the delay has
 * run out, not before. */
static void test_lone_segment_acked_after_delay(void **state)
{
	(void)state;
	struct ack_wait w = {0};
	ack_wait_segment(&w, 100, 7, false);
	assert_int_equal(ack_wait_check(&w, 600, 7, true, DELAY), 1100);
	assert_int_equal(ack_wait_check(&w, 1099, 7, true, DELAY), 1100);
	assert_int_equal(ack_wait_check(&w, 1100, 7, true, DELAY), ACK_WAIT_SEND);
	assert_false(w.waiting);
	/* a second lone segment: the delay runs from it */
	ack_wait_segment(&w, 1500, 7, false);
	assert_int_equal(ack_wait_check(&w, 2000, 7, true, DELAY), 2500);
	assert_int_equal(ack_wait_check(&w, 2500, 7, true, DELAY), ACK_WAIT_SEND);
}

/* More segments while nothing is sent keep the first one's time: the ACK
 * covering them all is not pushed back by a stream of small segments. */
static void test_later_segments_keep_the_first_time(void **state)
{
	(void)state;
	struct ack_wait w = {0};
	ack_wait_segment(&w, 0, 1, false);
	ack_wait_segment(&w, 400, 1, false);
	ack_wait_segment(&w, 800, 1, false);
	assert_int_equal(w.since_us, 0);
	assert_int_equal(ack_wait_check(&w, 1000, 1, true, DELAY), ACK_WAIT_SEND);
}

/* lwIP sends the ACK itself (second segment): nothing owed by us; and an
 * ACK that went out meanwhile (the stack no longer owes one) is forgotten. */
static void test_stack_acked(void **state)
{
	(void)state;
	struct ack_wait w = {0};
	ack_wait_segment(&w, 0, 1, false);
	ack_wait_segment(&w, 10, 1, true);
	assert_false(w.waiting);
	assert_int_equal(ack_wait_check(&w, 2000, 1, true, DELAY), 0);
	ack_wait_segment(&w, 3000, 1, false);
	assert_int_equal(ack_wait_check(&w, 4000, 1, false, DELAY), 0);
	assert_false(w.waiting);
}

/* Owed, but data went out after the wait began and no segment callback
 * restarted it: the stack owes an ACK we did not time. Send it. */
static void test_untimed_owed_ack_is_sent(void **state)
{
	(void)state;
	struct ack_wait w = {0};
	ack_wait_segment(&w, 0, 1, false);
	assert_int_equal(ack_wait_check(&w, 10, 900, true, DELAY), ACK_WAIT_SEND);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keepalive_never_acks_alone),
		cmocka_unit_test(test_lone_segment_acked_after_delay),
		cmocka_unit_test(test_later_segments_keep_the_first_time),
		cmocka_unit_test(test_stack_acked),
		cmocka_unit_test(test_untimed_owed_ack_is_sent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
