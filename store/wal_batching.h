#pragma once
// A SQLite VFS that writes the frames of one WAL commit with one write.
//
// SQLite appends each page of a commit to the WAL as two writes, the
// frame's 24-byte header and then the page, and the kernel's cost per write
// is most of what a frame costs (here ~3 µs a frame written that way, ~0.8
// µs in one write per commit). This VFS wraps another one (the default,
// "unix") and, for WAL files only, gathers frames appended one after the
// other; it hands them to the file in one write when the frame that marks
// the commit is complete. Any other call on the file (a read, a sync, a
// truncate, a write elsewhere, its size, close) first writes what is
// gathered. So when SQLite publishes a commit in the WAL index, every frame
// of it is in the file, as without this VFS, and what a crash leaves is
// what it would leave without it. Frames of a transaction that rolled back
// are written before its connection lets go of the WAL's write lock, so no
// other connection's commit can lie where they land. The main database file, the rollback
// journal and the shared memory pass straight through.
//
// SQLite's headers stay in the .cpp.

#include <cstdint>

struct sqlite3_vfs;

namespace asyncops {

// Once per process, before the first connection opens: registers the
// batching VFS over SQLite's default one, as the new default, so every
// connection opened after it uses it. With ASYNCOPS_WAL_WRITES=direct in
// the environment it does nothing (SQLite's own writes, for comparing).
void install_wal_batching();

// For tests: registers a batching VFS named `name` over `under`, not as the
// default; a connection uses it when opened with that VFS name. `under`
// must outlive every connection that uses it. Returns the registered VFS,
// or null if SQLite refused it.
sqlite3_vfs* register_wal_batching_vfs(const char* name, sqlite3_vfs* under);

}  // namespace asyncops
