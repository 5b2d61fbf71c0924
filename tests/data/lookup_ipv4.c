/* The classic mSwitch tutorial lookup module, as a vale user module:
 * IPv4 frames go to the source port + 1 (or to route[src] once configured),
 * anything else is broadcast. Built by tests/port_test.ts. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "vale.h"

struct routes {
	uint32_t dst[1024]; /* dst + 1; 0 = default (src + 1) */
};

uint32_t vale_lookup(const uint8_t *buf, uint32_t len, uint8_t *ring, uint32_t src, void *priv)
{
	struct routes *r = priv;
	if (len < 14 || buf[12] != 0x08 || buf[13] != 0x00)
		return VALE_BROADCAST;
	if (src < 1024 && r->dst[src])
		return r->dst[src] - 1;
	return src + 1;
}

int vale_config(const char *req, uint32_t len, void *priv, uint32_t priv_size, char *reply,
		uint32_t rlen)
{
	struct routes *r = priv;
	unsigned s, d;
	if (sscanf(req, "route %u %u", &s, &d) != 2 || s >= 1024)
		return -22;
	r->dst[s] = d + 1;
	return snprintf(reply, rlen, "route %u -> %u", s, d);
}
