/*
 * backup: the CLI side of a backup: a small blocking HTTP/1.1 GET of the
 * AdminServer's snapshot command, its body saved whole or not at all.  The
 * server streams a file of Content-Length bytes with the zxid it holds in a
 * last_zxid header; anything short of that length is a failed backup and
 * leaves no file.
 */
#include "backup.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define BACKUP_HEAD_MAX_BYTES 16384
#define BACKUP_HOST_BYTES 256

enum { BACKUP_OK = 0, BACKUP_SERVER_ERROR = 1, BACKUP_UNREACHABLE = 3 };

static int connect_to(const char *host, int port, long timeout_ms)
{
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
    if (getaddrinfo(host, service, &hints, &res) != 0)
        return -1;
    int fd = -1;
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0)
            continue;
        struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd;
}

/* The value of header name in head (NUL-terminated, lines ending in CRLF), or NULL. */
static const char *header_value(const char *head, const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);
    for (const char *line = strstr(head, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
        const char *l = line + 2;
        if (strncasecmp(l, name, n) == 0 && l[n] == ':') {
            l += n + 1;
            while (*l == ' ')
                l++;
            size_t len = strcspn(l, "\r\n");
            snprintf(out, cap, "%.*s", (int)len, l);
            return out;
        }
    }
    return NULL;
}

/* Copies bytes of body (first the already read part) into file; 0 or -1 (errno). */
static int save(int sock, const char *already, size_t already_len, long long length,
                const char *file)
{
    char tmp[4096 + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", file);
    int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0)
        return -1;
    long long left = length;
    const char *chunk = already;
    ssize_t got = (ssize_t)already_len;
    static char buf[1 << 16];
    int rc = 0;
    while (rc == 0 && left > 0) {
        if (got == 0) {
            got = recv(sock, buf, sizeof buf, 0);
            chunk = buf;
            if (got < 0 && errno == EINTR) {
                got = 0;
                continue;
            }
            if (got <= 0) {
                errno = got == 0 ? EPIPE : errno;
                rc = -1;
                break;
            }
        }
        if ((long long)got > left)
            got = (ssize_t)left;
        for (ssize_t done = 0; rc == 0 && done < got;) {
            ssize_t w = write(out, chunk + done, (size_t)(got - done));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                rc = -1;
            else
                done += w;
        }
        left -= got;
        got = 0;
    }
    if (rc == 0 && fsync(out) != 0)
        rc = -1;
    int saved = errno;
    if (close(out) != 0 && rc == 0) {
        rc = -1;
        saved = errno;
    }
    if (rc == 0 && rename(tmp, file) != 0) {
        rc = -1;
        saved = errno;
    }
    if (rc != 0)
        unlink(tmp);
    errno = saved;
    return rc;
}

/* One host; BACKUP_UNREACHABLE means "try the next". */
static int backup_from(const char *host, int port, const char *auth, const char *file,
                       long timeout_ms)
{
    int sock = connect_to(host, port, timeout_ms);
    if (sock < 0) {
        fprintf(stderr, "znode: backup: cannot reach the AdminServer at %s:%d\n", host, port);
        return BACKUP_UNREACHABLE;
    }
    char request[2048];
    int n = snprintf(request, sizeof request,
                     "GET /commands/snapshot HTTP/1.1\r\nHost: %s:%d\r\n%s%s%sConnection: close\r\n\r\n",
                     host, port, auth ? "Authorization: digest " : "", auth ? auth : "",
                     auth ? "\r\n" : "");
    if (n < 0 || (size_t)n >= sizeof request) {
        fprintf(stderr, "znode: backup: the --auth value is too long\n");
        close(sock);
        return BACKUP_SERVER_ERROR;
    }
    if (send(sock, request, (size_t)n, MSG_NOSIGNAL) != n) {
        fprintf(stderr, "znode: backup: %s:%d: %s\n", host, port, strerror(errno));
        close(sock);
        return BACKUP_UNREACHABLE;
    }
    static char head[BACKUP_HEAD_MAX_BYTES + 1];
    size_t len = 0;
    char *end = NULL;
    while (!end && len < BACKUP_HEAD_MAX_BYTES) {
        ssize_t got = recv(sock, head + len, BACKUP_HEAD_MAX_BYTES - len, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        len += (size_t)got;
        head[len] = '\0';
        end = strstr(head, "\r\n\r\n");
    }
    int status = 0;
    char value[128], zxid[64] = "?";
    long long length = -1;
    if (!end || sscanf(head, "HTTP/1.%*d %d", &status) != 1) {
        fprintf(stderr, "znode: backup: %s:%d did not answer as an AdminServer\n", host, port);
        close(sock);
        return BACKUP_UNREACHABLE;
    }
    *end = '\0';
    const char *body = end + 4;
    size_t body_len = len - (size_t)(body - head);
    if (header_value(head, "Content-Length", value, sizeof value))
        length = atoll(value);
    if (status != 200 || length < 0 || !header_value(head, "last_zxid", zxid, sizeof zxid)) {
        /* the AdminServer's JSON error, on one line */
        for (size_t i = 0; i < body_len; i++)
            if (body[i] == '\n' || body[i] == '\r')
                ((char *)body)[i] = ' ';
        fprintf(stderr, "znode: backup: %s:%d answered %d: %.*s\n", host, port, status,
                (int)(body_len < 300 ? body_len : 300), body);
        close(sock);
        return BACKUP_SERVER_ERROR;
    }
    int rc = save(sock, body, body_len, length, file);
    int saved = errno;
    close(sock);
    if (rc != 0) {
        fprintf(stderr, "znode: backup: %s:%d: the backup was not saved to %s: %s\n", host, port,
                file, strerror(saved));
        return BACKUP_UNREACHABLE;
    }
    printf("backup of %s:%d at zxid=%s written to %s (%lld bytes)\n", host, port, zxid, file,
           length);
    return BACKUP_OK;
}

int cli_backup(const char *hosts, int admin_port, const char *auth, const char *file,
               long timeout_ms)
{
    char list[4096];
    snprintf(list, sizeof list, "%s", hosts);
    char *chroot = strchr(list, '/');
    if (chroot)
        *chroot = '\0';
    int rc = BACKUP_UNREACHABLE;
    for (char *save_ptr = NULL, *item = strtok_r(list, ",", &save_ptr);
         item && rc == BACKUP_UNREACHABLE; item = strtok_r(NULL, ",", &save_ptr)) {
        char host[BACKUP_HOST_BYTES];
        snprintf(host, sizeof host, "%s", item);
        char *colon = strrchr(host, ':');
        if (colon && !strchr(colon + 1, ']'))
            *colon = '\0';
        if (host[0] == '[') { /* [v6]:port */
            memmove(host, host + 1, strlen(host));
            host[strcspn(host, "]")] = '\0';
        }
        rc = backup_from(host, admin_port, auth, file, timeout_ms);
    }
    return rc;
}
