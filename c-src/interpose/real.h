/*
 * The functions the interposer stands in front of: the next definition in
 * the process (dlsym(RTLD_NEXT): the system's libpcap or libc), else,
 * for libpcap, the library loaded by soname. Resolved on first use.
 */
#ifndef VALE_REAL_H
#define VALE_REAL_H

#include <stddef.h>

/* The next definition of `name`, or NULL (then `what` failed to load). */
void *vale_real_sym(const char *name);

/* REAL(pcap_create) is the system's pcap_create, typed as ours. */
#define REAL(fn)                                                                                  \
	({                                                                                        \
		static __typeof__(&fn) real_fp_;                                                  \
		__typeof__(&fn) f_ = __atomic_load_n(&real_fp_, __ATOMIC_ACQUIRE);                \
		if (!f_) {                                                                        \
			f_ = (__typeof__(&fn))vale_real_sym(#fn);                                 \
			__atomic_store_n(&real_fp_, f_, __ATOMIC_RELEASE);                        \
		}                                                                                 \
		f_;                                                                               \
	})

#endif
