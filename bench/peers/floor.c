// The floor of an exec round trip, in C: what the same operation costs with no JavaScript anywhere.
// Built by the bench with gcc (bench/peers/floor.ts); not part of the product.
//
//   floor serve SOCK            accept Unix connections, a child process each; per request spawn, wait, answer
//   floor client SOCK N ARGV…   N round trips to `serve`, one after another: one time in µs per line
//   floor local N ARGV…         N spawns here, each until exit and EOF of its stdout: µs per line
//
// Request: u32 LE length, then that many bytes of NUL-terminated argv strings. Answer, in one write:
// u32 LE wait status, u32 LE stdout length, stdout. The spawn is posix_spawn (glibc: clone with
// CLONE_VM|CLONE_VFORK, the cheapest way to start a program from C), stdin and stderr /dev/null, stdout a
// pipe read to EOF, then waitpid: the same work the agent does for a v2 EXEC of a short command.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

enum { MAX_REQ = 65536, MAX_ARGS = 256, MAX_OUT = 1 << 20 };

static void die(const char *what) {
  fprintf(stderr, "floor: %s: %s\n", what, strerror(errno));
  exit(1);
}

static int full(ssize_t (*op)(int, void *, size_t), int fd, void *buf, size_t n) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = op(fd, (char *)buf + done, n - done);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    done += (size_t)r;
  }
  return 0;
}
static ssize_t rd(int fd, void *b, size_t n) { return read(fd, b, n); }
static ssize_t wr(int fd, void *b, size_t n) { return write(fd, b, n); }

/** Spawns argv with stdout a pipe; reads it to EOF into out (at most MAX_OUT kept); returns the wait status. */
static int spawn_wait(char **argv, char *out, uint32_t *outlen) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) die("pipe2");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, p[1], 1);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid;
  int err = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(p[1]);
  *outlen = 0;
  if (err) {
    close(p[0]);
    return 127 << 8;
  }
  char sink[4096];
  for (;;) {
    char *dst = *outlen < MAX_OUT ? out + *outlen : sink;
    size_t room = *outlen < MAX_OUT ? MAX_OUT - *outlen : sizeof sink;
    ssize_t r = read(p[0], dst, room);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    if (dst != sink) *outlen += (uint32_t)r;
  }
  close(p[0]);
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) die("waitpid");
  return status;
}

/** argv from NUL-terminated strings in buf[0..n); NULL when malformed. */
static char **split(char *buf, uint32_t n, char **args) {
  if (n == 0 || buf[n - 1] != 0) return NULL;
  int k = 0;
  for (uint32_t i = 0; i < n; i += (uint32_t)strlen(buf + i) + 1) {
    if (k == MAX_ARGS - 1) return NULL;
    args[k++] = buf + i;
  }
  args[k] = NULL;
  return args;
}

static int serve(const char *path) {
  int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (l < 0) die("socket");
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof a.sun_path) {
    fprintf(stderr, "floor: socket path too long\n");
    return 2;
  }
  strcpy(a.sun_path, path);
  unlink(path);
  if (bind(l, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
  if (listen(l, 16) < 0) die("listen");
  static char req[MAX_REQ], ans[8 + MAX_OUT];
  char *args[MAX_ARGS];
  // Connection children are reaped by the kernel; each child sets SIGCHLD back to wait for its commands.
  signal(SIGCHLD, SIG_IGN);
  for (;;) {
    int c = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      die("accept4");
    }
    pid_t child = fork();
    if (child < 0) die("fork");
    if (child > 0) {
      close(c);
      continue;
    }
    close(l);
    signal(SIGCHLD, SIG_DFL);
    for (;;) {
      uint32_t n;
      if (full(rd, c, &n, 4) < 0 || n > MAX_REQ || full(rd, c, req, n) < 0) break;
      if (!split(req, n, args)) break;
      uint32_t outlen;
      uint32_t status = (uint32_t)spawn_wait(args, ans + 8, &outlen);
      memcpy(ans, &status, 4);
      memcpy(ans + 4, &outlen, 4);
      if (full(wr, c, ans, 8 + outlen) < 0) break;
    }
    _exit(0);
  }
}

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int client(const char *path, long n, char **argv) {
  int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c < 0) die("socket");
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof a.sun_path) return 2;
  strcpy(a.sun_path, path);
  if (connect(c, (struct sockaddr *)&a, sizeof a) < 0) die("connect");
  static char req[MAX_REQ], out[MAX_OUT];
  uint32_t len = 0;
  for (char **p = argv; *p; p++) {
    size_t k = strlen(*p) + 1;
    if (len + k > MAX_REQ - 4) return 2;
    memcpy(req + 4 + len, *p, k);
    len += (uint32_t)k;
  }
  memcpy(req, &len, 4);
  for (long i = 0; i < n; i++) {
    double t0 = now_us();
    uint32_t hdr[2];
    if (full(wr, c, req, 4 + len) < 0 || full(rd, c, hdr, 8) < 0 || hdr[1] > MAX_OUT || full(rd, c, out, hdr[1]) < 0) die("round trip");
    double t = now_us() - t0;
    if (!WIFEXITED(hdr[0]) || WEXITSTATUS(hdr[0]) != 0) {
      fprintf(stderr, "floor: the command failed (status %u)\n", hdr[0]);
      return 1;
    }
    printf("%.1f\n", t);
  }
  return 0;
}

static int local(long n, char **argv) {
  static char out[MAX_OUT];
  for (long i = 0; i < n; i++) {
    double t0 = now_us();
    uint32_t outlen;
    int st = spawn_wait(argv, out, &outlen);
    double t = now_us() - t0;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      fprintf(stderr, "floor: the command failed (status %d)\n", st);
      return 1;
    }
    printf("%.1f\n", t);
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 3 && !strcmp(argv[1], "serve")) return serve(argv[2]);
  if (argc >= 5 && !strcmp(argv[1], "client")) return client(argv[2], atol(argv[3]), argv + 4);
  if (argc >= 4 && !strcmp(argv[1], "local")) return local(atol(argv[2]), argv + 3);
  fprintf(stderr, "usage: floor serve SOCK | floor client SOCK N ARGV... | floor local N ARGV...\n");
  return 2;
}
