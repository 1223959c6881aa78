/* Coalescing of consecutive outgoing TCP segments into one large frame for
 * segmentation offload (net/stack.c uses it on ports that have it).
 *
 * lwIP sends a bulk stream as MSS-sized Ethernet/IPv4/TCP frames, one after
 * another. Handing each to the kernel (af_packet) costs a packet's worth of
 * work on both sides of a veth; the kernel's own TCP hands a veth 64 KB frames
 * and lets the receiver take them whole. Here consecutive segments of one
 * flow (same addresses and ports, each starting where the previous ended, all
 * but the last of one size, plain ACK/PSH segments without options) are
 * gathered into one frame: the first segment's headers followed by all the
 * payloads, which the driver sends with a segmentation request (gso_size =
 * the segment size); the kernel cuts it back into exactly those segments, or
 * hands it whole to a receiver on the same machine.
 *
 * Of lwIP only its checksum (LWIP_CHKSUM); no allocation after tco_init: the
 * caller copies frames in. The
 * frame layout is checked here (tco_eligible); the caller passes the first
 * TCO_HDR bytes of each frame. Single-threaded like the rest of net/. */
#ifndef MESHGATE_TCP_COALESCE_H
#define MESHGATE_TCP_COALESCE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Ethernet (14) + IPv4 without options (20) + TCP without options (20). */
#define TCO_HDR 54u
#define TCO_L4_OFF 34u
/* Largest coalesced frame: the IPv4 total length is 16 bits. */
#define TCO_MAX_FRAME (14u + 65535u)

struct tco {
	uint8_t *buf;           /* TCO_MAX_FRAME bytes: headers, then payloads */
	uint32_t len;           /* bytes in buf; 0 = nothing pending */
	uint32_t next_seq;      /* host order: where the next segment must start */
	uint16_t seg;           /* payload bytes of the first segment */
	uint16_t nsegs;
	bool closed;            /* a short segment was added: nothing may follow */
	bool psh;
};

/* buf must hold TCO_MAX_FRAME bytes. */
void tco_init(struct tco *c, uint8_t *buf);

/* Whether a frame of frame_len bytes whose first TCO_HDR bytes are h can be
 * coalesced at all: IPv4 without options and not a fragment, TCP without
 * options, flags ACK or ACK+PSH only, some payload, lengths consistent. */
bool tco_eligible(const uint8_t *h, uint32_t frame_len);

/* Whether that (eligible) frame continues what is pending. */
bool tco_continues(const struct tco *c, const uint8_t *h, uint32_t frame_len);

/* Starts a new pending frame (the pending one must have been taken and
 * tco_reset): returns where the caller copies the whole frame. */
uint8_t *tco_start(struct tco *c, const uint8_t *h, uint32_t frame_len);

/* Adds a continuing frame: returns where the caller copies its payload
 * (frame_len - TCO_HDR bytes). Its acknowledgement and window replace the
 * pending ones (they are newer). */
uint8_t *tco_append(struct tco *c, const uint8_t *h, uint32_t frame_len);

/* Finishes the pending frame for sending with segmentation offload when it
 * holds more than one segment: sets its IPv4 length and header checksum,
 * PSH if any segment had it, and puts the pseudo-header sum in the TCP
 * checksum (the offload fills in each segment's). Returns the frame length;
 * c->buf holds it, c->seg is the segment size. */
uint32_t tco_finish(struct tco *c);

/* Writes segment i (0 <= i < nsegs) of a pending frame as lwIP would have
 * sent it, with its own sequence number, IPv4 id, lengths and checksums
 * (PSH only on the last, if any had it), into out (at least TCO_HDR + seg
 * bytes). Returns its length. For when the offload refuses a frame; works
 * before or after tco_finish. */
uint32_t tco_segment(const struct tco *c, unsigned i, uint8_t *out);
/* The length tco_segment(c, i, ...) writes. */
uint32_t tco_segment_len(const struct tco *c, unsigned i);

void tco_reset(struct tco *c);

/* Fills in the TCP checksum of an Ethernet/IPv4 (no options, not a
 * fragment) TCP frame of len bytes, for an interface where lwIP leaves
 * them to us. Returns false, leaving the frame alone, for anything else. */
bool tco_tcp_checksum(uint8_t *frame, uint32_t len);

#endif
