/*
 * ThreadSanitizer annotations, for the hand-offs it cannot see.
 *
 * glib's GMutex is built on futexes in libglib, which TSan does not
 * instrument, so an object one thread fills and queues on a GMainContext
 * (g_main_context_invoke, g_source_attach) and the main loop then reads
 * looks unordered to it.  The sender calls tsan_release(p) before queueing
 * p, the callback (and the destroy notify, which may run instead of it)
 * calls tsan_acquire(p) first.  glib's own allocations for the queued
 * source are handed over the same invisible way and freed on the main
 * thread: the queueing call runs between tsan_ignore_begin() and
 * tsan_ignore_end(), so TSan takes those blocks as fresh.  All of these
 * are empty outside SANITIZE=thread.
 *
 * TSAN_GUEST_ACCESS marks a function that is the guest's own load or
 * store (the translator's accessors of guest RAM): not instrumented, so
 * guest instructions are as invisible to TSan under TCG as they are under
 * KVM, and a device thread reading a ring the guest wrote is not taken
 * for a host race (the guest orders its rings with its own barriers).
 */
#ifndef VIREO_TSAN_H
#define VIREO_TSAN_H

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
/* libtsan exports these; gcc 12's tsan_interface.h does not declare them. */
void __tsan_ignore_thread_begin(void);
void __tsan_ignore_thread_end(void);
#define tsan_release(p)	__tsan_release((void *)(p))
#define tsan_acquire(p)	__tsan_acquire((void *)(p))
#define tsan_ignore_begin()	__tsan_ignore_thread_begin()
#define tsan_ignore_end()	__tsan_ignore_thread_end()
#define TSAN_GUEST_ACCESS	__attribute__((no_sanitize_thread))
#else
#define tsan_release(p)	((void)(p))
#define tsan_acquire(p)	((void)(p))
#define tsan_ignore_begin()	do { } while (0)
#define tsan_ignore_end()	do { } while (0)
#define TSAN_GUEST_ACCESS
#endif

#endif
