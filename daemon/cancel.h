#pragma once
// Cancel as one decision (issue 17). The dispatcher alone knows whether a
// worker may have an operation's command, so it decides; the group
// committer stores the decision in one write; the HTTP reply is built from
// the store once that write is committed. No thread waits on another:
//
//   Gateway --cancel(id, done)--> Dispatcher thread: decides, hands the
//   decision to the committer, then tells the workers if it must
//   --> commit thread: one write --> done(stored) --> the reply (I/O thread)
#include <functional>
#include <string>

#include "shared/result.h"

namespace asyncops {

struct CancelDecision {
  enum class Kind {
    // A first attempt not sent yet was taken out of its queue: no worker
    // will see it, so it ends canceled in the same write that marks it.
    taken_back,
    // A worker may have it (sent, or an attempt waiting to be resent): it
    // is marked cancel-requested, a resend carries `cancel`, and the
    // workers are told; the worker that has it decides.
    notify_workers,
  };
  Kind kind = Kind::notify_workers;
  std::string op_id;
  // taken_back: the operation's command name, for its canceled event.
  std::string command;
};

// Called once, on the commit thread, with whether the decision was stored
// (an error when the commit failed or the daemon is stopping).
using CancelDone = std::function<void(Status stored)>;

}  // namespace asyncops
