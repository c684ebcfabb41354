#pragma once
// Clang's thread-safety annotations (as LevelDB's port/thread_annotations.h):
// with clang and -Wthread-safety the compiler checks that a member marked
// GUARDED_BY(m) is only touched with m held, and that a function marked
// REQUIRES(m) is only called with it held. Under other compilers they expand
// to nothing. The mutex to use with them is asyncops::Mutex
// (shared/mutex.h): libstdc++'s std::mutex carries no annotations.
// See https://clang.llvm.org/docs/ThreadSafetyAnalysis.html

#if defined(__clang__)
#define ASYNCOPS_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define ASYNCOPS_THREAD_ANNOTATION(x)
#endif

// A type that is a lock (a mutex): "mutex".
#define CAPABILITY(x) ASYNCOPS_THREAD_ANNOTATION(capability(x))
// An RAII type that holds a capability for its lifetime (MutexLock).
#define SCOPED_CAPABILITY ASYNCOPS_THREAD_ANNOTATION(scoped_lockable)
// A data member that may only be read or written with the mutex held.
#define GUARDED_BY(x) ASYNCOPS_THREAD_ANNOTATION(guarded_by(x))
// A pointer member whose pointee is guarded by the mutex.
#define PT_GUARDED_BY(x) ASYNCOPS_THREAD_ANNOTATION(pt_guarded_by(x))
// Lock ordering: this mutex is taken after / before the others.
#define ACQUIRED_AFTER(...) ASYNCOPS_THREAD_ANNOTATION(acquired_after(__VA_ARGS__))
#define ACQUIRED_BEFORE(...) ASYNCOPS_THREAD_ANNOTATION(acquired_before(__VA_ARGS__))
// The caller must hold the mutex (exclusively / shared).
#define REQUIRES(...) ASYNCOPS_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define REQUIRES_SHARED(...) ASYNCOPS_THREAD_ANNOTATION(requires_shared_capability(__VA_ARGS__))
// The function takes / releases the mutex.
#define ACQUIRE(...) ASYNCOPS_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define ACQUIRE_SHARED(...) ASYNCOPS_THREAD_ANNOTATION(acquire_shared_capability(__VA_ARGS__))
#define RELEASE(...) ASYNCOPS_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define RELEASE_SHARED(...) ASYNCOPS_THREAD_ANNOTATION(release_shared_capability(__VA_ARGS__))
#define TRY_ACQUIRE(...) ASYNCOPS_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
// The caller must not hold the mutex (the function takes it).
#define EXCLUDES(...) ASYNCOPS_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
// Tells the analysis that the mutex is held here (checked at run time, if at all, by the callee).
#define ASSERT_CAPABILITY(x) ASYNCOPS_THREAD_ANNOTATION(assert_capability(x))
// The function returns a reference to the mutex.
#define RETURN_CAPABILITY(x) ASYNCOPS_THREAD_ANNOTATION(lock_returned(x))
// Opts a function out of the analysis; say why where it is used.
#define NO_THREAD_SAFETY_ANALYSIS ASYNCOPS_THREAD_ANNOTATION(no_thread_safety_analysis)
