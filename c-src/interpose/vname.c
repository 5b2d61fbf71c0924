/*
 * The switch-port name grammar of vname.h: a small, hand-written mirror of
 * lib/names.ts's parseSwitchPrefix / parseNetmapLike / splitRing /
 * checkName for the forms a capture can open. Messages follow names.ts.
 */
#include "vname.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NAME 15	 /* port, interface, switch: IFNAMSIZ - 1 */
#define MAX_RING 4094	 /* -N */
#define NAME_END "{}^*/@" /* characters that end a name and start a suffix */

static int ident(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}
static int digit(char c) { return c >= '0' && c <= '9'; }

/* A character of a switch or port name (names.ts isValeNameChar): printable
 * ASCII except space and the grammar's own characters. */
#define RESERVED "/:{}^*@"
#define VALE_CHARS "allowed: printable ASCII except space and '/', ':', '{', '}', '^', '*', '@'"
int vname_char(char c)
{
	unsigned char u = (unsigned char)c;
	return u > 0x20 && u < 0x7f && !strchr(RESERVED, c);
}

__attribute__((format(printf, 4, 5))) static int fail(const char *s, char *err, size_t n,
						      const char *fmt, ...)
{
	char why[192];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	/* the name as given, control characters shown as \xNN */
	char shown[96];
	size_t k = 0;
	for (const unsigned char *c = (const unsigned char *)s; *c && k + 5 < sizeof(shown); c++) {
		if (*c < 0x20 || *c == 0x7f)
			k += (size_t)snprintf(shown + k, sizeof(shown) - k, "\\x%02x", *c);
		else
			shown[k++] = (char)*c;
	}
	shown[k] = 0;
	snprintf(err, n, "invalid port name '%s': %s", shown, why);
	return -1;
}

/* A character for a message, as names.ts's showChar. */
static const char *show(char c, char *buf, size_t n)
{
	unsigned char u = (unsigned char)c;
	if (u < 0x20 || u == 0x7f)
		snprintf(buf, n, "U+%04X", u);
	else if (c == '\'')
		snprintf(buf, n, "\"'\"");
	else if (c == ' ')
		snprintf(buf, n, "' ' (space)");
	else
		snprintf(buf, n, "'%c'", c);
	return buf;
}

int vname_is_vale(const char *s) { return s && strncmp(s, "vale", 4) == 0; }

/* A port name: 1..15 vname_char()s, starting with a letter, digit or '_'. */
static int check_name(const char *s, const char *name, size_t len, char *err, size_t n)
{
	char b[16];
	if (len == 0)
		return fail(s, err, n, "empty port name");
	for (size_t k = 0; k < len; k++)
		if (!vname_char(name[k]))
			return fail(s, err, n, "invalid character %s in port name '%.*s' (" VALE_CHARS ")",
				    show(name[k], b, sizeof(b)), (int)len, name);
	if (!ident(name[0]))
		return fail(s, err, n, "port name '%.*s' must start with a letter, a digit or '_'",
			    (int)len, name);
	if (len > MAX_NAME)
		return fail(s, err, n, "port name '%.*s' is %zu characters; at most %d are allowed%s",
			    (int)len, name, len, MAX_NAME,
			    name == s ? " (a name without ':' is a port of switch 'vale' named by the "
					"whole name)"
				      : "");
	return 0;
}

/* A trailing -N of seg[0, *len): the ring selector (names.ts splitRing). */
static int split_ring(const char *s, const char *seg, size_t *len, int *ring, char *err, size_t n)
{
	size_t dash = *len;
	while (dash > 0 && seg[dash - 1] != '-')
		dash--;
	if (dash == 0)
		return 0; /* no '-' */
	dash--;
	size_t nd = *len - dash - 1;
	if (nd == 0)
		return fail(s, err, n, "missing ring number after '-' (write '-N' to bind ring pair N)");
	for (size_t k = dash + 1; k < *len; k++)
		if (!digit(seg[k]))
			return 0; /* '-' is part of the name */
	/* "a-1-0" or "a--0": the name left would itself read as a ring selector */
	size_t j = dash;
	while (j > 0 && digit(seg[j - 1]))
		j--;
	if (j > 0 && seg[j - 1] == '-')
		return fail(s, err, n,
			    "'%.*s' before the ring selector '%.*s': a name that ends in '-' or '-N' "
			    "cannot take a ring selector (give one '-N')",
			    (int)(dash - j + 1), seg + j - 1, (int)(*len - dash), seg + dash);
	if (nd > 6 || strtol(seg + dash + 1, NULL, 10) > MAX_RING)
		return fail(s, err, n, "ring number %.*s is out of range (0..%d)", (int)nd,
			    seg + dash + 1, MAX_RING);
	*ring = (int)strtol(seg + dash + 1, NULL, 10);
	*len = dash;
	return 0;
}

int vname_parse(const char *s, struct vname *out, char *err, size_t n)
{
	char b[16];
	memset(out, 0, sizeof(*out));
	out->ring = -1;
	if (!vname_is_vale(s))
		return fail(s ? s : "", err, n, "not a switch port (expected 'valeX:PORT')");
	size_t i = 4 + strcspn(s + 4, ":" NAME_END), start;
	if (s[i] != ':') {
		/* 2012: no ':' before the suffixes: a port of switch "vale" named by the
		 * whole name -- unless a ':' comes later (before any option), which
		 * puts a reserved character into a switch name */
		const char *colon = strchr(s + i, ':'), *opt = strchr(s + i, '@');
		if (s[i] && colon && (!opt || colon < opt))
			return fail(s, err, n, "invalid character %s in switch name '%.*s' (" VALE_CHARS ")",
				    show(s[i], b, sizeof(b)), (int)(colon - s), s);
		memcpy(out->sw, "vale", 5);
		start = 0;
	} else {
		for (size_t k = 4; k < i; k++)
			if (!vname_char(s[k]))
				return fail(s, err, n,
					    "invalid character %s in switch name '%.*s' (" VALE_CHARS ")",
					    show(s[k], b, sizeof(b)), (int)i, s);
		if (i > MAX_NAME)
			return fail(s, err, n,
				    "switch name '%.*s' is %zu characters; at most %d are allowed (the "
				    "':' must come within the first 16 characters)",
				    (int)i, s, i, MAX_NAME);
		memcpy(out->sw, s, i);
		start = i + 1;
	}
	size_t e = start + strcspn(s + start, NAME_END);
	const char *base = s + start;
	size_t blen = e - start;
	if (s[e] == '{' || s[e] == '}') {
		if (check_name(s, base, blen, err, n))
			return -1;
		char role = s[e];
		size_t ps = e + 1, pe = ps + strcspn(s + ps, NAME_END);
		if (s[pe] == '{' || s[pe] == '}')
			return fail(s, err, n,
				    "only one pipe suffix ('{' or '}') is allowed, found a second %s",
				    show(s[pe], b, sizeof(b)));
		size_t idlen = pe - ps;
		if (split_ring(s, s + ps, &idlen, &out->ring, err, n))
			return -1;
		if (idlen == 0)
			return fail(s, err, n, "empty pipe id after '%c'", role);
		for (size_t k = 0; k < idlen; k++)
			if (!ident(s[ps + k]))
				return fail(s, err, n,
					    "invalid character %s in pipe id '%.*s' (allowed: letters, "
					    "digits, '_')",
					    show(s[ps + k], b, sizeof(b)), (int)idlen, s + ps);
		if (blen + 1 + idlen > MAX_NAME)
			return fail(s, err, n,
				    "'%.*s%c%.*s' is %zu characters; a switch port with its pipe "
				    "suffix is at most %d here",
				    (int)blen, base, role, (int)idlen, s + ps, blen + 1 + idlen,
				    MAX_NAME);
		snprintf(out->port, sizeof(out->port), "%.*s%c%.*s", (int)blen, base, role,
			 (int)idlen, s + ps);
		out->oflags |= role == '{' ? VO_PIPE_MASTER : VO_PIPE_SLAVE;
		e = pe;
	} else {
		if (split_ring(s, base, &blen, &out->ring, err, n))
			return -1;
		if (check_name(s, base, blen, err, n))
			return -1;
		memcpy(out->port, base, blen);
	}
	i = e;
	if (s[i] == '^' || s[i] == '*')
		return fail(s, err, n, "%s selects host rings, which a switch port does not have",
			    show(s[i], b, sizeof(b)));
	while (s[i] == '/') {
		i++;
		if (!s[i] || s[i] == '/' || s[i] == '@')
			return fail(s, err, n, "empty flag list after '/'");
		for (; s[i] && s[i] != '/' && s[i] != '@'; i++) {
			switch (s[i]) {
			case 'x':
				out->oflags |= VO_EXCLUSIVE;
				break;
			case 'R':
				out->oflags |= VO_RX_ONLY;
				break;
			case 'T':
				out->oflags |= VO_TX_ONLY;
				break;
			case 'z':
				out->oflags |= VO_MONITOR_ZCOPY;
				break;
			case 't':
				out->oflags |= VO_MONITOR_TX;
				break;
			case 'r':
				out->oflags |= VO_MONITOR_RX;
				break;
			default:
				return fail(s, err, n,
					    "unknown flag %s (flags: x exclusive, z zero-copy monitor, "
					    "t TX monitor, r RX monitor, R RX rings only, T TX rings "
					    "only)",
					    show(s[i], b, sizeof(b)));
			}
		}
	}
	if (s[i] == '@')
		return fail(s, err, n,
			    "'@' options (memory regions, @conf:) are not supported for capture; "
			    "give the port name alone");
	if (s[i])
		return fail(s, err, n, "unexpected character %s", show(s[i], b, sizeof(b)));
	if ((out->oflags & VO_RX_ONLY) && (out->oflags & VO_TX_ONLY))
		return fail(s, err, n,
			    "flags 'R' (RX rings only) and 'T' (TX rings only) exclude each other");
	return 0;
}
