/*
 * kern_subr.c -- compat-bsd's kernel messages and small libkern pieces.
 *
 * Every message is formatted here and handed to the Rust side as one
 * line for the stack's log.  None of this runs on a packet path.
 */
#include <sys/param.h>
#include <sys/systm.h>
#include <sys/device.h>
#include <sys/mbuf.h>
#include <net/if_ether.h>

#include "pktkit_glue.h"

int hz = 100;

__thread struct pktkit_mcache pktkit_mcache;

/* The calling thread's buffer cache, for the Rust side of the adapter. */
struct pktkit_mcache *
pktkit_mcache_self(void)
{
	return &pktkit_mcache;
}

#define MSGLEN	256

static void
vlogf(int level, const char *prefix, const char *fmt, va_list ap)
{
	char buf[MSGLEN];
	size_t n = 0;

	if (prefix != NULL) {
		n = strlcpy(buf, prefix, sizeof(buf));
		if (n < sizeof(buf) - 2) {
			buf[n++] = ':';
			buf[n++] = ' ';
			buf[n] = '\0';
		}
	}
	if (n < sizeof(buf))
		vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
	pktkit_bsd_log(level, buf);
}

void
pktkit_printf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlogf(LOG_INFO, NULL, fmt, ap);
	va_end(ap);
}

void
pktkit_log(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlogf(level, NULL, fmt, ap);
	va_end(ap);
}

void
panic(const char *fmt, ...)
{
	char buf[MSGLEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	pktkit_bsd_panic(buf);
}

#define APRINT(name, level)						\
void									\
name(const char *fmt, ...)						\
{									\
	va_list ap;							\
									\
	va_start(ap, fmt);						\
	vlogf((level), NULL, fmt, ap);					\
	va_end(ap);							\
}									\
void									\
name##_dev(device_t dev, const char *fmt, ...)				\
{									\
	va_list ap;							\
									\
	va_start(ap, fmt);						\
	vlogf((level), device_xname(dev), fmt, ap);			\
	va_end(ap);							\
}

APRINT(aprint_normal, LOG_INFO)
APRINT(aprint_verbose, LOG_INFO)
APRINT(aprint_debug, LOG_DEBUG)
APRINT(aprint_error, LOG_ERR)

void
aprint_naive(const char *fmt, ...)
{
	(void)fmt;
}

bool
device_is_a(device_t dev, const char *name)
{
	const char *dn = dev->dv_cfdata.cf_name;

	return dn != NULL && strcmp(dn, name) == 0;
}

int
config_detach(device_t dev, int flags)
{
	const struct cfattach *ca = dev->dv_cfattach;

	if (ca == NULL || ca->ca_detach == NULL)
		return EOPNOTSUPP;
	return (*ca->ca_detach)(dev, flags);
}

size_t
strlcpy(char *dst, const char *src, size_t size)
{
	size_t len = strlen(src);

	if (size > 0) {
		size_t n = len < size - 1 ? len : size - 1;

		memcpy(dst, src, n);
		dst[n] = '\0';
	}
	return len;
}

char *
ether_sprintf(const uint8_t *ap)
{
	/* Not reentrant, as in NetBSD: for messages only. */
	static char buf[3 * ETHER_ADDR_LEN];

	snprintf(buf, sizeof(buf), "%02x:%02x:%02x:%02x:%02x:%02x",
	    ap[0], ap[1], ap[2], ap[3], ap[4], ap[5]);
	return buf;
}

/*
 * Ethernet CRC-32 (IEEE 802.3 clause 3.2.9), bit by bit: the little-endian
 * form shifts right with the reflected polynomial, the big-endian form
 * shifts left with the normal one.  Multicast hash filters use one or the
 * other depending on the chip.
 */
#define ETHER_CRC_POLY_LE	0xedb88320U
#define ETHER_CRC_POLY_BE	0x04c11db6U

uint32_t
ether_crc32_le(const uint8_t *buf, size_t len)
{
	uint32_t crc = 0xffffffffU;
	size_t i;
	int bit;

	for (i = 0; i < len; i++) {
		crc ^= buf[i];
		for (bit = 0; bit < 8; bit++)
			crc = (crc >> 1) ^ ((crc & 1) ? ETHER_CRC_POLY_LE : 0);
	}
	return crc;
}

uint32_t
ether_crc32_be(const uint8_t *buf, size_t len)
{
	uint32_t crc = 0xffffffffU, carry;
	size_t i;
	int bit;
	uint8_t c;

	for (i = 0; i < len; i++) {
		c = buf[i];
		for (bit = 0; bit < 8; bit++, c >>= 1) {
			carry = ((crc & 0x80000000U) ? 1 : 0) ^ (c & 1);
			crc <<= 1;
			if (carry)
				crc = (crc ^ ETHER_CRC_POLY_BE) | carry;
		}
	}
	return crc;
}
