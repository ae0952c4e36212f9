/*
 * The kernel's floor under the native load client: what one loopback TCP frame costs the reader
 * when nothing but reading is done. N socket pairs on 127.0.0.1; per round, the writer end of each
 * gets K frames of B bytes (one write each, TCP_NODELAY, so each is its own segment, as a server's
 * WebSocket frames are), then the reader takes them as the load client does: edge-triggered epoll,
 * one recv into a large buffer per readable socket (or, with --mode plain, a recv per socket without
 * epoll; with --delay-acks 1, recv sends no ACK, to measure the ACK's share). Only the reading is timed, in process CPU time (getrusage: user + system), so a busy
 * machine inflates it less than wall time would.
 *
 * With --writer-cpu C the frames are written by a child process pinned to core C while the reader
 * waits, as a server on its own core writes them: the bytes and the sockets' state then reach the
 * reader from the other core's cache, which a reader that wrote its own frames never pays.
 *
 *   cc -O2 -o /tmp/recv-floor bench/native/recv-floor.c
 *   taskset -c 0 /tmp/recv-floor --sockets 2000 --frame-bytes 1200 --frames 1 --rounds 50
 *
 * Prints one JSON line: ns per recv call, per frame and per byte read, and the calls per round.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <sched.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

static double cpu_us(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec * 1e6 + ru.ru_utime.tv_usec + ru.ru_stime.tv_sec * 1e6 + ru.ru_stime.tv_usec;
}

static void die(const char *what) { perror(what); exit(2); }

/* One round: K frames of B bytes to each writer socket, one write each. */
static void write_round(const int *writer, int sockets, int frames, const char *frame, int frame_bytes) {
  for (int i = 0; i < sockets; i++)
    for (int k = 0; k < frames; k++) if (write(writer[i], frame, frame_bytes) != frame_bytes) die("write");
}

int main(int argc, char **argv) {
  int sockets = 1000, frame_bytes = 1200, frames = 1, rounds = 50, plain = 0, no_quickack = 0, writer_cpu = -1;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--sockets")) sockets = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--frame-bytes")) frame_bytes = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--frames")) frames = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--rounds")) rounds = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--mode")) plain = !strcmp(argv[i + 1], "plain");
    else if (!strcmp(argv[i], "--delay-acks")) no_quickack = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--writer-cpu")) writer_cpu = atoi(argv[i + 1]);
    else { fprintf(stderr, "unknown flag %s\n", argv[i]); return 2; }
  }
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) { rl.rlim_cur = rl.rlim_max; setrlimit(RLIMIT_NOFILE, &rl); }

  int listener = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  socklen_t len = sizeof addr;
  if (bind(listener, (struct sockaddr *)&addr, sizeof addr) || listen(listener, 4096) || getsockname(listener, (struct sockaddr *)&addr, &len)) die("listen");
  int *reader = malloc(sizeof(int) * sockets), *writer = malloc(sizeof(int) * sockets);
  int ep = epoll_create1(0), one = 1, rcvbuf = 256 * 1024;
  for (int i = 0; i < sockets; i++) {
    reader[i] = socket(AF_INET, SOCK_STREAM, 0);
    if (reader[i] < 0) die("socket");
    setsockopt(reader[i], SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf); /* as the load client */
    if (connect(reader[i], (struct sockaddr *)&addr, sizeof addr)) die("connect");
    writer[i] = accept(listener, NULL, NULL);
    if (writer[i] < 0) die("accept");
    setsockopt(writer[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.u32 = i };
    if (!plain) epoll_ctl(ep, EPOLL_CTL_ADD, reader[i], &ev);
  }
  char *frame = malloc(frame_bytes), *buf = malloc(1 << 20);
  memset(frame, 'x', frame_bytes);
  struct epoll_event events[1024];
  /* --writer-cpu: a child on that core writes each round when told (a byte on `go`), then says so on `done`. */
  int go[2] = { -1, -1 }, done[2] = { -1, -1 };
  pid_t writer_pid = 0;
  if (writer_cpu >= 0) {
    if (pipe(go) || pipe(done)) die("pipe");
    writer_pid = fork();
    if (writer_pid < 0) die("fork");
    if (writer_pid == 0) {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(writer_cpu, &set);
      if (sched_setaffinity(0, sizeof set, &set)) die("sched_setaffinity");
      close(go[1]);
      close(done[0]);
      char token;
      while (read(go[0], &token, 1) == 1) {
        write_round(writer, sockets, frames, frame, frame_bytes);
        if (write(done[1], &token, 1) != 1) die("done");
      }
      _exit(0);
    }
    close(go[0]);
    close(done[1]);
  }
  double read_cpu = 0;
  uint64_t recvs = 0, waits = 0, bytes = 0;
  for (int r = 0; r < rounds; r++) {
    if (writer_pid) {
      char token = 'w';
      if (write(go[1], &token, 1) != 1 || read(done[0], &token, 1) != 1) die("writer");
    } else {
      write_round(writer, sockets, frames, frame, frame_bytes);
    }
    /* --delay-acks 1: the reader's recv sends no ACK (TCP_QUICKACK 0, re-armed each round, untimed):
       the ACK's share of a recv, which the delayed-ACK timer then sends outside the timed reading. */
    if (no_quickack) { int zero = 0; for (int i = 0; i < sockets; i++) setsockopt(reader[i], IPPROTO_TCP, TCP_QUICKACK, &zero, sizeof zero); }
    uint64_t want = (uint64_t)sockets * frames * frame_bytes, got = 0;
    double t0 = cpu_us();
    if (plain) {
      for (int i = 0; i < sockets; i++) {
        ssize_t n = recv(reader[i], buf, 1 << 20, MSG_DONTWAIT);
        recvs++;
        if (n > 0) got += n;
      }
    } else {
      while (got < want) {
        int n = epoll_wait(ep, events, 1024, 1000);
        waits++;
        if (n <= 0) break;
        for (int e = 0; e < n; e++) {
          ssize_t m = recv(reader[events[e].data.u32], buf, 1 << 20, MSG_DONTWAIT);
          recvs++;
          if (m > 0) got += m;
        }
      }
    }
    read_cpu += cpu_us() - t0;
    bytes += got;
    if (got != want) { fprintf(stderr, "round %d: read %llu of %llu bytes\n", r, (unsigned long long)got, (unsigned long long)want); return 1; }
  }
  if (writer_pid) { close(go[1]); waitpid(writer_pid, NULL, 0); }
  uint64_t total_frames = (uint64_t)rounds * sockets * frames;
  printf("{\"mode\":\"%s\",\"writerCpu\":%d,\"delayAcks\":%d,\"sockets\":%d,\"frameBytes\":%d,\"framesPerRecv\":%d,\"rounds\":%d,\"nsPerRecv\":%.0f,\"nsPerFrame\":%.0f,\"nsPerKiB\":%.0f,\"recvs\":%llu,\"epollWaits\":%llu}\n",
         plain ? "plain" : "epoll", writer_cpu, no_quickack, sockets, frame_bytes, frames, rounds, read_cpu * 1000 / recvs, read_cpu * 1000 / total_frames,
         read_cpu * 1000 / (bytes / 1024.0), (unsigned long long)recvs, (unsigned long long)waits);
  return 0;
}
