/*
 * The L7 benchmark's paced load: an open-loop HTTP/1.1 load generator, in C.
 *
 * l7_client.py runs it for ``load --rate R --pacer PATH`` (tools/bench/l7.py compiles it
 * once per run with ``cc -O2``) in the lab agent's namespace, pinned to the CPU it shares
 * with the upstream server. It replaces the asyncio pacer there for the latency at a given
 * rate: an event loop in Python sleeps in ticks of a millisecond or more and can fall tens
 * of milliseconds behind, and that lag lands in every configuration's tail. Here every
 * request is sent at its own due time and the process sleeps in between (no busy loop), so
 * it takes little of the CPU the server needs.
 *
 *   l7_pace --rate R --request FILE --expect FILE [--connections N] [--duration S]
 *           [--warmup S] ADDRESS PORT
 *
 * ADDRESS is an IPv4 address (l7_client.py resolves the name once, first); --request holds
 * the exact bytes of one request (sent as they are, again and again), --expect the exact
 * body every answer must carry. Plain HTTP only.
 *
 * Semantics (those of l7_client.py's paced ``load``, except which requests are measured):
 *
 * - --connections keep-alive connections (TCP_NODELAY), all connected before the clock
 *   starts (a setup failure, such as not all of them open within 10 s, ends it with
 *   exit 1); --warmup seconds unmeasured, then --duration measured seconds.
 * - Request i is due at start + i / rate. One timerfd, armed at absolute CLOCK_MONOTONIC
 *   due times, wakes the loop (epoll) when the next request is due. A due request is written
 *   at once on an idle connection (the one idle longest); when none is idle it waits for the
 *   next connection whose answer is complete (counted in ``waited``).
 * - Each request is timed from its due time (not from its write) to the last byte of its
 *   answer: a strict coordinated-omission correction, so neither a late wake-up of this
 *   process nor a request waiting for a connection can hide time from the figures. The
 *   requests due in the measured window are the ones measured, whenever their answers
 *   come (the asyncio pacer measures the answers that come in the window, so a stall at
 *   its end could go unseen).
 * - Every answer is checked as l7_client.py checks it: ``HTTP/1.1 200``, a Content-Length,
 *   exactly the expected body and no byte more. A wrong answer is counted under ``errors``
 *   (``status-XXX``, ``no-content-length``, ``bad-content-length``, ``head-too-long``,
 *   ``wrong-body``, ``extra-bytes``; bytes arriving on an idle connection are
 *   ``extra-bytes`` too, an answer complete before its request was all written is
 *   ``answer-before-request``) and not timed, and its connection is reset and reopened. A
 *   connection the peer closes is counted (``closed-by-peer`` with a request on it,
 *   ``idle-closed`` without) and reopened while running; a failed connect is
 *   ``connect:`` and the errno's name, as ``connect:ECONNREFUSED`` (retried after 50 ms).
 * - At the end no request falls due any more; those still waiting for a connection are
 *   written as connections free up, and the answers to all of them are awaited for up to
 *   10 s (``unanswered-at-end`` after that, also for a request never written), so every
 *   request that fell due is counted.
 *
 * Prints one JSON object on stdout: mode, paced, connections, duration_s, completed,
 * measured (requests due in the window and answered), rps (measured / duration), errors, client_cpu (this process's CPU seconds,
 * user + system, over the measured window, per second), opened, rate, p50_us, p99_us,
 * max_us (sorted latencies, index round(q / 100 * (n - 1))), waited, behind_max_ms (how
 * late the timer woke after the oldest request then due, at most, over the run) and slow
 * (up to 2000 requests of 2 ms or more: [seconds into the measured window when it was due,
 * latency in us]).
 *
 * Build: cc -O2 -Wall -Wextra -Werror -o l7_pace l7_pace.c (C11, Linux, no dependency).
 */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define NS 1000000000LL
#define TIMEOUT_NS (10 * NS)        /* connect, set-up, and the wait for answers at the end */
#define RETRY_NS (50 * 1000000LL)   /* after a failed connect */
#define HEAD_MAX 65536              /* an answer head longer than this is an error */
#define SLOW_NS (2 * 1000000LL)     /* requests this slow are listed (when they were due) */
#define SLOW_KEPT 2000
#define READ_SIZE 65536
#define MAX_EVENTS 64
#define MAX_ERROR_NAMES 64
#define NONE (-1)

enum state { CLOSED, CONNECTING, RETRY, IDLE, BUSY };

struct conn {
    int fd;
    enum state state;
    uint32_t gen;           /* bumped on every close: stale epoll events are ignored */
    int64_t deadline;       /* CONNECTING: give up at; RETRY: connect again at */
    int64_t due;            /* BUSY: when its request was due */
    size_t sent;            /* BUSY: bytes of the request written */
    int want_out;           /* EPOLLOUT registered */
    int listed;             /* on the idle list (IDLE while running) */
    int prev, next;
    /* the answer so far */
    char *head;             /* HEAD_MAX + 1 bytes */
    size_t head_len;
    int head_done;
    uint64_t body_len, body_got;
    char *body;             /* the first expect_len bytes of the body */
};

struct error_count {
    char name[64];
    long count;
};

static struct {
    /* arguments */
    struct sockaddr_in addr;
    double rate, duration, warmup;
    int connections;
    char *request;
    size_t request_len;
    char *expect;
    size_t expect_len;
    /* state */
    int ep, timer;
    struct conn *conns;
    int idle_first, idle_last;
    int64_t *queue;         /* due times waiting for a connection (FIFO) */
    size_t queue_head, queue_tail, queue_cap;
    int running;
    int pending;            /* connections CONNECTING or RETRY */
    int64_t t_measure, t_end;
    /* results */
    long completed, measured, waited, opened;
    int64_t behind_max;
    int64_t *lat;
    size_t lat_n, lat_cap;
    int64_t slow[SLOW_KEPT][2];
    size_t slow_n;
    struct error_count errors[MAX_ERROR_NAMES];
    int error_names;
    long other_errors;
} g;

static char scratch[READ_SIZE];

/* One line on stderr: "l7_pace: " and the message. */
static void complain(const char *fmt, va_list ap)
{
    fputs("l7_pace: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    complain(fmt, ap);
    va_end(ap);
    exit(1);
}

static void *xrealloc(void *p, size_t size)
{
    void *q = realloc(p, size ? size : 1);
    if (q == NULL)
        die("out of memory");
    return q;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

static double cpu_seconds(void)
{
    struct rusage use;
    getrusage(RUSAGE_SELF, &use);
    return (double)use.ru_utime.tv_sec + (double)use.ru_utime.tv_usec / 1e6
        + (double)use.ru_stime.tv_sec + (double)use.ru_stime.tv_usec / 1e6;
}

/* Python's errno.errorcode names for the errors a connect can end with. */
static const char *errno_name(int e)
{
    switch (e) {
    case ECONNREFUSED: return "ECONNREFUSED";
    case ECONNRESET: return "ECONNRESET";
    case ECONNABORTED: return "ECONNABORTED";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EHOSTUNREACH: return "EHOSTUNREACH";
    case EHOSTDOWN: return "EHOSTDOWN";
    case ENETUNREACH: return "ENETUNREACH";
    case ENETDOWN: return "ENETDOWN";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case EADDRINUSE: return "EADDRINUSE";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case ENOBUFS: return "ENOBUFS";
    case ENOMEM: return "ENOMEM";
    case EAGAIN: return "EAGAIN";
    case EPIPE: return "EPIPE";
    case EPROTO: return "EPROTO";
    default: return NULL;
    }
}

static void count_error(const char *name)
{
    for (int i = 0; i < g.error_names; i++) {
        if (strcmp(g.errors[i].name, name) == 0) {
            g.errors[i].count++;
            return;
        }
    }
    if (g.error_names == MAX_ERROR_NAMES) {
        g.other_errors++;
        return;
    }
    snprintf(g.errors[g.error_names].name, sizeof g.errors[0].name, "%s", name);
    g.errors[g.error_names++].count = 1;
}

static void count_errno(const char *prefix, int e)
{
    char name[64];
    const char *known = errno_name(e);
    if (known != NULL)
        snprintf(name, sizeof name, "%s%s", prefix, known);
    else
        snprintf(name, sizeof name, "%s%d", prefix, e);
    count_error(name);
}

/* --- the idle list (oldest idle first) and the requests waiting for a connection ------ */

static void idle_push(int i)
{
    struct conn *c = &g.conns[i];
    c->state = IDLE;
    c->listed = 1;
    c->next = NONE;
    c->prev = g.idle_last;
    if (g.idle_last != NONE)
        g.conns[g.idle_last].next = i;
    else
        g.idle_first = i;
    g.idle_last = i;
}

static void idle_remove(int i)
{
    struct conn *c = &g.conns[i];
    if (!c->listed)
        return;
    c->listed = 0;
    if (c->prev != NONE)
        g.conns[c->prev].next = c->next;
    else
        g.idle_first = c->next;
    if (c->next != NONE)
        g.conns[c->next].prev = c->prev;
    else
        g.idle_last = c->prev;
    c->prev = c->next = NONE;
}

static void queue_push(int64_t due)
{
    if (g.queue_tail == g.queue_cap) {
        if (g.queue_head > 0) {
            memmove(g.queue, g.queue + g.queue_head,
                    (g.queue_tail - g.queue_head) * sizeof *g.queue);
            g.queue_tail -= g.queue_head;
            g.queue_head = 0;
        }
        if (g.queue_tail == g.queue_cap) {
            g.queue_cap = g.queue_cap ? 2 * g.queue_cap : 1024;
            g.queue = xrealloc(g.queue, g.queue_cap * sizeof *g.queue);
        }
    }
    g.queue[g.queue_tail++] = due;
}

/* --- connections --------------------------------------------------------------------- */

static void watch(int i, int out)
{
    struct conn *c = &g.conns[i];
    struct epoll_event ev = {
        .events = EPOLLIN | (out ? EPOLLOUT : 0),
        .data.u64 = ((uint64_t)c->gen << 32) | (uint32_t)i,
    };
    if (epoll_ctl(g.ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        die("epoll_ctl: %s", strerror(errno));
    c->want_out = out;
}

static void conn_close(int i, int reset)
{
    struct conn *c = &g.conns[i];
    idle_remove(i);
    if (c->state == CONNECTING || c->state == RETRY)
        g.pending--;
    if (c->fd >= 0) {
        if (reset) {
            struct linger lg = { .l_onoff = 1, .l_linger = 0 };
            setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        }
        close(c->fd);  /* also leaves the epoll set */
        c->fd = -1;
    }
    c->state = CLOSED;
    c->gen++;
}

static void connect_failed(int i, int e)
{
    count_errno("connect:", e);
    conn_close(i, 0);
    if (g.running) {
        g.conns[i].state = RETRY;
        g.conns[i].deadline = now_ns() + RETRY_NS;
        g.pending++;
    }
}

static void conn_open(int i)
{
    struct conn *c = &g.conns[i];
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        c->fd = -1;
        c->state = CLOSED;
        connect_failed(i, errno);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->fd = fd;
    c->state = CONNECTING;
    c->deadline = now_ns() + TIMEOUT_NS;
    g.pending++;
    struct epoll_event ev = {
        .events = EPOLLIN | EPOLLOUT,
        .data.u64 = ((uint64_t)c->gen << 32) | (uint32_t)i,
    };
    if (epoll_ctl(g.ep, EPOLL_CTL_ADD, fd, &ev) < 0)
        die("epoll_ctl: %s", strerror(errno));
    c->want_out = 1;
    if (connect(fd, (struct sockaddr *)&g.addr, sizeof g.addr) < 0 && errno != EINPROGRESS)
        connect_failed(i, errno);
}

/* A connection lost (closed by the peer, or an error on it). */
static void conn_lost(int i)
{
    struct conn *c = &g.conns[i];
    if (c->state == BUSY)
        count_error("closed-by-peer");
    else if (g.running)
        count_error("idle-closed");
    conn_close(i, 0);
    if (g.running)
        conn_open(i);
}

/* A wrong answer: counted by name, not timed; the connection is reset and reopened. */
static void conn_bad(int i, const char *name)
{
    count_error(name);
    conn_close(i, 1);
    if (g.running)
        conn_open(i);
}

static void conn_send(int i, int64_t due)
{
    struct conn *c = &g.conns[i];
    c->state = BUSY;
    c->due = due;
    c->sent = 0;
    c->head_len = 0;
    c->head_done = 0;
    c->body_len = c->body_got = 0;
    while (c->sent < g.request_len) {
        ssize_t n = send(c->fd, g.request + c->sent, g.request_len - c->sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                watch(i, 1);  /* the rest when the socket can take it */
                return;
            }
            conn_lost(i);
            return;
        }
        c->sent += (size_t)n;
    }
}

/* A connection free for a request: the oldest one waiting, if any (also after the last
 * request fell due: every request due in the run is written), else the idle list. */
static void conn_ready(int i)
{
    if (g.queue_head < g.queue_tail)
        conn_send(i, g.queue[g.queue_head++]);
    else if (g.running)
        idle_push(i);
    else
        g.conns[i].state = IDLE;  /* not listed: nothing more is sent */
}

static void answered(int i, int64_t now)
{
    struct conn *c = &g.conns[i];
    if (c->sent < g.request_len) {
        conn_bad(i, "answer-before-request");  /* an answer to a request not yet written */
        return;
    }
    g.completed++;
    if (g.t_measure <= c->due && c->due < g.t_end) {  /* due in the window: measured */
        int64_t took = now - c->due;
        g.measured++;
        if (g.lat_n == g.lat_cap) {
            g.lat_cap = g.lat_cap ? 2 * g.lat_cap : 4096;
            g.lat = xrealloc(g.lat, g.lat_cap * sizeof *g.lat);
        }
        g.lat[g.lat_n++] = took;
        if (took >= SLOW_NS && g.slow_n < SLOW_KEPT) {
            g.slow[g.slow_n][0] = c->due - g.t_measure;
            g.slow[g.slow_n][1] = took;
            g.slow_n++;
        }
    }
    conn_ready(i);
}

/* --- answers ------------------------------------------------------------------------ */

static int is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f';
}

static char lower(char ch)
{
    return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}

/* Case-insensitive search of ``needle`` (lower case) in ``hay[from:len]``. */
static long find_lower(const char *hay, size_t len, size_t from, const char *needle)
{
    size_t m = strlen(needle);
    for (size_t at = from; at + m <= len; at++) {
        size_t k = 0;
        while (k < m && lower(hay[at + k]) == needle[k])
            k++;
        if (k == m)
            return (long)at;
    }
    return -1;
}

/* The head ``h[0:len]`` (without its blank line): the body's length, or an error name. */
static const char *parse_head(const char *h, size_t len, uint64_t *body_len, char *status)
{
    static const char ok[] = "http/1.1 200 ";
    size_t k = 0;
    while (k < sizeof ok - 1 && k < len && lower(h[k]) == ok[k])
        k++;
    if (k < sizeof ok - 1) {
        /* status-XXX: the answer's bytes 9 to 11, as l7_client.py names them */
        size_t n = 0;
        strcpy(status, "status-");
        for (size_t j = 9; j < 12 && j < len; j++)
            status[7 + n++] = lower(h[j]);
        status[7 + n] = '\0';
        return status;
    }
    long at = find_lower(h, len, 0, "\r\ncontent-length:");
    if (at < 0)
        return "no-content-length";
    size_t from = (size_t)at + 17;
    long stop = find_lower(h, len, (size_t)at + 2, "\r\n");
    size_t to = stop > 0 ? (size_t)stop : len;
    while (from < to && is_space(h[from]))
        from++;
    while (to > from && is_space(h[to - 1]))
        to--;
    if (from == to || to - from > 18)
        return "bad-content-length";
    uint64_t v = 0;
    for (size_t j = from; j < to; j++) {
        if (h[j] < '0' || h[j] > '9')
            return "bad-content-length";
        v = v * 10 + (uint64_t)(h[j] - '0');
    }
    *body_len = v;
    return NULL;
}

/* Body bytes of the answer on connection i; 1 when the answer is complete and right. */
static int body_bytes(int i, const char *p, size_t n, int64_t now)
{
    struct conn *c = &g.conns[i];
    if (c->body_got + n > c->body_len) {
        conn_bad(i, "extra-bytes");
        return 0;
    }
    if (c->body_got < g.expect_len) {
        size_t keep = g.expect_len - (size_t)c->body_got;
        memcpy(c->body + c->body_got, p, keep < n ? keep : n);
    }
    c->body_got += n;
    if (c->body_got < c->body_len)
        return 0;
    if (c->body_len != g.expect_len || memcmp(c->body, g.expect, g.expect_len) != 0) {
        conn_bad(i, "wrong-body");
        return 0;
    }
    answered(i, now);
    return 1;
}

/* Bytes from the peer. A read that did not fill the buffer emptied the socket: no
 * second recv() just to see EAGAIN (epoll, level-triggered, says when more comes). */
static void conn_read(int i)
{
    struct conn *c = &g.conns[i];
    uint32_t gen = c->gen;
    for (;;) {
        char *into = scratch;
        size_t room = sizeof scratch;
        if (c->state == BUSY && !c->head_done) {
            into = c->head + c->head_len;
            room = HEAD_MAX + 1 - c->head_len;
        }
        ssize_t n = recv(c->fd, into, room, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            conn_lost(i);
            return;
        }
        int64_t now = now_ns();
        if (c->state != BUSY) {
            conn_bad(i, "extra-bytes");  /* nothing was asked on this connection */
            return;
        }
        if (!c->head_done) {
            size_t before = c->head_len;
            c->head_len += (size_t)n;
            long end = find_lower(c->head, c->head_len, before >= 3 ? before - 3 : 0,
                                  "\r\n\r\n");
            if (end < 0) {
                if (c->head_len > HEAD_MAX) {
                    conn_bad(i, "head-too-long");
                    return;
                }
                if ((size_t)n < room)
                    return;
                continue;
            }
            char status[32];
            const char *bad = parse_head(c->head, (size_t)end, &c->body_len, status);
            if (bad != NULL) {
                conn_bad(i, bad);
                return;
            }
            c->head_done = 1;
            size_t start = (size_t)end + 4;
            body_bytes(i, c->head + start, c->head_len - start, now);
        } else {
            body_bytes(i, scratch, (size_t)n, now);
        }
        if (c->gen != gen || (size_t)n < room)
            return;
    }
}

static void conn_event(int i, uint32_t events)
{
    struct conn *c = &g.conns[i];
    if (c->state == CONNECTING) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err != 0) {
            connect_failed(i, err);
            return;
        }
        g.pending--;
        g.opened++;
        watch(i, 0);
        conn_ready(i);
        return;
    }
    if (c->state == BUSY && c->want_out && (events & EPOLLOUT)) {
        while (c->sent < g.request_len) {
            ssize_t n = send(c->fd, g.request + c->sent, g.request_len - c->sent,
                             MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                    break;
                conn_lost(i);
                return;
            }
            c->sent += (size_t)n;
        }
        if (c->sent == g.request_len)
            watch(i, 0);
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
        conn_read(i);
}

/* Connects that timed out, and connections whose retry is due. */
static void check_pending(int64_t now)
{
    for (int i = 0; i < g.connections && g.pending > 0; i++) {
        struct conn *c = &g.conns[i];
        if (c->state == CONNECTING && now >= c->deadline) {
            connect_failed(i, ETIMEDOUT);
        } else if (c->state == RETRY && now >= c->deadline) {
            g.pending--;
            c->state = CLOSED;
            conn_open(i);
        }
    }
}

/* The epoll timeout (ms) until the nearest pending deadline or ``limit`` (0: none). */
static int wait_ms(int64_t now, int64_t limit)
{
    int64_t until = limit;
    for (int i = 0; i < g.connections && g.pending > 0; i++) {
        struct conn *c = &g.conns[i];
        if ((c->state == CONNECTING || c->state == RETRY) && (until == 0 || c->deadline < until))
            until = c->deadline;
    }
    if (until == 0)
        return -1;
    if (until <= now)
        return 0;
    return (int)((until - now + 999999) / 1000000);
}

/* Wait for events (up to ``limit``, 0: no limit but pending deadlines) and handle them;
 * 1 when the pace timer fired. */
static int poll_once(int64_t limit)
{
    struct epoll_event ev[MAX_EVENTS];
    int n = epoll_wait(g.ep, ev, MAX_EVENTS, wait_ms(now_ns(), limit));
    if (n < 0) {
        if (errno == EINTR)
            return 0;
        die("epoll_wait: %s", strerror(errno));
    }
    int fired = 0;
    for (int k = 0; k < n; k++) {
        if (ev[k].data.u64 == UINT64_MAX) {
            fired = 1;  /* not read: arming it again (or disarming it) clears it */
            continue;
        }
        int i = (int)(uint32_t)ev[k].data.u64;
        if ((uint32_t)(ev[k].data.u64 >> 32) != g.conns[i].gen)
            continue;  /* an event for a socket closed since */
        conn_event(i, ev[k].events);
    }
    if (g.pending > 0)
        check_pending(now_ns());
    return fired;
}

/* The pace timer at CLOCK_MONOTONIC ``at`` (ns; 0 disarms it). */
static void arm(int64_t at)
{
    struct itimerspec its = { .it_value = { .tv_sec = at / NS, .tv_nsec = at % NS } };
    if (timerfd_settime(g.timer, TFD_TIMER_ABSTIME, &its, NULL) < 0)
        die("timerfd_settime: %s", strerror(errno));
}

/* --- the run ------------------------------------------------------------------------- */

static void run(double *cpu_window)
{
    int64_t setup_end = now_ns() + TIMEOUT_NS;
    g.running = 1;
    for (int i = 0; i < g.connections; i++)
        conn_open(i);
    int open_now = 0;
    while (open_now < g.connections && now_ns() < setup_end) {
        poll_once(setup_end);
        open_now = 0;
        for (int i = 0; i < g.connections; i++)
            open_now += g.conns[i].state == IDLE;
    }
    if (open_now < g.connections) {
        fprintf(stderr, "l7_pace: only %d of %d connections to %s:%d open after %lld s",
                open_now, g.connections, inet_ntoa(g.addr.sin_addr), ntohs(g.addr.sin_port),
                (long long)(TIMEOUT_NS / NS));
        for (int k = 0; k < g.error_names; k++)
            fprintf(stderr, "%s %s: %ld", k ? "," : ";", g.errors[k].name, g.errors[k].count);
        fputc('\n', stderr);
        exit(1);
    }

    int64_t start = now_ns();
    double ns_per_request = 1e9 / g.rate;
    g.t_measure = start + (int64_t)(g.warmup * 1e9);
    g.t_end = g.t_measure + (int64_t)(g.duration * 1e9);
    int64_t next = 0;                  /* the index of the next request */
    int64_t next_due = start;
    int have_cpu0 = 0;
    double cpu0 = 0;
    for (;;) {
        int64_t now = now_ns();
        if (!have_cpu0 && now >= g.t_measure) {
            cpu0 = cpu_seconds();
            have_cpu0 = 1;
        }
        if (now >= g.t_end)
            break;
        if (next_due <= now && now - next_due > g.behind_max)
            g.behind_max = now - next_due;
        while (next_due <= now) {
            if (g.idle_first != NONE) {
                int i = g.idle_first;
                idle_remove(i);
                conn_send(i, next_due);
            } else {
                queue_push(next_due);
                g.waited++;
            }
            next++;
            next_due = start + (int64_t)((double)next * ns_per_request);
        }
        int64_t wake = next_due < g.t_end ? next_due : g.t_end;
        if (!have_cpu0 && g.t_measure < wake)
            wake = g.t_measure;
        arm(wake);
        while (!poll_once(0))
            ;
    }
    *cpu_window = cpu_seconds() - (have_cpu0 ? cpu0 : cpu_seconds());
    arm(0);

    /* No request falls due any more; those still waiting for a connection are written as
     * connections free up, and the answers to all of them are awaited: a stall at the end
     * of the window is measured like one in its middle. */
    g.running = 0;
    for (int i = 0; i < g.connections; i++) {
        struct conn *c = &g.conns[i];
        idle_remove(i);
        if (c->state == CONNECTING || c->state == RETRY)
            conn_close(i, 0);
    }
    int64_t deadline = now_ns() + TIMEOUT_NS;
    for (;;) {
        int busy = 0;
        for (int i = 0; i < g.connections; i++)
            busy += g.conns[i].state == BUSY;
        if (busy == 0 || now_ns() >= deadline)
            break;
        poll_once(deadline);
    }
    for (int i = 0; i < g.connections; i++) {
        if (g.conns[i].state == BUSY)
            count_error("unanswered-at-end");
        if (g.conns[i].fd >= 0)
            conn_close(i, 0);
    }
    for (; g.queue_head < g.queue_tail; g.queue_head++)
        count_error("unanswered-at-end");  /* never written: no connection freed in time */
}

/* --- output -------------------------------------------------------------------------- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Python's round(): halves to even. */
static int64_t round_even(double x)
{
    int64_t f = (int64_t)x;  /* x >= 0 */
    double frac = x - (double)f;
    if (frac > 0.5 || (frac == 0.5 && (f & 1)))
        f++;
    return f;
}

static void put_pct(const char *name, double q)
{
    if (g.lat_n == 0) {
        printf(", \"%s\": NaN", name);
        return;
    }
    int64_t at = round_even(q / 100 * (double)(g.lat_n - 1));
    if (at > (int64_t)g.lat_n - 1)
        at = (int64_t)g.lat_n - 1;
    printf(", \"%s\": %.3f", name, (double)g.lat[at] / 1e3);
}

/* A JSON string (an error name may hold any byte the peer sent). */
static void put_string(const char *s)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p >= 0x80)
            fputs("\\ufffd", stdout);
        else if (*p < 0x20 || *p == 0x7f)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

/* A number given as an argument, as Python prints a float (2.0, 0.3). */
static void put_float(const char *name, double v)
{
    char text[64];
    snprintf(text, sizeof text, "%.15g", v);
    printf(", \"%s\": %s%s", name, text, strpbrk(text, ".e") ? "" : ".0");
}

static void output(double cpu_window)
{
    qsort(g.lat, g.lat_n, sizeof *g.lat, cmp_i64);
    printf("{\"mode\": \"load\", \"paced\": true, \"connections\": %d", g.connections);
    put_float("duration_s", g.duration);
    printf(", \"completed\": %ld, \"measured\": %ld, \"rps\": %.3f", g.completed, g.measured,
           (double)g.measured / g.duration);
    printf(", \"errors\": {");
    for (int k = 0; k < g.error_names; k++) {
        printf(k ? ", " : "");
        put_string(g.errors[k].name);
        printf(": %ld", g.errors[k].count);
    }
    if (g.other_errors)
        printf("%s\"other\": %ld", g.error_names ? ", " : "", g.other_errors);
    printf("}, \"client_cpu\": %.6f, \"opened\": %ld", cpu_window / g.duration, g.opened);
    put_float("rate", g.rate);
    put_pct("p50_us", 50);
    put_pct("p99_us", 99);
    put_pct("max_us", 100);
    printf(", \"waited\": %ld, \"behind_max_ms\": %.3f, \"slow\": [", g.waited,
           (double)g.behind_max / 1e6);
    for (size_t k = 0; k < g.slow_n; k++)
        printf("%s[%.4f, %lld]", k ? ", " : "", (double)g.slow[k][0] / 1e9,
               (long long)((g.slow[k][1] + 500) / 1000));
    printf("]}\n");
    if (fflush(stdout) != 0)
        die("cannot write the result: %s", strerror(errno));
}

/* --- arguments ----------------------------------------------------------------------- */

static void usage(FILE *to)
{
    fputs("usage: l7_pace --rate R --request FILE --expect FILE [--connections N]\n"
          "               [--duration S] [--warmup S] ADDRESS PORT\n"
          "\n"
          "Open-loop HTTP/1.1 load: requests due at start + i/R on N keep-alive connections\n"
          "(default 32) to the IPv4 ADDRESS and PORT, --warmup seconds unmeasured (0.5),\n"
          "then --duration measured seconds (2); each request timed from its due time to\n"
          "the last byte of its answer. --request: the bytes of one request; --expect: the\n"
          "body every answer must carry. One JSON object on stdout.\n", to);
}

static void bad_usage(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

static void bad_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    complain(fmt, ap);
    va_end(ap);
    usage(stderr);
    exit(2);
}

static double number(const char *text, const char *option)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !(v == v) || v > 1e12 || v < 0)
        bad_usage("%s: not a number of seconds or requests (>= 0)", option);
    return v;
}

static char *slurp(const char *path, size_t *len, const char *option)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        die("%s %s: %s", option, path, strerror(errno));
    char *data = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? 2 * cap : 8192;
            data = xrealloc(data, cap);
        }
        size_t got = fread(data + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f))
        die("%s %s: read error", option, path);
    fclose(f);
    if (n == 0)
        die("%s %s: empty", option, path);
    *len = n;
    return data;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        { "rate", required_argument, NULL, 'r' },
        { "request", required_argument, NULL, 'q' },
        { "expect", required_argument, NULL, 'e' },
        { "connections", required_argument, NULL, 'c' },
        { "duration", required_argument, NULL, 'd' },
        { "warmup", required_argument, NULL, 'w' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *request_path = NULL, *expect_path = NULL;
    g.rate = -1;
    g.connections = 32;
    g.duration = 2.0;
    g.warmup = 0.5;
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'r': g.rate = number(optarg, "--rate"); break;
        case 'q': request_path = optarg; break;
        case 'e': expect_path = optarg; break;
        case 'd': g.duration = number(optarg, "--duration"); break;
        case 'w': g.warmup = number(optarg, "--warmup"); break;
        case 'c': {
            double v = number(optarg, "--connections");
            if (v < 1 || v > 100000 || v != (double)(int)v)
                bad_usage("%s: a whole number from 1 to 100000", "--connections");
            g.connections = (int)v;
            break;
        }
        case 'h': usage(stdout); return 0;
        default: bad_usage("%s: unknown option or missing value", argv[optind - 1]);
        }
    }
    if (g.rate <= 0)
        bad_usage("%s: needed, above 0", "--rate");
    if (g.duration <= 0)
        bad_usage("%s: above 0", "--duration");
    if (request_path == NULL || expect_path == NULL)
        bad_usage("%s: both needed", "--request and --expect");
    if (argc - optind != 2)
        bad_usage("%s: ADDRESS and PORT needed", "arguments");
    g.addr.sin_family = AF_INET;
    if (inet_pton(AF_INET, argv[optind], &g.addr.sin_addr) != 1)
        bad_usage("%s: not an IPv4 address", argv[optind]);
    char *end;
    long port = strtol(argv[optind + 1], &end, 10);
    if (*argv[optind + 1] == '\0' || *end != '\0' || port < 1 || port > 65535)
        bad_usage("%s: not a port", argv[optind + 1]);
    g.addr.sin_port = htons((uint16_t)port);
    g.request = slurp(request_path, &g.request_len, "--request");
    g.expect = slurp(expect_path, &g.expect_len, "--expect");

    g.ep = epoll_create1(EPOLL_CLOEXEC);
    g.timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (g.ep < 0 || g.timer < 0)
        die("epoll or timerfd: %s", strerror(errno));
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = UINT64_MAX };
    if (epoll_ctl(g.ep, EPOLL_CTL_ADD, g.timer, &ev) < 0)
        die("epoll_ctl: %s", strerror(errno));
    g.conns = xrealloc(NULL, (size_t)g.connections * sizeof *g.conns);
    for (int i = 0; i < g.connections; i++) {
        g.conns[i] = (struct conn){ .fd = -1, .state = CLOSED, .prev = NONE, .next = NONE };
        g.conns[i].head = xrealloc(NULL, HEAD_MAX + 1);
        g.conns[i].body = xrealloc(NULL, g.expect_len);
    }
    g.idle_first = g.idle_last = NONE;
    g.lat_cap = (size_t)(g.rate * (g.duration + 1)) + 1024;
    g.lat = xrealloc(NULL, g.lat_cap * sizeof *g.lat);

    double cpu_window = 0;
    run(&cpu_window);
    output(cpu_window);
    return 0;
}
