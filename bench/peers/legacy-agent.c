/*
 * A C agent of the original's formats, written for the bench (NOT the original oomol-lab/vsock-guest-exec
 * source, which we neither commit nor build). It implements the two wire formats of PROTOCOL.md §1 as
 * plainly as C allows, so that the bench can put a small C agent's guest RAM and per-command cost beside
 * ours in the same guest (bench/sections/guest.ts, scripts/guest-ram-floor.ts):
 *
 *   legacy-agent [CID][:PORT] [persistent]     dials CID:PORT (default 2:1024) over AF_VSOCK
 *
 *   disposable: reads one command of at most 2048 bytes (complete at EOF, a NUL, or a 250 ms pause),
 *               then execve /bin/sh -c COMMAND with the socket left open; over 2048 bytes: exit 3.
 *   persistent: u16-LE length + command, repeatedly, until EOF; each runs as /bin/sh -c, one at a time,
 *               stdio on the console. Length 0: nothing; over 2048: read and dropped, one line logged;
 *               a frame cut by EOF: logged, exit 3.
 *
 * It dials vsock, so it runs ONLY inside a guest the tests boot: it refuses to start unless
 * LEGACY_AGENT_IN_GUEST=1 is set (the bench sets it in the guest), so that running it by mistake on a
 * development machine, whose vsock reaches a real hypervisor, does nothing.
 *
 * Built at bench time: gcc -static -Os -s -o legacy-agent legacy-agent.c (bench/deps.sh installs gcc).
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#define MAX_COMMAND 2048
#define PAUSE_MS 250

/* Reads exactly n bytes; returns how many arrived before EOF (n when all), -1 on an error. */
static ssize_t read_full(int fd, char *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        if (r == 0) break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/* Parses [CID][:PORT] as the original does: values out of range keep the default. */
static void parse_addr(const char *arg, unsigned *cid, unsigned *port) {
    const char *colon = strchr(arg, ':');
    char *end;
    if (colon != arg) {
        long c = strtol(arg, &end, 10);
        if (end != arg && (c == -1 || (c >= 0 && c <= 2))) *cid = (unsigned)c;
    }
    if (colon) {
        long p = strtol(colon + 1, &end, 10);
        if (end != colon + 1 && p >= 0 && p <= 65535) *port = (unsigned)p;
    }
}

static int disposable(int s) {
    char cmd[MAX_COMMAND + 2];
    size_t len = 0;
    for (;;) {
        struct pollfd p = { .fd = s, .events = POLLIN };
        int ready = poll(&p, 1, PAUSE_MS);
        if (ready < 0 && errno == EINTR) continue;
        if (ready <= 0) break; /* the pause ends the command */
        ssize_t r = read(s, cmd + len, MAX_COMMAND + 1 - len);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        if (memchr(cmd + len, 0, (size_t)r)) {
            len = strlen(cmd);
            break;
        }
        len += (size_t)r;
        if (len > MAX_COMMAND) {
            fprintf(stderr, "legacy-agent: command over %d bytes\n", MAX_COMMAND);
            return 3;
        }
    }
    cmd[len] = 0;
    execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
    perror("legacy-agent: execl /bin/sh");
    return 1;
}

static int persistent(int s) {
    char cmd[MAX_COMMAND + 1];
    for (;;) {
        unsigned char hdr[2];
        ssize_t r = read_full(s, (char *)hdr, 2);
        if (r == 0) return 0;
        if (r != 2) {
            fprintf(stderr, "legacy-agent: frame cut by EOF\n");
            return 3;
        }
        size_t len = (size_t)hdr[0] | ((size_t)hdr[1] << 8);
        if (len > MAX_COMMAND) {
            /* Read and drop, to stay in sync. */
            fprintf(stderr, "legacy-agent: frame of %zu bytes over %d: dropped\n", len, MAX_COMMAND);
            while (len > 0) {
                size_t n = len > MAX_COMMAND ? MAX_COMMAND : len;
                if (read_full(s, cmd, n) != (ssize_t)n) {
                    fprintf(stderr, "legacy-agent: frame cut by EOF\n");
                    return 3;
                }
                len -= n;
            }
            continue;
        }
        if (read_full(s, cmd, len) != (ssize_t)len) {
            fprintf(stderr, "legacy-agent: frame cut by EOF\n");
            return 3;
        }
        if (len == 0) continue;
        cmd[len] = 0;
        pid_t pid = fork();
        if (pid < 0) {
            perror("legacy-agent: fork");
            continue;
        }
        if (pid == 0) {
            close(s);
            execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
            _exit(127);
        }
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
    }
}

int main(int argc, char **argv) {
    const char *guard = getenv("LEGACY_AGENT_IN_GUEST");
    if (!guard || strcmp(guard, "1") != 0) {
        fprintf(stderr, "legacy-agent: runs only inside a test guest (set LEGACY_AGENT_IN_GUEST=1 there)\n");
        return 2;
    }
    unsigned cid = 2, port = 1024;
    int persist = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "persistent") == 0) persist = 1;
        else parse_addr(argv[i], &cid, &port);
    }
    int s = socket(AF_VSOCK, SOCK_STREAM, 0);
    if (s < 0) {
        perror("legacy-agent: socket");
        return 1;
    }
    struct sockaddr_vm addr = { .svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port };
    if (connect(s, (struct sockaddr *)&addr, sizeof addr) < 0) {
        perror("legacy-agent: connect");
        return 1;
    }
    return persist ? persistent(s) : disposable(s);
}
