#pragma once
// ChangeHub: the committed changes of the last little while, in memory, so
// that waiters (?wait=N, Prefer: wait, the SSE streams) learn of a change
// without asking the store. The group-commit thread publishes; any thread
// subscribes. A subscription to one operation is woken only by changes to
// that operation, so a thousand watchers of a thousand operations cost one
// wake-up per change, not a thousand. Changes older than the ring holds are
// read from the store's history.
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "shared/mutex.h"
#include "store/store.h"

namespace asyncops {

struct Notice {
  int64_t seq = 0;  // history sequence number
  std::string op_id;
  std::string name;
  std::string owner;  // the principal that submitted it ("" without tokens)
  OpState state = OpState::pending;
  HistoryKind kind = HistoryKind::accepted;
  std::string step;     // a saga step's name for a step or compensation kind; "" for the operation's own
  std::string op_json;  // the operation's JSON after this change
  int64_t at = 0;       // ms since epoch
};

class ChangeHub {
 public:
  // The ring holds at most capacity notices and about max_bytes of them
  // (notice_bytes): a saga's document carries its steps, up to 16 of them,
  // so 16,384 notices could otherwise hold about 80 MB. What the ring drops
  // is read from the store.
  explicit ChangeHub(size_t capacity = 16384, size_t max_bytes = 32 << 20)
      : m_capacity(capacity), m_max_bytes(max_bytes) {}
  // What one notice counts against max_bytes.
  static size_t notice_bytes(const Notice& n);

  class Subscription {
   public:
    // Blocks until a change this subscription cares about was published
    // since the last wait, the deadline passes, or the hub shuts down.
    // Returns true when woken by a change.
    bool wait(std::chrono::steady_clock::time_point deadline);

   private:
    friend class ChangeHub;
    std::string m_op_id;  // "" for every operation
    std::function<void()> m_notify;  // set: called instead of waking wait()ers
    std::function<void(const Change*)> m_on_change;  // set: called instead of m_notify, with the change
    Mutex m_mutex;
    CondVar m_cv;
    bool m_signaled GUARDED_BY(m_mutex) = false;
    bool m_shutdown GUARDED_BY(m_mutex) = false;
  };

  // op_id "" subscribes to every change. The subscription ends when the
  // returned pointer is released (unsubscribe happens in its deleter).
  std::shared_ptr<Subscription> subscribe(const std::string& op_id);
  // The same, for an event loop: notify runs on the publishing thread (the
  // commit thread, or the caller of shutdown()) each time a change this
  // subscription cares about is published, with the hub's lock held. It
  // must only schedule work (post to a strand), never call into the hub.
  // After the returned pointer is released, notify is never called again.
  std::shared_ptr<Subscription> subscribe(const std::string& op_id, std::function<void()> notify);
  // The same for one operation (op_id not ""), with each of its changes:
  // on_change(&change) runs on the publishing thread under the hub's lock,
  // once per change in seq order, and on_change(nullptr) at shutdown. A
  // waiter that needs only the operation's end learns it, and the document,
  // without reading the store. The same rules as for notify apply.
  std::shared_ptr<Subscription> subscribe_changes(const std::string& op_id,
                                                  std::function<void(const Change*)> on_change);
  // The same, for a waiter that knows the operation as it was at seq
  // since (the committed change it answered from; 0: unknown). Sets
  // *unchanged to true when the hub had published no change to op_id after
  // since as the subscription began: every later change then reaches
  // on_change, so the waiter need not read the store to learn whether one
  // came in between. False when one had, or when the hub cannot tell (its
  // ring no longer holds, or never held, every change after since; or
  // since is 0). unchanged may be null.
  std::shared_ptr<Subscription> subscribe_changes(const std::string& op_id, int64_t since, bool* unchanged,
                                                  std::function<void(const Change*)> on_change);

  // Called by the group-commit thread after each commit, in seq order.
  void publish(const std::vector<Change>& changes);

  // Every change with seq <= floor happened before this process started (or
  // has left the ring) and must be read from the store. Set at start-up to
  // the store's latest history seq.
  void set_floor(int64_t seq);

  int64_t latest_seq() const;

  // Appends the notices with seq > after to out, at most max of them.
  // Returns false when the ring no longer holds all of them (the caller
  // must read the gap from the store).
  bool notices_after(int64_t after, std::vector<Notice>* out, size_t max = SIZE_MAX) const;

  void shutdown();
  bool is_shut_down() const;
  size_t subscribers() const;

 private:
  void unsubscribe(Subscription* s);
  static void signal(Subscription* s, bool shutdown, const Change* change = nullptr);
  // since and unchanged: see subscribe_changes.
  std::shared_ptr<Subscription> add(std::unique_ptr<Subscription> s, int64_t since = 0, bool* unchanged = nullptr);
  // Whether the ring shows a change to op_id after since, or cannot tell.
  bool changed_after(const std::string& op_id, int64_t since) const REQUIRES(m_mutex);

  const size_t m_capacity;
  const size_t m_max_bytes;
  // Taken before a Subscription's m_mutex (signal() runs under it).
  mutable Mutex m_mutex;
  std::deque<Notice> m_ring GUARDED_BY(m_mutex);
  size_t m_ring_bytes GUARDED_BY(m_mutex) = 0;  // notice_bytes of every notice in m_ring
  int64_t m_latest GUARDED_BY(m_mutex) = 0;
  int64_t m_floor GUARDED_BY(m_mutex) = 0;
  bool m_shutdown GUARDED_BY(m_mutex) = false;
  std::set<Subscription*> m_all GUARDED_BY(m_mutex);
  std::multimap<std::string, Subscription*> m_by_operation GUARDED_BY(m_mutex);
};


}  // namespace asyncops
