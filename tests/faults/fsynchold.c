/* Holds fsync() and fdatasync() of a process from outside it, loaded with LD_PRELOAD.
 *
 * FSYNCHOLD_TRIGGER  a file: while it exists, a matching call does not reach the disk but waits
 *                    (polling every 10 ms); once the file is gone it goes on to the real call.
 * FSYNCHOLD_MARKER   a file written when the first matching call starts waiting (once, whichever
 *                    process of the tree it is in): "<call> <path of the descriptor> <pid>".
 * FSYNCHOLD_NEEDLE   optional: only a descriptor whose file holds these bytes matches (read with
 *                    pread on the descriptor itself; no other descriptor of the file is opened and
 *                    closed, which would drop the process's POSIX locks on it, SQLite's among them).
 * FSYNCHOLD_AFTER    optional: "1" holds a matching call after the real one has returned, so the
 *                    data is on the disk and the caller has not been told (a crash there is the
 *                    one between the sync and the reply); the marker then says "<call>-done".
 *
 * Without the trigger file, and for any call that does not match, the real function runs at once.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef int (*sync_fn)(int);

static sync_fn real_fsync;
static sync_fn real_fdatasync;

__attribute__((constructor)) static void fsynchold_init(void) {
    real_fsync = (sync_fn)dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = (sync_fn)dlsym(RTLD_NEXT, "fdatasync");
}

static int holds_needle(int fd, const char *needle) {
    size_t len = strlen(needle);
    if (len == 0)
        return 1;
    /* Read in chunks that overlap by len - 1 bytes, so a needle across two chunks is found too. */
    size_t size = 65536 + len;
    char *buf = malloc(size);
    if (buf == NULL)
        return 0;
    int found = 0;
    off_t offset = 0;
    size_t kept = 0;
    ssize_t n;
    while (!found && (n = pread(fd, buf + kept, size - kept, offset)) > 0) {
        offset += n;
        size_t have = kept + (size_t)n;
        found = memmem(buf, have, needle, len) != NULL;
        kept = have < len - 1 ? have : len - 1;
        memmove(buf, buf + have - kept, kept);
    }
    free(buf);
    return found;
}

static void mark(const char *marker, const char *call, int fd) {
    char link_name[64], path[PATH_MAX], tmp[PATH_MAX];
    snprintf(link_name, sizeof link_name, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link_name, path, sizeof path - 1);
    path[n < 0 ? 0 : n] = '\0';
    /* Written under a private name and linked into place: a reader never sees it half-written,
     * and link() fails once the marker exists, so only the first held call writes it. */
    snprintf(tmp, sizeof tmp, "%s.%ld", marker, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return;
    fprintf(f, "%s %s %ld\n", call, path, (long)getpid());
    fclose(f);
    (void)link(tmp, marker);
    unlink(tmp);
}

static void hold(int fd, const char *call) {
    const char *trigger = getenv("FSYNCHOLD_TRIGGER");
    if (trigger == NULL || access(trigger, F_OK) != 0)
        return;
    const char *needle = getenv("FSYNCHOLD_NEEDLE");
    if (needle != NULL && !holds_needle(fd, needle))
        return;
    const char *marker = getenv("FSYNCHOLD_MARKER");
    if (marker != NULL && *marker != '\0')
        mark(marker, call, fd);
    struct timespec pause = {0, 10 * 1000 * 1000};
    while (access(trigger, F_OK) == 0)
        nanosleep(&pause, NULL);
}

static int call_real(sync_fn *real, const char *name, int fd) {
    if (*real == NULL)
        *real = (sync_fn)dlsym(RTLD_NEXT, name);
    if (*real == NULL) {
        errno = ENOSYS;
        return -1;
    }
    return (*real)(fd);
}

static int after(void) {
    const char *value = getenv("FSYNCHOLD_AFTER");
    return value != NULL && strcmp(value, "1") == 0;
}

static int held_call(sync_fn *real, const char *name, const char *done, int fd) {
    int saved = errno;
    if (!after()) {
        hold(fd, name);
        errno = saved;
        return call_real(real, name, fd);
    }
    int result = call_real(real, name, fd);
    saved = errno;
    hold(fd, done);
    errno = saved;
    return result;
}

int fsync(int fd) {
    return held_call(&real_fsync, "fsync", "fsync-done", fd);
}

int fdatasync(int fd) {
    return held_call(&real_fdatasync, "fdatasync", "fdatasync-done", fd);
}
