/*
 * The floor of one stdio hop, for the benchmark suite (benches/proxy.rs): a byte relay that
 * spawns its arguments as a child and copies its own stdin to the child's stdin and the child's
 * stdout to its own stdout, with poll(2) on one thread. It parses nothing: whatever is readable is
 * read and written on in full. EOF on stdin closes the child's stdin; EOF on the child's stdout
 * ends the relay, which reaps the child and exits with its status. The child's stderr is ours.
 *
 *   cc -O2 -o relay benches/relay.c && ./relay PROGRAM [ARG...]
 *
 * Writes block until done: one direction waits while the other is written, which is what any
 * relay does for one request at a time, and keeps the floor to one read and one write per chunk.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* Writes all of buf; 0 on success, -1 when fd is closed or broken. */
static int write_all(int fd, const char *buf, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* One read; 0 at EOF or on an error (both end that direction), else the byte count. */
static ssize_t read_some(int fd, char *buf, size_t len) {
    for (;;) {
        ssize_t n = read(fd, buf, len);
        if (n >= 0)
            return n;
        if (errno != EINTR)
            return 0;
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: relay PROGRAM [ARG...]\n");
        return 2;
    }
    int to_child[2], from_child[2];
    if (pipe(to_child) != 0 || pipe(from_child) != 0) {
        perror("relay: pipe");
        return 1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("relay: fork");
        return 1;
    }
    if (pid == 0) {
        if (dup2(to_child[0], STDIN_FILENO) < 0 || dup2(from_child[1], STDOUT_FILENO) < 0) {
            perror("relay: dup2");
            _exit(127);
        }
        close(to_child[0]);
        close(to_child[1]);
        close(from_child[0]);
        close(from_child[1]);
        execvp(argv[1], argv + 1);
        fprintf(stderr, "relay: cannot run %s: %s\n", argv[1], strerror(errno));
        _exit(127);
    }
    close(to_child[0]);
    close(from_child[1]);
    int child_in = to_child[1];
    int child_out = from_child[0];
    /* A write to a child that has exited fails with EPIPE instead of killing the relay (set
     * after the fork: an ignored SIGPIPE would survive the child's exec). */
    signal(SIGPIPE, SIG_IGN);

    static char buf[64 * 1024];
    struct pollfd fds[2] = {
        {.fd = STDIN_FILENO, .events = POLLIN},
        {.fd = child_out, .events = POLLIN},
    };
    for (;;) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            perror("relay: poll");
            break;
        }
        if (fds[1].revents != 0) {
            ssize_t n = read_some(child_out, buf, sizeof buf);
            if (n == 0)
                break; /* the child closed its stdout: nothing more to relay */
            if (write_all(STDOUT_FILENO, buf, (size_t)n) != 0)
                break; /* our reader is gone */
        }
        if (fds[0].revents != 0) {
            ssize_t n = read_some(STDIN_FILENO, buf, sizeof buf);
            if (n == 0 || write_all(child_in, buf, (size_t)n) != 0) {
                /* EOF on stdin (or a child that stopped reading): the child sees EOF. */
                close(child_in);
                child_in = -1;
                fds[0].fd = -1;
            }
        }
    }
    if (child_in >= 0)
        close(child_in);
    close(child_out);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}
