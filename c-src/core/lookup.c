/*
 * Lookup modules (mSwitch): the learning bridge (default), a static port map,
 * an ethertype demultiplexer, and user modules loaded from shared objects.
 * A switch names its module in the control segment; every process that
 * forwards on the switch loads the same one (vale_lookup_refresh).
 */
#include "internal.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* ---------------- learning bridge (lookup in internal.h, inlined) ---------------- */

/* A port left: forget every MAC learned on it. */
void vale_mac_forget_port(struct vale_sw *sw, uint32_t port)
{
	for (uint32_t i = 0; i <= sw->mac_mask; i++) {
		struct vale_mac_ent *e = &sw->mac[i];
		uint64_t key = LOAD_RLX(&e->key);
		if (key && (key & 0xffff) == port)
			__atomic_compare_exchange_n(&e->key, &key, 0, false, __ATOMIC_RELAXED,
						    __ATOMIC_RELAXED);
	}
}

/* ---------------- static port map ---------------- */
/* priv: u32 dst+1 per source port (0: unmapped → drop). */

static uint32_t portmap_lookup(const uint8_t *buf, uint32_t len, uint8_t *ring, uint32_t src,
			       void *priv)
{
	const uint32_t *map = priv;
	if (src >= VALE_PRIV_SIZE / 4)
		return VALE_DROP;
	uint32_t d = LOAD_RLX(&map[src]);
	if (d == 0)
		return VALE_DROP;
	return d == VALE_BROADCAST ? VALE_BROADCAST : d - 1;
}

static int portmap_config(const char *req, uint32_t len, void *priv, uint32_t priv_size,
			  char *reply, uint32_t rlen)
{
	uint32_t *map = priv;
	unsigned a, b;
	char word[16];
	if (sscanf(req, "map %u %u", &a, &b) == 2 && a < priv_size / 4 && b < VALE_LIMIT_PORTS) {
		map[a] = b + 1;
		return snprintf(reply, rlen, "map %u -> %u", a, b);
	}
	if (sscanf(req, "map %u %15s", &a, word) == 2 && a < priv_size / 4 &&
	    strcmp(word, "flood") == 0) {
		map[a] = VALE_BROADCAST;
		return snprintf(reply, rlen, "map %u -> flood", a);
	}
	if (sscanf(req, "unmap %u", &a) == 1 && a < priv_size / 4) {
		map[a] = 0;
		return snprintf(reply, rlen, "unmap %u", a);
	}
	if (strncmp(req, "show", 4) == 0) {
		int n = 0;
		reply[0] = 0;
		for (uint32_t i = 0; i < priv_size / 4 && (uint32_t)n < rlen; i++)
			if (map[i])
				n += snprintf(reply + n, rlen - (uint32_t)n, "%u %d\n", i,
					      map[i] == VALE_BROADCAST ? -1 : (int)(map[i] - 1));
		return n;
	}
	return -EINVAL;
}

static void portmap_dtor(uint32_t port, void *priv)
{
	uint32_t *map = priv;
	for (uint32_t i = 0; i < VALE_PRIV_SIZE / 4; i++)
		if (map[i] == port + 1 || i == port)
			map[i] = 0;
}

/* ---------------- ethertype demultiplexer ---------------- */
/* priv: u32 default action, then 1024 pairs (ethertype, dst+1). */

struct etype_tab {
	uint32_t dflt; /* 0 drop, 1 flood */
	uint32_t n;
	struct { uint32_t type, dst; } e[1024];
};

static uint32_t etype_lookup(const uint8_t *buf, uint32_t len, uint8_t *ring, uint32_t src,
			     void *priv)
{
	const struct etype_tab *t = priv;
	uint32_t type = (uint32_t)buf[12] << 8 | buf[13];
	uint32_t n = LOAD_RLX(&t->n);
	if (n > 1024)
		n = 1024;
	for (uint32_t i = 0; i < n; i++)
		if (t->e[i].type == type && t->e[i].dst)
			return t->e[i].dst - 1;
	return t->dflt ? VALE_BROADCAST : VALE_DROP;
}

static int etype_config(const char *req, uint32_t len, void *priv, uint32_t priv_size,
			char *reply, uint32_t rlen)
{
	struct etype_tab *t = priv;
	unsigned type, dst;
	char word[16];
	if (t->n > 1024) /* the table is shared memory: never trust its count */
		t->n = 1024;
	if (sscanf(req, "ethertype %i %u", (int *)&type, &dst) == 2 && type <= 0xffff) {
		uint32_t i;
		for (i = 0; i < t->n && t->e[i].type != type; i++)
			;
		if (i == 1024)
			return -ENOSPC;
		t->e[i].type = type;
		t->e[i].dst = dst + 1;
		if (i == t->n)
			t->n++;
		return snprintf(reply, rlen, "ethertype 0x%04x -> %u", type, dst);
	}
	if (sscanf(req, "default %15s", word) == 1) {
		if (strcmp(word, "flood") == 0)
			t->dflt = 1;
		else if (strcmp(word, "drop") == 0)
			t->dflt = 0;
		else
			return -EINVAL;
		return snprintf(reply, rlen, "default %s", word);
	}
	if (strncmp(req, "show", 4) == 0) {
		int n = snprintf(reply, rlen, "default %s\n", t->dflt ? "flood" : "drop");
		for (uint32_t i = 0; i < t->n && i < 1024 && (uint32_t)n < rlen; i++)
			if (t->e[i].dst)
				n += snprintf(reply + n, rlen - (uint32_t)n, "0x%04x %u\n", t->e[i].type,
					      t->e[i].dst - 1);
		return n;
	}
	return -EINVAL;
}

static void etype_dtor(uint32_t port, void *priv)
{
	struct etype_tab *t = priv;
	for (uint32_t i = 0; i < t->n && i < 1024; i++)
		if (t->e[i].dst == port + 1)
			t->e[i].dst = 0;
}

/* ---------------- module selection ---------------- */

/* The built-in modules, by the name a switch records (the learning bridge's
 * lookup is inlined in the flush: no function here). */
static const struct builtin {
	const char *name;
	int kind;
	vale_lookup_fn lookup;
	vale_config_fn config;
	vale_dtor_fn dtor;
} builtins[] = {
    {"learning", LK_LEARNING, NULL, NULL, NULL},
    {"portmap", LK_PORTMAP, portmap_lookup, portmap_config, portmap_dtor},
    {"ethertype", LK_ETHERTYPE, etype_lookup, etype_config, etype_dtor},
};

static int load_module(struct vale_sw *sw, const char *name, bool report)
{
	if (sw->dl) {
		dlclose(sw->dl);
		sw->dl = NULL;
	}
	if (sw->dl_fd >= 0) {
		close(sw->dl_fd);
		sw->dl_fd = -1;
	}
	sw->lookup = NULL;
	sw->config = NULL;
	sw->dtor = NULL;
	for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++) {
		const struct builtin *b = &builtins[i];
		if (name[0] && strcmp(name, b->name) != 0)
			continue; /* (an empty name is the default, the first) */
		sw->lookup_kind = b->kind;
		sw->lookup = b->lookup;
		sw->config = b->config;
		sw->dtor = b->dtor;
		return 0;
	}
	/* a module is code: only one nobody else could choose or change (fsafe.c),
	 * and the file checked is the file loaded. The fd stays open while the
	 * module is loaded, so its /proc/self/fd name is unique among loaded ones. */
	int fd;
	int r = vale_module_open(sw, name, &fd);
	if (r)
		return r;
	char via[48];
	snprintf(via, sizeof(via), "/proc/self/fd/%d", fd);
	void *dl = dlopen(via, RTLD_NOW | RTLD_LOCAL);
	if (!dl) {
		close(fd);
		return report ? vale_err(ENOENT, "cannot load lookup module %s: %s", name, dlerror())
			      : -ENOENT;
	}
	vale_lookup_fn f = (vale_lookup_fn)dlsym(dl, VALE_LOOKUP_SYM);
	if (!f) {
		dlclose(dl);
		close(fd);
		return report ? vale_err(EINVAL, "lookup module %s has no symbol %s", name,
					 VALE_LOOKUP_SYM)
			      : -EINVAL;
	}
	sw->dl = dl;
	sw->dl_fd = fd;
	sw->lookup_kind = LK_USER;
	sw->lookup = f;
	sw->config = (vale_config_fn)dlsym(dl, VALE_CONFIG_SYM);
	sw->dtor = (vale_dtor_fn)dlsym(dl, VALE_DTOR_SYM);
	return 0;
}

static uint32_t drop_all(const uint8_t *b, uint32_t l, uint8_t *r, uint32_t s, void *p)
{
	return VALE_DROP;
}

/* Follow a change of the switch's lookup module made by any process. */
int vale_lookup_refresh(struct vale_sw *sw)
{
	uint32_t gen = LOAD_ACQ(&sw->ctl->lookup_gen);
	if (likely(gen == sw->lookup_gen))
		return 0;
	pthread_mutex_lock(&sw->mlock);
	int r = 0;
	if (gen != sw->lookup_gen) {
		char name[sizeof(sw->ctl->lookup)];
		memcpy(name, sw->ctl->lookup, sizeof(name));
		name[sizeof(name) - 1] = 0;
		char saved[512]; /* keep the caller's error message */
		snprintf(saved, sizeof(saved), "%s", vale_last_error());
		r = load_module(sw, name, true);
		if (r) { /* cannot or may not load what others use: drop (counted), not misroute;
			  * txsync reports why */
			snprintf(sw->lookup_err, sizeof(sw->lookup_err), "%s", vale_last_error());
			STORE_REL(&sw->lookup_errno, -r);
			sw->lookup_kind = LK_USER;
			sw->lookup = drop_all;
		} else {
			STORE_REL(&sw->lookup_errno, 0);
		}
		vale_err(0, "%s", saved);
		sw->lookup_gen = gen;
	}
	pthread_mutex_unlock(&sw->mlock);
	return r;
}

VALE_API int vale_set_lookup(const char *run_dir, const char *swname, const char *module)
{
	if (!module || strlen(module) >= sizeof(((struct vale_ctl_hdr *)0)->lookup))
		return vale_err(ENAMETOOLONG, "lookup module name too long (max 63)");
	struct vale_sw *sw;
	int r = vale_switch_get(run_dir, swname, false, &sw);
	if (r)
		return r;
	r = vale_ctl_lock(sw);
	if (r)
		goto out;
	pthread_mutex_lock(&sw->mlock);
	r = load_module(sw, module, true); /* must load here before others try */
	pthread_mutex_unlock(&sw->mlock);
	if (!r) {
		memset(sw->priv, 0, VALE_PRIV_SIZE);
		snprintf(sw->ctl->lookup, sizeof(sw->ctl->lookup), "%s", module[0] ? module : "learning");
		__atomic_fetch_add(&sw->ctl->lookup_gen, 1, __ATOMIC_RELEASE);
	}
	vale_ctl_unlock(sw);
out:
	vale_switch_put(sw);
	return r;
}

VALE_API int vale_set_batch(const char *run_dir, const char *swname, uint32_t batch)
{
	if (batch > VALE_MAX_BATCH)
		return vale_err(EINVAL, "batch %u is out of range (1..%u, 0 = default %u)", batch,
				VALE_MAX_BATCH, VALE_MAX_BATCH);
	struct vale_sw *sw;
	int r = vale_switch_get(run_dir, swname, false, &sw);
	if (r)
		return r;
	r = vale_ctl_lock(sw);
	if (!r) {
		__atomic_store_n(&sw->ctl->batch, batch, __ATOMIC_RELAXED);
		vale_ctl_unlock(sw);
	}
	vale_switch_put(sw);
	return r;
}

VALE_API int vale_lookup_config(const char *run_dir, const char *swname, const char *req,
				char *reply, uint32_t reply_len)
{
	struct vale_sw *sw;
	int r = vale_switch_get(run_dir, swname, false, &sw);
	if (r)
		return r;
	r = vale_ctl_lock(sw);
	if (r)
		goto out;
	vale_lookup_refresh(sw);
	if (reply_len)
		reply[0] = 0;
	if (!sw->config) {
		r = vale_err(EOPNOTSUPP, "lookup module '%s' of %s takes no configuration",
			     sw->ctl->lookup, swname);
	} else {
		r = sw->config(req, (uint32_t)strlen(req), sw->priv, VALE_PRIV_SIZE, reply, reply_len);
		if (r < 0)
			r = vale_err(-r, "%s: configuration '%s' rejected by module %s", swname, req,
				     sw->ctl->lookup);
	}
	vale_ctl_unlock(sw);
out:
	vale_switch_put(sw);
	return r;
}
