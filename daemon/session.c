/*
 * SPDX-License-Identifier: MIT
 *
 * Sessions: one per user client, shared by the channels bound to it,
 * found again by an unguessable token.
 */

#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "daemon/dextd.h"
#include "support/pidfd.h"

IOReturn session_new(Daemon *d, Channel *ch, DextSession *cs,
                     uint64_t service_id, Session **out)
{
    Session *s = calloc(1, sizeof(*s));
    size_t got = 0;

    if (s == NULL) {
        return kIOReturnNoMemory;
    }
    /* The token is the only thing ATTACH proves; make it unguessable. */
    while (got < sizeof(s->token)) {
        ssize_t n = getrandom(s->token + got, sizeof(s->token) - got, 0);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            free(s);
            return kIOReturnInternalError;
        }
        got += (size_t)n;
    }
    s->cs = cs;
    s->service_id = service_id;
    s->pid = ch->pid;
    s->uid = ch->uid;
    s->pidfd = fcntl(ch->pidfd, F_DUPFD_CLOEXEC, 0);
    if (s->pidfd < 0) {
        free(s);
        return kIOReturnNoResources;
    }
    s->refs = 1;
    wake_ports_init(s);
    dext_mutex_lock(&d->lock);
    s->next = d->sessions;
    d->sessions = s;
    dext_mutex_unlock(&d->lock);
    *out = s;
    return kIOReturnSuccess;
}

/*
 * Drop one channel's hold; the last one closes the user client and gives
 * its fds back to the budget.
 */
void session_unref(Daemon *d, Session *s)
{
    unsigned nports;
    Session **pp;
    bool last;

    dext_mutex_lock(&d->lock);
    last = --s->refs == 0;
    if (last) {
        for (pp = &d->sessions; *pp != NULL; pp = &(*pp)->next) {
            if (*pp == s) {
                *pp = s->next;
                break;
            }
        }
    }
    dext_mutex_unlock(&d->lock);
    if (!last) {
        return;
    }
    dext_session_close(s->cs);
    nports = wake_ports_close(s);
    /* The contract has no Release: a claim ends with its session. */
    dlog_limited(d, &s->log_rl, DEXT_LOG_INFO, "pid %d uid %u closed service "
                 "0x%llx%s", (int)s->pid, (unsigned)s->uid,
                 (unsigned long long)s->service_id,
                 __atomic_load_n(&s->claimed, __ATOMIC_RELAXED) ?
                 ", releasing its claim" : "");
    close(s->pidfd);
    fd_release(d, DEXTD_SESSION_FDS + nports);
    memset(s->token, 0, sizeof(s->token));
    free(s);
}

static bool token_equal(const uint8_t *a, const uint8_t *b)
{
    uint8_t diff = 0;
    int i;

    /* Constant time, so timing does not leak how much of it matched. */
    for (i = 0; i < DEXT_WIRE_TOKEN_SIZE; i++) {
        diff |= a[i] ^ b[i];
    }
    return diff == 0;
}

IOReturn session_attach(Daemon *d, Channel *ch, const uint8_t *token)
{
    IOReturn status = kIOReturnNotPermitted;
    Session *s;

    dext_mutex_lock(&d->lock);
    for (s = d->sessions; s != NULL; s = s->next) {
        if (token_equal(s->token, token)) {
            break;
        }
    }
    /*
     * A token alone is not enough: only the opening process may add
     * channels, so a leaked token is useless elsewhere.  Equal pids
     * mean the same process only while both pidfds say it lives: a
     * process that reused the opener's pid is someone else.
     */
    if (s != NULL && s->pid == ch->pid && s->uid == ch->uid &&
        dext_pidfd_alive(s->pidfd) && dext_pidfd_alive(ch->pidfd)) {
        s->refs++;
        ch->session = s;
        status = kIOReturnSuccess;
    }
    dext_mutex_unlock(&d->lock);
    return status;
}
