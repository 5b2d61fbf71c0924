// physlimit — the physical limit of a shared-memory packet path on this machine.
//
// Two threads (one per CPU) share a single-producer/single-consumer ring of
// 2048-byte buffers. The producer copies an N-byte frame into the next free
// buffer and publishes it; the consumer copies it out into its own buffer and
// frees the slot. Indices are published once per batch (as a switch would) and
// both sides prefetch the batch's buffers, so what is left is the cost of two
// copies plus cache-line transfers: no switch can move frames between two
// processes faster than this.
//
// Defaults: 4096 slots (netmap's maximum), batch 512 (pkt-gen's default burst).
// On the 2-vCPU VM a cache line takes ~250 ns to cross between the vCPUs, so
// smaller rings/batches are both slower and much noisier (1024/64: 13–49 Mpps).
//
//   physlimit -l LEN [-t SECONDS] [-w WARMUP] [-n SLOTS] [-b BATCH] [-s STRIDE]
//             [-c PCPU,CCPU] [-k] [-v]
//
// -k: after the result line, stay until SIGINT/SIGTERM (at most a minute), so a
//     harness can still read this process's CPU time from /proc.
//
// stdout (machine-readable): `start` when the measured window opens, then
//   `result pkts=N bytes=B secs=T cpu=C` (C = CPU seconds of this process in the window).
// stderr: per-second rate lines with -v.
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BUF_SIZE 2048
#define CACHE_LINE 64

struct ring {
  _Alignas(CACHE_LINE) _Atomic uint64_t tail; // written by the producer
  _Alignas(CACHE_LINE) _Atomic uint64_t head; // written by the consumer
  _Alignas(CACHE_LINE) _Atomic int stop;
  _Alignas(CACHE_LINE) uint32_t lens[4096];
};

static struct ring *ring;
static uint8_t *bufs;
static uint32_t nslots = 4096, mask, batch = 512, frame_len = 60, stride = BUF_SIZE;
static int cpus[2] = {0, 1};

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void pin(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static void *producer(void *arg) {
  (void)arg;
  pin(cpus[0]);
  static _Alignas(CACHE_LINE) uint8_t frame[65536];
  memset(frame, 0x55, frame_len);
  static const uint8_t hdr[14] = {2, 0, 0, 0, 0x0b, 0, 2, 0, 0, 0, 0x0a, 0, 0x88, 0xb5};
  memcpy(frame, hdr, sizeof(hdr));
  uint64_t tail = 0, head_cache = 0, seq = 0;
  while (!atomic_load_explicit(&ring->stop, memory_order_relaxed)) {
    uint64_t space = nslots - 1 - (tail - head_cache);
    if (space < batch) {
      head_cache = atomic_load_explicit(&ring->head, memory_order_acquire);
      space = nslots - 1 - (tail - head_cache);
      if (space == 0) {
        __builtin_ia32_pause();
        continue;
      }
    }
    uint64_t n = space < batch ? space : batch;
    for (uint64_t i = 0; i < n; i++) {
      uint8_t *pb = bufs + (size_t)((uint32_t)(tail + i) & mask) * stride;
      for (uint32_t o = 0; o < frame_len; o += 64) __builtin_prefetch(pb + o, 1, 3);
    }
    for (uint64_t i = 0; i < n; i++) {
      uint32_t idx = (uint32_t)(tail + i) & mask;
      uint8_t *b = bufs + (size_t)idx * stride;
      memcpy(b, frame, frame_len);
      memcpy(b + 14, &seq, sizeof(seq)); // every frame differs
      seq++;
      ring->lens[idx] = frame_len;
    }
    tail += n;
    atomic_store_explicit(&ring->tail, tail, memory_order_release);
  }
  return NULL;
}

static uint64_t sink;
static volatile sig_atomic_t got_signal;
static void on_signal(int sig) {
  (void)sig;
  got_signal = 1;
}

static void *consumer(void *arg) {
  (void)arg;
  pin(cpus[1]);
  static _Alignas(CACHE_LINE) uint8_t out[65536];
  uint64_t head = 0, tail_cache = 0, sum = 0;
  while (!atomic_load_explicit(&ring->stop, memory_order_relaxed)) {
    if (head == tail_cache) {
      tail_cache = atomic_load_explicit(&ring->tail, memory_order_acquire);
      if (head == tail_cache) {
        __builtin_ia32_pause();
        continue;
      }
    }
    uint64_t n = tail_cache - head;
    if (n > batch) n = batch;
    for (uint64_t i = 0; i < n; i++) {
      uint8_t *pb = bufs + (size_t)((uint32_t)(head + i) & mask) * stride;
      for (uint32_t o = 0; o < frame_len; o += 64) __builtin_prefetch(pb + o, 0, 3);
    }
    for (uint64_t i = 0; i < n; i++) {
      uint32_t idx = (uint32_t)(head + i) & mask;
      uint32_t len = ring->lens[idx];
      if (len > stride) len = stride;
      memcpy(out, bufs + (size_t)idx * stride, len);
      __asm__ volatile("" : : "r"(out) : "memory");
      sum += out[14];
    }
    head += n;
    atomic_store_explicit(&ring->head, head, memory_order_release);
  }
  sink = sum;
  return NULL;
}

static void usage(void) {
  fprintf(stderr,
          "usage: physlimit -l LEN [-t SECONDS] [-w WARMUP] [-n SLOTS] [-b BATCH] "
          "[-s STRIDE] [-c PCPU,CCPU] [-k] [-v]\n");
  exit(2);
}

int main(int argc, char **argv) {
  double seconds = 5, warmup = 1;
  int verbose = 0, linger = 0, opt;
  while ((opt = getopt(argc, argv, "l:t:w:n:b:c:s:kv")) != -1) {
    switch (opt) {
    case 'l': frame_len = (uint32_t)atoi(optarg); break;
    case 't': seconds = atof(optarg); break;
    case 'w': warmup = atof(optarg); break;
    case 'n': nslots = (uint32_t)atoi(optarg); break;
    case 'b': batch = (uint32_t)atoi(optarg); break;
    case 'c':
      if (sscanf(optarg, "%d,%d", &cpus[0], &cpus[1]) != 2) usage();
      break;
    case 's': stride = (uint32_t)atoi(optarg); break;
    case 'k': linger = 1; break;
    case 'v': verbose = 1; break;
    default: usage();
    }
  }
  if (frame_len < 22 || frame_len > stride || stride > 65536 || nslots < 2 || nslots > 4096 ||
      (nslots & (nslots - 1)) || batch < 1 || seconds <= 0)
    usage();
  mask = nslots - 1;
  if (batch > nslots - 1) batch = nslots - 1;
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  if (cpus[0] >= ncpu) cpus[0] = -1;
  if (cpus[1] >= ncpu) cpus[1] = -1;

  ring = aligned_alloc(4096, sizeof(*ring));
  bufs = aligned_alloc(4096, (size_t)nslots * stride);
  if (!ring || !bufs) return 1;
  memset(ring, 0, sizeof(*ring));
  memset(bufs, 0, (size_t)nslots * stride);

  pthread_t p, c;
  pthread_create(&c, NULL, consumer, NULL);
  pthread_create(&p, NULL, producer, NULL);

  usleep((useconds_t)(warmup * 1e6));
  double t0 = now(), c0 = cpu_now();
  uint64_t n0 = atomic_load(&ring->head);
  printf("start\n");
  fflush(stdout);
  double last_t = t0, end = t0 + seconds;
  uint64_t last_n = n0;
  for (;;) {
    double t = now();
    if (t >= end) break;
    double step = end - t < 1.0 ? end - t : 1.0;
    usleep((useconds_t)(step * 1e6));
    if (verbose) {
      double t1 = now();
      uint64_t n1 = atomic_load(&ring->head);
      double pps = (n1 - last_n) / (t1 - last_t);
      fprintf(stderr, "physlimit: %.3f Mpps %.3f Gbit/s\n", pps / 1e6, pps * frame_len * 8 / 1e9);
      last_t = t1;
      last_n = n1;
    }
  }
  uint64_t n1 = atomic_load(&ring->head);
  double t1 = now(), c1 = cpu_now();
  atomic_store(&ring->stop, 1);
  pthread_join(p, NULL);
  pthread_join(c, NULL);
  uint64_t pkts = n1 - n0;
  printf("result pkts=%llu bytes=%llu secs=%.6f cpu=%.6f\n", (unsigned long long)pkts,
         (unsigned long long)(pkts * frame_len), t1 - t0, c1 - c0);
  fprintf(stderr, "physlimit: %u B: %.3f Mpps %.3f Gbit/s (sink %llu)\n", frame_len,
          pkts / (t1 - t0) / 1e6, pkts * frame_len * 8 / (t1 - t0) / 1e9,
          (unsigned long long)(sink & 1));
  fflush(stdout);
  if (linger) {
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    alarm(60); // never outlive a harness that died: give up after a minute
    while (!got_signal) pause();
  }
  return 0;
}
