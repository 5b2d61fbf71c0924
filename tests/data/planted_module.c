/* A lookup module planted by another user (tests/isolation_test.ts): if it is
 * ever loaded by a root process, its constructor writes MARKER. */
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>
#include "vale.h"

__attribute__((constructor)) static void planted(void)
{
	if (geteuid() != 0)
		return;
	FILE *f = fopen(MARKER, "w");
	if (f) {
		fprintf(f, "loaded as uid %u\n", (unsigned)geteuid());
		fclose(f);
	}
}

uint32_t vale_lookup(const uint8_t *buf, uint32_t len, uint8_t *ring, uint32_t src, void *priv)
{
	return VALE_BROADCAST;
}
