/* A switch described as JSON for vale-ctl -l and the TS API: ports, owners,
 * liveness, counters, and the MAC table with ages. Not on any hot path. */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>

struct out {
	char *buf;
	uint32_t len, cap;
};

__attribute__((format(printf, 2, 3))) static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *dst = o->len < o->cap ? o->buf + o->len : NULL;
	uint32_t room = o->len < o->cap ? o->cap - o->len : 0;
	int n = vsnprintf(dst, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->len += (uint32_t)n;
}

static void put_str(struct out *o, const char *s, size_t max)
{
	put(o, "\"");
	for (size_t i = 0; i < max && s[i]; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			put(o, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			put(o, "\\u%04x", c);
		else
			put(o, "%c", c);
	}
	put(o, "\"");
}

/* Frames delivered to a port's RX rings and not yet read (`vale top`'s ring
 * occupancy), and how many the rings can hold. Read from the port's region
 * as the flush maps it; indices out of range (a damaged or hostile ring)
 * count as empty. */
static void ring_occupancy(struct vale_sw *sw, uint32_t idx, uint32_t *queued, uint32_t *room)
{
	uint32_t end;
	struct vale_map *m = vale_map_get(sw, idx, &end);
	if (!m)
		return;
	uint32_t n = m->rx_slots;
	for (uint32_t r = 0; r < m->nrx && r < VALE_MAX_RINGS; r++) {
		struct vale_kring *k = vale_kring(m, end, true, r);
		uint32_t tail = LOAD_ACQ(&k->hwtail), cur = LOAD_ACQ(&k->hwcur);
		*room += n - 1;
		if (tail < n && cur < n)
			*queued += tail >= cur ? tail - cur : tail + n - cur;
	}
}

static const char *reason_names[VD_NREASONS] = {"ring_full", "bad_slot", "no_dest",
						"lookup",    "bad_vnet", "too_big"};

VALE_API int vale_switch_json(const char *run_dir, const char *swname, char *buf, uint32_t buflen)
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
	if (vale_switch_gc_locked(sw)) { /* only dead processes' ports were left */
		vale_ctl_unlock(sw);
		vale_switch_put(sw);
		return vale_err(ENOENT, "no switch %s (its last ports' processes had died; removed)",
				swname);
	}
	struct out o = {buf, 0, buflen};
	struct vale_ctl_hdr *h = sw->ctl;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	uint32_t now_s = (uint32_t)ts.tv_sec;
	put(&o, "{\"name\":");
	put_str(&o, sw->name, sizeof(sw->name));
	put(&o, ",\"dir\":");
	put_str(&o, sw->dir, sizeof(sw->dir));
	put(&o, ",\"max_ports\":%u,\"mac_entries\":%u,\"age_s\":%u,\"lookup\":", h->max_ports,
	    h->mac_entries, h->age_s);
	put_str(&o, h->lookup, sizeof(h->lookup));
	uint32_t batch = LOAD_RLX(&h->batch);
	put(&o, ",\"batch\":%u", batch - 1u < VALE_MAX_BATCH ? batch : VALE_MAX_BATCH);
	put(&o, ",\"ports\":[");
	bool first = true;
	for (uint32_t i = 0; i < sw->max_ports; i++) {
		struct vale_port_ent *e = &sw->ports[i];
		if (e->state != VP_ACTIVE)
			continue;
		int busy = vale_port_in_use(sw, i);
		put(&o, "%s{\"index\":%u,\"gen\":%u,\"name\":", first ? "" : ",", i, e->gen);
		first = false;
		put_str(&o, e->name, sizeof(e->name));
		put(&o,
		    ",\"persistent\":%s,\"pipe\":%s,\"exclusive\":%s,\"in_use\":%s,\"owner_pid\":%d,"
		    "\"fwd_pid\":%d,\"info\":",
		    (e->flags & VPF_PERSISTENT) ? "true" : "false",
		    (e->flags & VPF_PIPE) ? "true" : "false",
		    (e->flags & VPF_EXCLUSIVE) ? "true" : "false", busy > 0 ? "true" : "false",
		    busy > 0 ? e->owner_pid : 0, e->fwd_pid);
		put_str(&o, e->info, sizeof(e->info));
		if (e->flags & VPF_MONITOR) { /* what it watches (monitor.c) */
			uint32_t t = e->mon_of, mf = e->mon_flags;
			bool alive = t < sw->max_ports && sw->ports[t].state == VP_ACTIVE &&
				     sw->ports[t].gen == e->mon_of_gen;
			put(&o, ",\"monitor\":{\"of\":");
			if (alive)
				put_str(&o, sw->ports[t].name, sizeof(sw->ports[t].name));
			else
				put(&o, "null");
			put(&o, ",\"of_index\":%u,\"tx\":%s,\"rx\":%s,\"zcopy\":%s}", t,
			    (mf & VO_MONITOR_TX) || !(mf & VO_MONITOR_RX) ? "true" : "false",
			    (mf & VO_MONITOR_RX) || !(mf & VO_MONITOR_TX) ? "true" : "false",
			    (mf & VO_MONITOR_ZCOPY) ? "true" : "false");
		}
		put(&o,
		    ",\"tx_rings\":%u,\"rx_rings\":%u,\"tx_slots\":%u,\"rx_slots\":%u,\"nbufs\":%u,"
		    "\"memsize\":%llu,\"mem_id\":%u,\"end\":%u,",
		    e->ntx, e->nrx, e->tx_slots, e->rx_slots, e->nbufs,
		    (unsigned long long)e->region_size, e->region_idx, e->end);
		uint32_t queued = 0, room = 0;
		ring_occupancy(sw, i, &queued, &room);
		put(&o, "\"rx_queued\":%u,\"rx_room\":%u,", queued, room);
		uint32_t hl = e->vnet_hdr_len, mtu = e->mtu; /* as the switch takes them */
		put(&o, "\"vnet_hdr_len\":%u,\"mtu\":%u,", hl == 10 || hl == 12 ? hl : 0,
		    mtu >= VALE_MIN_MTU && mtu <= VALE_MAX_MTU ? mtu : VALE_DEF_MTU);
		const struct vale_counters *c = &e->c;
		put(&o,
		    "\"counters\":{\"tx_packets\":%llu,\"tx_bytes\":%llu,\"rx_packets\":%llu,"
		    "\"rx_bytes\":%llu,\"sync_errors\":%llu,\"leases_reclaimed\":%llu,\"drops\":{",
		    (unsigned long long)c->tx_pkts, (unsigned long long)c->tx_bytes,
		    (unsigned long long)c->rx_pkts, (unsigned long long)c->rx_bytes,
		    (unsigned long long)c->sync_errors, (unsigned long long)c->leases_reclaimed);
		for (int k = 0; k < VD_NREASONS; k++)
			put(&o, "%s\"%s\":%llu", k ? "," : "", reason_names[k],
			    (unsigned long long)c->drops[k]);
		put(&o, "}}}");
	}
	put(&o, "],\"macs\":[");
	first = true;
	for (uint32_t i = 0; i <= sw->mac_mask; i++) {
		struct vale_mac_ent *e = &sw->mac[i];
		uint64_t key = e->key;
		if (!key)
			continue;
		uint32_t port = (uint32_t)(key & 0xffff);
		uint64_t mac = key >> 16;
		uint32_t age = now_s - e->seen_s;
		if (port >= sw->max_ports || sw->ports[port].state != VP_ACTIVE)
			continue;
		put(&o,
		    "%s{\"mac\":\"%02x:%02x:%02x:%02x:%02x:%02x\",\"port\":%u,\"age_s\":%u,"
		    "\"expired\":%s}",
		    first ? "" : ",", (unsigned)mac & 0xff, (unsigned)(mac >> 8) & 0xff,
		    (unsigned)(mac >> 16) & 0xff, (unsigned)(mac >> 24) & 0xff,
		    (unsigned)(mac >> 32) & 0xff, (unsigned)(mac >> 40) & 0xff, port, age,
		    age > sw->age_s ? "true" : "false");
		first = false;
	}
	put(&o, "]}");
	vale_ctl_unlock(sw);
	vale_switch_put(sw);
	if (o.len < o.cap)
		buf[o.len] = 0;
	return (int)o.len + 1;
}
