#include "store/wal_batching.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <new>
#include <string>
#include <unordered_map>

namespace asyncops {

namespace {

// SQLite's WAL format (https://www.sqlite.org/fileformat2.html#walformat):
// a 32-byte header, then frames of a 24-byte header and one page. Bytes 4-7
// of a frame header (big-endian) are the database size after the commit
// for the last frame of a commit, and 0 for every other frame.
constexpr int k_frame_header = 24;
// Past this many gathered bytes they are written even before the commit
// frame (a large transaction), so the buffer stays bounded.
constexpr std::size_t k_max_gathered = 1 << 20;
// The most one write of the wrapped file is given. The unix VFS writes at
// most 0x1ffff bytes a call (it masks the length with that, so that a
// multiple of 128 KiB writes nothing and fails with SQLITE_FULL); 31 pages
// of 4 KiB stay under it.
constexpr std::size_t k_max_write = 31 * 4096;

bool marks_commit(const void* frame_header) {
  const auto* b = static_cast<const unsigned char*>(frame_header);
  return (b[4] | b[5] | b[6] | b[7]) != 0;
}

// What a WAL file's writes gathered so far: bytes [start, start + size)
// of the file, not written yet. Only appends gather: a frame header written
// right where the previous write ended, or the page right after its
// header. Anything else is written at once, after what is gathered, so the
// file sees the writes in SQLite's order.
struct Gathered {
  std::string bytes;
  sqlite3_int64 start = 0;
  sqlite3_int64 last_end = -1;  // where the last write (gathered or not) ended
  bool last_was_header = false;
  bool header_marks_commit = false;
  // Not SQLITE_OK once writing what was gathered failed. Those frames are
  // gone, but SQLite may carry on with the transaction they belong to: a
  // failed read fails only its statement. So every later call on the file
  // fails with this code, COMMIT included, until the transaction is over
  // (release_gathered).
  int failed_rc = SQLITE_OK;

  void forget() {
    bytes.clear();
    last_end = -1;
    last_was_header = false;
  }
};

struct File {
  sqlite3_file base;     // pMethods: this VFS's methods
  sqlite3_file* real;    // the wrapped VFS's file, in the same allocation
  Gathered* gathered;    // a WAL file's, when paired with its database file; else null
  const char* name;      // a main database file's name, the pointer SQLite opened it with
  File* wal;             // a main database file's WAL, once its connection opens it
  File* db;              // a WAL file's main database file
};

// Main database files by the pointer SQLite opened them with. Each
// connection's pager passes a string of its own, and the name it passes for
// its WAL leads back to that very pointer (sqlite3_filename_database), so a
// WAL is paired with its own connection's database file.
std::mutex g_files_mutex;
std::unordered_map<const char*, File*> g_main_files;  // GUARDED_BY(g_files_mutex)

constexpr int k_file_size = (sizeof(File) + 7) & ~7;

sqlite3_file* real_of(sqlite3_file* f) {
  return reinterpret_cast<File*>(f)->real;
}

// Writes what is gathered, in as few writes of the wrapped file as it
// takes (one for a commit of up to 30 pages). On failure the gathered
// bytes are dropped, and the file fails every call until the transaction
// they belong to is over (Gathered::failed_rc). They are all of that
// transaction (each one's gathered frames are written or dropped when it
// ends), and its commit frame comes last, so nothing committed is lost.
int write_gathered(File* f) {
  Gathered* g = f->gathered;
  if (g == nullptr) return SQLITE_OK;
  if (g->failed_rc != SQLITE_OK) return g->failed_rc;
  if (g->bytes.empty()) return SQLITE_OK;
  int rc = SQLITE_OK;
  for (std::size_t done = 0; done < g->bytes.size() && rc == SQLITE_OK; done += k_max_write) {
    std::size_t n = std::min(k_max_write, g->bytes.size() - done);
    rc = f->real->pMethods->xWrite(f->real, g->bytes.data() + done, static_cast<int>(n),
                                   g->start + static_cast<sqlite3_int64>(done));
  }
  g->bytes.clear();
  if (rc != SQLITE_OK) {
    g->forget();
    g->failed_rc = rc;
  }
  return rc;
}

int write_gathered(sqlite3_file* f) {
  return write_gathered(reinterpret_cast<File*>(f));
}

// The write transaction whose frames a WAL gathered is over: its
// connection lets go of the WAL's write lock, or of its database file, or
// closes. What is still gathered can only be frames of a transaction that
// did not commit (a commit writes all of its frames at its last one), which
// nothing will read. They go to the file now, as SQLite wrote them, before
// another connection may append where they lie: written later, they would
// land over its commits. If that write fails they are dropped. A failed
// write's hold on the file ends here.
void release_gathered(File* wal) {
  Gathered* g = wal->gathered;
  if (g == nullptr) return;
  if (write_gathered(wal) != SQLITE_OK) g->forget();
  g->failed_rc = SQLITE_OK;
}

int x_close(sqlite3_file* file) {
  File* f = reinterpret_cast<File*>(file);
  {
    std::lock_guard<std::mutex> lock(g_files_mutex);
    if (f->name != nullptr) {
      auto it = g_main_files.find(f->name);
      if (it != g_main_files.end() && it->second == f) g_main_files.erase(it);
    }
    if (f->wal != nullptr) f->wal->db = nullptr;
    if (f->db != nullptr) f->db->wal = nullptr;
  }
  int rc = SQLITE_OK;
  if (f->gathered != nullptr && f->gathered->failed_rc == SQLITE_OK) rc = write_gathered(f);
  int rc_close = f->real->pMethods ? f->real->pMethods->xClose(f->real) : SQLITE_OK;
  delete f->gathered;
  f->gathered = nullptr;
  return rc != SQLITE_OK ? rc : rc_close;
}

// Writes what is gathered, then makes the call on the wrapped file: every
// call that reads the file, syncs it, sizes it, locks it or controls it
// sees the file as SQLite wrote it.
template <class Call>
int after_gathered(sqlite3_file* file, Call call) {
  int rc = write_gathered(file);
  return rc != SQLITE_OK ? rc : call(real_of(file));
}

int x_read(sqlite3_file* file, void* out, int n, sqlite3_int64 off) {
  return after_gathered(file, [&](sqlite3_file* r) { return r->pMethods->xRead(r, out, n, off); });
}

int x_write(sqlite3_file* file, const void* data, int n, sqlite3_int64 off) {
  File* f = reinterpret_cast<File*>(file);
  Gathered* g = f->gathered;
  if (g == nullptr) return f->real->pMethods->xWrite(f->real, data, n, off);
  if (g->failed_rc != SQLITE_OK) return g->failed_rc;

  const bool header = n == k_frame_header;
  const bool appends = off == g->last_end && (header || g->last_was_header);
  const bool completes_commit = appends && !header && g->header_marks_commit;
  int rc = SQLITE_OK;
  if (appends) {
    if (g->bytes.empty()) g->start = off;
    g->bytes.append(static_cast<const char*>(data), static_cast<std::size_t>(n));
  } else {
    rc = write_gathered(f);
    if (rc != SQLITE_OK) return rc;
    rc = f->real->pMethods->xWrite(f->real, data, n, off);
  }
  if (rc != SQLITE_OK) {
    g->forget();  // this write failed as it would without the VFS: nothing gathered is lost
    return rc;
  }
  g->last_end = off + n;
  g->last_was_header = header;
  if (header) g->header_marks_commit = marks_commit(data);
  if (completes_commit || g->bytes.size() >= k_max_gathered) rc = write_gathered(f);
  return rc;
}

int x_truncate(sqlite3_file* file, sqlite3_int64 size) {
  return after_gathered(file, [&](sqlite3_file* r) { return r->pMethods->xTruncate(r, size); });
}

int x_sync(sqlite3_file* file, int flags) {
  return after_gathered(file, [&](sqlite3_file* r) { return r->pMethods->xSync(r, flags); });
}

int x_file_size(sqlite3_file* file, sqlite3_int64* size) {
  return after_gathered(file, [&](sqlite3_file* r) { return r->pMethods->xFileSize(r, size); });
}

int x_lock(sqlite3_file* file, int level) {
  return after_gathered(file, [&](sqlite3_file* r) { return r->pMethods->xLock(r, level); });
}

int x_unlock(sqlite3_file* file, int level) {
  // A main database file's unlock ends its connection's transaction in
  // exclusive locking mode, which takes no shared-memory locks (see
  // x_shm_lock).
  File* f = reinterpret_cast<File*>(file);
  if (f->wal != nullptr) release_gathered(f->wal);
  return after_gathered(file, [&](sqlite3_file* r) { return r->pMethods->xUnlock(r, level); });
}

int x_check_reserved_lock(sqlite3_file* file, int* out) {
  sqlite3_file* r = real_of(file);
  return r->pMethods->xCheckReservedLock(r, out);
}

int x_file_control(sqlite3_file* file, int op, void* arg) {
  return after_gathered(file, [&](sqlite3_file* r) { return r->pMethods->xFileControl(r, op, arg); });
}

int x_sector_size(sqlite3_file* file) {
  sqlite3_file* r = real_of(file);
  return r->pMethods->xSectorSize(r);
}

int x_device_characteristics(sqlite3_file* file) {
  sqlite3_file* r = real_of(file);
  return r->pMethods->xDeviceCharacteristics(r);
}

// Version 2 and 3: the shared memory of the main database file (never a
// WAL file's), and memory-mapped reads; passed through.
int x_shm_map(sqlite3_file* file, int region, int size, int extend, void volatile** out) {
  sqlite3_file* r = real_of(file);
  return r->pMethods->xShmMap(r, region, size, extend, out);
}

int x_shm_lock(sqlite3_file* file, int offset, int n, int flags) {
  File* f = reinterpret_cast<File*>(file);
  // Letting go of the WAL's write lock (slot 0) ends a write transaction.
  if ((flags & SQLITE_SHM_UNLOCK) && offset == 0 && f->wal != nullptr) release_gathered(f->wal);
  return f->real->pMethods->xShmLock(f->real, offset, n, flags);
}

void x_shm_barrier(sqlite3_file* file) {
  sqlite3_file* r = real_of(file);
  r->pMethods->xShmBarrier(r);
}

int x_shm_unmap(sqlite3_file* file, int delete_flag) {
  sqlite3_file* r = real_of(file);
  return r->pMethods->xShmUnmap(r, delete_flag);
}

int x_fetch(sqlite3_file* file, sqlite3_int64 off, int n, void** out) {
  return after_gathered(file, [&](sqlite3_file* r) { return r->pMethods->xFetch(r, off, n, out); });
}

int x_unfetch(sqlite3_file* file, sqlite3_int64 off, void* p) {
  sqlite3_file* r = real_of(file);
  return r->pMethods->xUnfetch(r, off, p);
}

// One table per version the wrapped file may have: SQLite reads only the
// members of the version a file reports, and looks for shared memory
// (which WAL needs) only from version 2.
constexpr sqlite3_io_methods methods_of_version(int version) {
  return sqlite3_io_methods{version,
                            x_close,
                            x_read,
                            x_write,
                            x_truncate,
                            x_sync,
                            x_file_size,
                            x_lock,
                            x_unlock,
                            x_check_reserved_lock,
                            x_file_control,
                            x_sector_size,
                            x_device_characteristics,
                            version >= 2 ? x_shm_map : nullptr,
                            version >= 2 ? x_shm_lock : nullptr,
                            version >= 2 ? x_shm_barrier : nullptr,
                            version >= 2 ? x_shm_unmap : nullptr,
                            version >= 3 ? x_fetch : nullptr,
                            version >= 3 ? x_unfetch : nullptr};
}

const sqlite3_io_methods k_methods[3] = {methods_of_version(1), methods_of_version(2),
                                         methods_of_version(3)};

sqlite3_vfs* under_of(sqlite3_vfs* vfs) {
  return static_cast<sqlite3_vfs*>(vfs->pAppData);
}

int x_open(sqlite3_vfs* vfs, const char* name, sqlite3_file* file, int flags, int* out_flags) {
  File* f = reinterpret_cast<File*>(file);
  f->base.pMethods = nullptr;  // until the wrapped open succeeds: SQLite then does not close it
  f->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(file) + k_file_size);
  f->gathered = nullptr;
  f->name = nullptr;
  f->wal = nullptr;
  f->db = nullptr;
  sqlite3_vfs* under = under_of(vfs);
  int rc = under->xOpen(under, name, f->real, flags, out_flags);
  if (rc != SQLITE_OK || f->real->pMethods == nullptr) return rc;
  if (name != nullptr && (flags & (SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL))) {
    std::lock_guard<std::mutex> lock(g_files_mutex);
    if (flags & SQLITE_OPEN_MAIN_DB) {
      f->name = name;
      g_main_files[name] = f;
    } else if (auto it = g_main_files.find(sqlite3_filename_database(name)); it != g_main_files.end()) {
      // Only a WAL paired with its database file gathers: the release of
      // the write lock, seen on that file, is what bounds a transaction's
      // gathered frames. Any other WAL is written as SQLite writes it.
      f->gathered = new (std::nothrow) Gathered;
      if (f->gathered == nullptr) {
        f->real->pMethods->xClose(f->real);
        return SQLITE_NOMEM;
      }
      f->db = it->second;
      it->second->wal = f;
    }
  }
  int version = f->real->pMethods->iVersion;
  f->base.pMethods = &k_methods[(version < 1 ? 1 : version > 3 ? 3 : version) - 1];
  return SQLITE_OK;
}

// The rest of the VFS is the wrapped one's.
int x_delete(sqlite3_vfs* vfs, const char* name, int sync_dir) {
  return under_of(vfs)->xDelete(under_of(vfs), name, sync_dir);
}
int x_access(sqlite3_vfs* vfs, const char* name, int flags, int* out) {
  return under_of(vfs)->xAccess(under_of(vfs), name, flags, out);
}
int x_full_pathname(sqlite3_vfs* vfs, const char* name, int n, char* out) {
  return under_of(vfs)->xFullPathname(under_of(vfs), name, n, out);
}
void* x_dl_open(sqlite3_vfs* vfs, const char* name) {
  return under_of(vfs)->xDlOpen(under_of(vfs), name);
}
void x_dl_error(sqlite3_vfs* vfs, int n, char* out) {
  under_of(vfs)->xDlError(under_of(vfs), n, out);
}
void (*x_dl_sym(sqlite3_vfs* vfs, void* handle, const char* symbol))(void) {
  return under_of(vfs)->xDlSym(under_of(vfs), handle, symbol);
}
void x_dl_close(sqlite3_vfs* vfs, void* handle) {
  under_of(vfs)->xDlClose(under_of(vfs), handle);
}
int x_randomness(sqlite3_vfs* vfs, int n, char* out) {
  return under_of(vfs)->xRandomness(under_of(vfs), n, out);
}
int x_sleep(sqlite3_vfs* vfs, int us) {
  return under_of(vfs)->xSleep(under_of(vfs), us);
}
int x_current_time(sqlite3_vfs* vfs, double* out) {
  return under_of(vfs)->xCurrentTime(under_of(vfs), out);
}
int x_get_last_error(sqlite3_vfs* vfs, int n, char* out) {
  return under_of(vfs)->xGetLastError ? under_of(vfs)->xGetLastError(under_of(vfs), n, out) : 0;
}
int x_current_time_int64(sqlite3_vfs* vfs, sqlite3_int64* out) {
  sqlite3_vfs* u = under_of(vfs);
  if (u->iVersion >= 2 && u->xCurrentTimeInt64) return u->xCurrentTimeInt64(u, out);
  double days = 0;
  int rc = u->xCurrentTime(u, &days);
  *out = static_cast<sqlite3_int64>(days * 86400000.0);
  return rc;
}
int x_set_system_call(sqlite3_vfs* vfs, const char* name, sqlite3_syscall_ptr p) {
  sqlite3_vfs* u = under_of(vfs);
  return u->iVersion >= 3 && u->xSetSystemCall ? u->xSetSystemCall(u, name, p) : SQLITE_NOTFOUND;
}
sqlite3_syscall_ptr x_get_system_call(sqlite3_vfs* vfs, const char* name) {
  sqlite3_vfs* u = under_of(vfs);
  return u->iVersion >= 3 && u->xGetSystemCall ? u->xGetSystemCall(u, name) : nullptr;
}
const char* x_next_system_call(sqlite3_vfs* vfs, const char* name) {
  sqlite3_vfs* u = under_of(vfs);
  return u->iVersion >= 3 && u->xNextSystemCall ? u->xNextSystemCall(u, name) : nullptr;
}

// Registered VFSs must outlive every connection: they live as long as the
// process.
struct Registered {
  std::string name;
  sqlite3_vfs vfs{};
};

std::mutex g_registered_mutex;
std::deque<Registered> g_registered;  // GUARDED_BY(g_registered_mutex)

sqlite3_vfs* register_over(const char* name, sqlite3_vfs* under, bool make_default) {
  if (under == nullptr) return nullptr;
  std::lock_guard<std::mutex> lock(g_registered_mutex);
  Registered& r = g_registered.emplace_back();
  r.name = name;
  sqlite3_vfs& v = r.vfs;
  v.iVersion = 3;
  v.szOsFile = k_file_size + under->szOsFile;
  v.mxPathname = under->mxPathname;
  v.zName = r.name.c_str();
  v.pAppData = under;
  v.xOpen = x_open;
  v.xDelete = x_delete;
  v.xAccess = x_access;
  v.xFullPathname = x_full_pathname;
  v.xDlOpen = x_dl_open;
  v.xDlError = x_dl_error;
  v.xDlSym = x_dl_sym;
  v.xDlClose = x_dl_close;
  v.xRandomness = x_randomness;
  v.xSleep = x_sleep;
  v.xCurrentTime = x_current_time;
  v.xGetLastError = x_get_last_error;
  v.xCurrentTimeInt64 = x_current_time_int64;
  v.xSetSystemCall = x_set_system_call;
  v.xGetSystemCall = x_get_system_call;
  v.xNextSystemCall = x_next_system_call;
  if (sqlite3_vfs_register(&v, make_default ? 1 : 0) != SQLITE_OK) {
    g_registered.pop_back();
    return nullptr;
  }
  return &v;
}

}  // namespace

sqlite3_vfs* register_wal_batching_vfs(const char* name, sqlite3_vfs* under) {
  return register_over(name, under, false);
}

void install_wal_batching() {
  static std::once_flag once;
  std::call_once(once, [] {
    const char* mode = std::getenv("ASYNCOPS_WAL_WRITES");
    if (mode != nullptr && std::strcmp(mode, "direct") == 0) return;
    if (sqlite3_initialize() != SQLITE_OK) return;
    register_over("asyncops-wal-batching", sqlite3_vfs_find(nullptr), true);
  });
}

}  // namespace asyncops
