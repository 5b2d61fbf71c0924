/*
 * Switch-port names in C, for the libpcap interposer: the subset of
 * lib/names.ts (the one grammar) that names a port a capture or injection
 * can open. Every name accepted here means what lib/names.ts says it means
 * (tests/pcap_interposer_test.ts runs a table through both); every other
 * form of a `vale...` name is refused with the reason.
 *
 *   valeX:PORT[{ID|}ID][-N][/FLAGS]     port PORT of switch valeX
 *   valePORT[{ID|}ID][-N][/FLAGS]       (no ':', 2012) port "valePORT" of switch "vale"
 *
 *   X      printable ASCII except space and / : { } ^ * @ (may be empty);
 *          "valeX" at most 15 characters (vale-a, vale0, vale_1)
 *   PORT   1..15 of the same characters, starting with a letter, a digit or
 *          '_'; a trailing -N is the ring selector (ring pair N)
 *   {ID    }ID   master / slave end of pipe ID (ID: letters, digits, '_');
 *          PORT plus the pipe suffix is at most 15 characters
 *   FLAGS  x exclusive, R RX rings only, T TX rings only; monitors of PORT
 *          (a new port that receives copies; c-src/core/monitor.c): r what
 *          PORT receives, t what it sends, rt both, z both (served as a copy)
 *
 * Refused with a message: host rings (^, *), '@' options.
 */
#ifndef VALE_VNAME_H
#define VALE_VNAME_H

#include "vale.h"

#include <stddef.h>

struct vname {
	char sw[VALE_SW_NAME_MAX]; /* the switch, "vale" included */
	char port[VALE_NAME_MAX];  /* the port inside it, pipe suffix included */
	int ring;                  /* -1: all rings; else the ring pair of -N */
	uint32_t oflags;           /* VO_* for vale_open */
};

/* Is `s` a vale name at all? (It starts with "vale".) Other names belong to
 * the system's libpcap. */
int vname_is_vale(const char *s);

/* A character of a switch or port name. */
int vname_char(char c);

/* 0 and *out filled, or -1 with the reason in err ("invalid port name
 * 'NAME': REASON", as lib/names.ts words it). */
int vname_parse(const char *s, struct vname *out, char *err, size_t errlen);

#endif
