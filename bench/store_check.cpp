// asyncops-bench-store-check: what the integrity check at start costs
// (issue 15): asyncopsd runs PRAGMA quick_check (check_store) before it
// serves a store after an unclean stop. This fills a store like the
// daemon's own writer does, then times check_store on it.
//
//   asyncops-bench-store-check --dir DIR [--ops 1000000] [--runs 3]
//
// DIR/asyncops.db is filled to --ops operations if it holds fewer (each
// created, dispatched and completed, with its history and a resource, as
// POST /users leaves them), in transactions of 10,000. Then, --runs times:
// the file is dropped from the page cache (fdatasync, then
// posix_fadvise DONTNEED on the store alone, so other processes keep
// theirs) and check_store is timed cold; then once more warm. Prints one
// JSON object: ops, store_bytes, cold_ms (each run), warm_ms.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "store/sqlite_store.h"
#include "daemon/store_health.h"
#include "store/sqlite_health.h"
#include "shared/clock.h"
#include "shared/ids.h"

using namespace asyncops;
using Clock = std::chrono::steady_clock;

namespace {

// The newest operation's seq: the count of a store nothing was pruned from.
int64_t count_ops(const std::string& path) {
  if (auto init = init_store(path, SyncMode::normal); !init) {
    std::cerr << init.error() << "\n";
    std::exit(1);
  }
  auto r = SqliteStoreReader::open(path);
  OperationFilter f;
  f.limit = 1;
  auto newest = r.value()->list_operations(f);
  return newest.empty() ? 0 : newest.front().seq;
}

void fill(const std::string& path, int64_t from, int64_t to) {
  auto w = std::move(SqliteStoreWriter::open(path, SyncMode::normal).value());
  const int64_t batch = 10000;
  auto started = Clock::now();
  for (int64_t done = from; done < to;) {
    w->begin();
    int64_t now = now_ms();
    for (int64_t i = 0; i < batch && done < to; ++i, ++done) {
      OperationRecord op;
      op.id = new_uuid_v7();
      std::string user = new_uuid_v7();
      op.name = "create_user";
      op.service = "users";
      op.origin = "POST /users";
      op.resource = "/users/" + user;
      op.params = {{"id", user}};
      op.payload = {{"email", "user" + std::to_string(done) + "@example.com"}, {"name", "User " + std::to_string(done)}};
      op.created_at = op.updated_at = now;
      w->insert_operation(&op);
      Change c;
      w->apply_dispatched(op.id, 1, now, &c);
      Event e;
      e.request_id = op.id;
      e.type = "user_created";
      e.state = OpState::completed;
      e.code = "success";
      e.resource = op.resource;
      e.data = {{"id", user}, {"email", op.payload["email"]}, {"name", op.payload["name"]}};
      e.worker = "bench";
      w->apply_event(e, now, &c);
    }
    w->commit();
    if (done % 100000 == 0) {
      std::cerr << "filled " << done << " in "
                << std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - started).count() << " s\n";
    }
  }
}

void drop_from_cache(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return;
  ::fdatasync(fd);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
}

double time_check(const std::string& path) {
  auto t0 = Clock::now();
  auto r = check_store(path);
  double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  if (!r) {
    std::cerr << "check failed: " << r.error() << "\n";
    std::exit(1);
  }
  return ms;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  int64_t ops = 1000000;
  int runs = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--dir") dir = argv[i + 1];
    else if (a == "--ops") ops = std::atoll(argv[i + 1]);
    else if (a == "--runs") runs = std::atoi(argv[i + 1]);
  }
  if (dir.empty()) {
    std::cerr << "usage: asyncops-bench-store-check --dir DIR [--ops N] [--runs N]\n";
    return 2;
  }
  std::string path = dir + "/asyncops.db";
  int64_t have = count_ops(path);
  if (have < ops) fill(path, have, ops);  // closing the writer copies the WAL back
  struct stat st {};
  ::stat(path.c_str(), &st);
  nlohmann::json out = {{"ops", std::max(have, ops)}, {"store_bytes", st.st_size}};
  nlohmann::json cold = nlohmann::json::array();
  for (int i = 0; i < runs; ++i) {
    drop_from_cache(path);
    cold.push_back(static_cast<int64_t>(time_check(path)));
  }
  out["cold_ms"] = cold;
  out["warm_ms"] = static_cast<int64_t>(time_check(path));
  std::cout << out.dump() << std::endl;
  return 0;
}
