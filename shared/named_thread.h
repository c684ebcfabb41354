#pragma once
// The start of the daemon's own threads (commit, prune, dispatch, tracker):
// each runs one loop under a name that top -H and perf show.
#include <thread>
#include <utility>

#include "shared/log.h"

namespace asyncops {

// A thread that names itself name (at most 15 characters show), then runs body.
template <class Body>
std::thread named_thread(const char* name, Body body) {
  return std::thread([name, body = std::move(body)]() mutable {
    name_this_thread(name);
    body();
  });
}

}  // namespace asyncops
