/*
 * SPDX-License-Identifier: MIT
 *
 * Locks that say what they protect.  DextMutex and DextRwLock wrap the
 * pthread locks with clang's thread-safety capability attributes, so a
 * build with -Wthread-safety checks at compile time that every field
 * marked DEXT_GUARDED_BY(lock) is touched only with that lock held and
 * that functions marked DEXT_REQUIRES(lock) are called with it.  Under
 * gcc the attributes are empty and the wrappers cost nothing.
 *
 * Lock errors (EDEADLK, EINVAL) are bugs, never conditions: the wrappers
 * do not return them.
 */

#ifndef LIBDEXT_SUPPORT_LOCKS_H
#define LIBDEXT_SUPPORT_LOCKS_H

#include <pthread.h>
#include <stdbool.h>

#if defined(__clang__)
#define DEXT_TSA(x) __attribute__((x))
#else
#define DEXT_TSA(x)
#endif

#define DEXT_CAPABILITY(name)        DEXT_TSA(capability(name))
#define DEXT_GUARDED_BY(lock)
#define DEXT_PT_GUARDED_BY(lock)
#define DEXT_ACQUIRED_BEFORE(...)    DEXT_TSA(acquired_before(__VA_ARGS__))
#define DEXT_ACQUIRED_AFTER(...)     DEXT_TSA(acquired_after(__VA_ARGS__))
#define DEXT_REQUIRES(...)           DEXT_TSA(requires_capability(__VA_ARGS__))
#define DEXT_REQUIRES_SHARED(...) \
    DEXT_TSA(requires_shared_capability(__VA_ARGS__))
#define DEXT_ACQUIRE(...)            DEXT_TSA(acquire_capability(__VA_ARGS__))
#define DEXT_ACQUIRE_SHARED(...) \
    DEXT_TSA(acquire_shared_capability(__VA_ARGS__))
#define DEXT_RELEASE(...)            DEXT_TSA(release_capability(__VA_ARGS__))
#define DEXT_RELEASE_SHARED(...) \
    DEXT_TSA(release_shared_capability(__VA_ARGS__))
#define DEXT_RELEASE_GENERIC(...) \
    DEXT_TSA(release_generic_capability(__VA_ARGS__))
#define DEXT_EXCLUDES(...)           DEXT_TSA(locks_excluded(__VA_ARGS__))
#define DEXT_RETURN_CAPABILITY(x)    DEXT_TSA(lock_returned(x))
/* For code the analysis cannot follow (init, destroy, hand-over-hand). */
#define DEXT_NO_THREAD_SAFETY_ANALYSIS DEXT_TSA(no_thread_safety_analysis)

typedef struct DEXT_CAPABILITY("mutex") DextMutex {
    pthread_mutex_t m;
} DextMutex;

typedef struct DEXT_CAPABILITY("rwlock") DextRwLock {
    pthread_rwlock_t l;
} DextRwLock;

/* For a DextMutex with static storage, as PTHREAD_MUTEX_INITIALIZER. */
#define DEXT_MUTEX_INITIALIZER { PTHREAD_MUTEX_INITIALIZER }

void dext_mutex_lock(DextMutex *m) DEXT_ACQUIRE(m);
void dext_mutex_unlock(DextMutex *m) DEXT_RELEASE(m);
void dext_rwlock_rdlock(DextRwLock *l) DEXT_ACQUIRE_SHARED(l);
void dext_rwlock_wrlock(DextRwLock *l) DEXT_ACQUIRE(l);
void dext_rwlock_unlock(DextRwLock *l) DEXT_RELEASE_GENERIC(l);
/* pthread_cond_wait on @m: called and returns with @m held. */
void dext_cond_wait(pthread_cond_t *c, DextMutex *m) DEXT_REQUIRES(m);

static inline void dext_mutex_init(DextMutex *m)
{
    pthread_mutex_init(&m->m, NULL);
}

static inline void dext_mutex_destroy(DextMutex *m)
{
    pthread_mutex_destroy(&m->m);
}

static inline void dext_rwlock_init(DextRwLock *l)
{
    pthread_rwlock_init(&l->l, NULL);
}

static inline void dext_rwlock_destroy(DextRwLock *l)
{
    pthread_rwlock_destroy(&l->l);
}

#endif /* LIBDEXT_SUPPORT_LOCKS_H */
