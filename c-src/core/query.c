/*
 * Small read-only queries for C programs that cannot parse vale_switch_json:
 * the counters of an open port (pcap_stats in the libpcap interposer,
 * c-src/interpose/) and the names of a switch's ports (pcap_findalldevs).
 * Not on any hot path.
 */
#include "internal.h"

#include <stdio.h>

/* The switch's counters of the port p has open (a snapshot; each field is
 * read once). -ESTALE when p's table entry was reclaimed or reused. */
VALE_API int vale_port_counters(vale_port *p, struct vale_counters *out)
{
	memset(out, 0, sizeof(*out));
	struct vale_sw *sw = p->sw;
	if (p->idx >= sw->max_ports)
		return vale_err(EINVAL, "port index out of range");
	const struct vale_port_ent *e = &sw->ports[p->idx];
	if (LOAD_ACQ(&e->gen) != p->gen || LOAD_RLX(&e->state) != VP_ACTIVE)
		return vale_err(ESTALE, "port %s: its table entry was reclaimed", sw->name);
	const struct vale_counters *c = &e->c;
	out->tx_pkts = LOAD_RLX(&c->tx_pkts);
	out->tx_bytes = LOAD_RLX(&c->tx_bytes);
	out->rx_pkts = LOAD_RLX(&c->rx_pkts);
	out->rx_bytes = LOAD_RLX(&c->rx_bytes);
	for (int k = 0; k < VD_NREASONS; k++)
		out->drops[k] = LOAD_RLX(&c->drops[k]);
	out->sync_errors = LOAD_RLX(&c->sync_errors);
	out->leases_reclaimed = LOAD_RLX(&c->leases_reclaimed);
	return 0;
}

/* The names of switch `swname`'s ports, each followed by a NUL, in table
 * order; dead processes' ports are reclaimed first. Names are copied only
 * when they are valid port names (a scribbled entry is skipped). Returns the
 * bytes needed (call again with a bigger buffer if > buflen), or -errno. */
VALE_API int vale_port_names(const char *run_dir, const char *swname, char *buf, uint32_t buflen)
{
	struct vale_sw *sw;
	int r = vale_switch_get(run_dir, swname, false, &sw);
	if (r)
		return r;
	r = vale_ctl_lock(sw);
	if (r) {
		vale_switch_put(sw);
		return r;
	}
	vale_reap_locked(sw, true);
	uint32_t len = 0;
	for (uint32_t i = 0; i < sw->max_ports; i++) {
		const struct vale_port_ent *e = &sw->ports[i];
		if (LOAD_RLX(&e->state) != VP_ACTIVE)
			continue;
		char name[VALE_NAME_MAX];
		memcpy(name, e->name, sizeof(name));
		name[VALE_NAME_MAX - 1] = 0;
		if (!vale_valid_ident(name, VALE_NAME_MAX - 1, false, true))
			continue;
		uint32_t n = (uint32_t)strlen(name) + 1;
		if (len + n <= buflen)
			memcpy(buf + len, name, n);
		len += n;
	}
	vale_ctl_unlock(sw);
	vale_switch_put(sw);
	return (int)len;
}
