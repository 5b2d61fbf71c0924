/*
 * vale kernel I/O: scatter/gather. A frame longer than one caller buffer
 * spans several, chained with VS_MOREFRAG as netmap slots are; these helpers
 * measure such a chain and spread a contiguous frame (or a list of
 * segments) over buffers.
 */
#include "io_impl.h"

#include <string.h>

/* ------------------------------------------------------------------ */
/* fragments */

uint32_t vio_frame_bufs(uint32_t len, uint32_t buf_size)
{
	return len ? (len + buf_size - 1) / buf_size : 1;
}

/* Length of the frame starting at bufs[i] (a MOREFRAG chain); *nbufs = its
 * buffer count, or 0 when the chain runs past n (incomplete). A fragment
 * longer than a buffer makes the length UINT32_MAX (dropped as too long). */
uint32_t vio_gather_len(const uint16_t *lens, const uint16_t *flags, uint32_t i, uint32_t n,
			uint32_t buf_size, uint32_t *nbufs)
{
	uint32_t len = 0, j = i;
	int bad = 0;
	for (;;) {
		if (j >= n) {
			*nbufs = 0;
			return len;
		}
		if (lens[j] > buf_size) bad = 1;
		len += lens[j];
		if (!flags || !(flags[j] & VS_MOREFRAG)) break;
		j++;
	}
	*nbufs = j - i + 1;
	return bad ? UINT32_MAX : len;
}

/* Copy segments into consecutive caller buffers; returns buffers used. */
uint32_t vio_scatter_segs(const struct vio_seg *seg, int nseg, void *const *bufs,
			     uint16_t *lens, uint16_t *flags, uint32_t bs)
{
	uint32_t b = 0, off = 0;
	for (int s = 0; s < nseg; s++) {
		const uint8_t *p = seg[s].p;
		uint32_t left = seg[s].len;
		while (left) {
			if (off == bs) {
				lens[b] = (uint16_t)bs;
				flags[b] = VS_MOREFRAG;
				b++;
				off = 0;
			}
			uint32_t c = bs - off < left ? bs - off : left;
			memcpy((uint8_t *)bufs[b] + off, p, c);
			off += c;
			p += c;
			left -= c;
		}
	}
	lens[b] = (uint16_t)off;
	flags[b] = 0;
	return b + 1;
}

void vio_scatter(const uint8_t *src, uint32_t len, void *const *bufs, uint16_t *lens,
		 uint16_t *flags, uint32_t buf_size)
{
	struct vio_seg s = {src, len};
	vio_scatter_segs(&s, 1, bufs, lens, flags, buf_size);
}
