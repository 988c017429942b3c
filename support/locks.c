/*
 * SPDX-License-Identifier: MIT
 *
 * The lock wrappers of support/locks.h.  Out of line because the
 * thread-safety attributes go on declarations; each is one call.
 */

#include "support/locks.h"

void dext_mutex_lock(DextMutex *m) DEXT_NO_THREAD_SAFETY_ANALYSIS
{
    pthread_mutex_lock(&m->m);
}

void dext_mutex_unlock(DextMutex *m) DEXT_NO_THREAD_SAFETY_ANALYSIS
{
    pthread_mutex_unlock(&m->m);
}

void dext_rwlock_rdlock(DextRwLock *l) DEXT_NO_THREAD_SAFETY_ANALYSIS
{
    pthread_rwlock_rdlock(&l->l);
}

void dext_rwlock_wrlock(DextRwLock *l) DEXT_NO_THREAD_SAFETY_ANALYSIS
{
    pthread_rwlock_wrlock(&l->l);
}

void dext_rwlock_unlock(DextRwLock *l) DEXT_NO_THREAD_SAFETY_ANALYSIS
{
    pthread_rwlock_unlock(&l->l);
}

void dext_cond_wait(pthread_cond_t *c, DextMutex *m)
    DEXT_NO_THREAD_SAFETY_ANALYSIS
{
    pthread_cond_wait(c, &m->m);
}
