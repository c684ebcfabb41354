// Issue 15, the worker's side: it never publishes or records an outcome the
// daemon would refuse, and never runs a handler twice for an unreadable record.
#include <catch2/catch.hpp>

#include <SQLiteCpp/SQLiteCpp.h>

#include "shared/ids.h"
#include "store_fixture.h"
#include "workers/worker.h"
#include "command_of.h"

using namespace asyncops;
using namespace asyncops::test;

namespace {

// A service whose handler writes a row and answers with data nested depth deep.
struct DeepService {
  TempDir dir;
  Service svc;
  SQLite::Database db{dir.path + "/deep.db", SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE};
  int depth = 10;
  int runs = 0;
  DeepService() {
    svc.name = "deep";
    svc.init_schema = [](SQLite::Database& d) { d.exec("CREATE TABLE IF NOT EXISTS rows(id TEXT PRIMARY KEY)"); };
    svc.handlers["make"] = [this](const Command& c, ServiceDb& sdb) {
      ++runs;
      sdb.db().exec("INSERT INTO rows(id) VALUES ('" + c.id + "')");
      nlohmann::json data = nlohmann::json::array();
      nlohmann::json* inner = &data;
      for (int i = 1; i < depth; ++i) {
        inner->push_back(nlohmann::json::array());
        inner = &(*inner)[0];
      }
      return Outcome::completed("made", "/rows/" + c.id, std::move(data));
    };
    Worker::init_database(svc, db);
  }
  Command cmd() {
    return asyncops::test::command_of("make", "deep");
  }
  int rows() { return db.execAndGet("SELECT count(*) FROM rows").getInt(); }
};

}  // namespace

TEST_CASE("an outcome over the event limits is rolled back and reported failed/outcome_too_large", "[worker][limits]") {
  DeepService s;
  s.depth = 100000;
  Event e = Worker::handle(s.svc, s.db, s.cmd(), "w");
  CHECK(e.state == OpState::failed);
  CHECK(e.code == "outcome_too_large");
  CHECK(e.data.is_null());
  CHECK(s.rows() == 0);  // the effect was undone: the state told agrees with it
  CHECK(check_event_limits(e).ok());
}

TEST_CASE("an outcome within the limits is recorded and published as it is", "[worker][limits]") {
  DeepService s;
  s.depth = k_max_message_depth - 1;
  Event e = Worker::handle(s.svc, s.db, s.cmd(), "w");
  CHECK(e.state == OpState::completed);
  CHECK(s.rows() == 1);
}

TEST_CASE("an unreadable recorded outcome is not handled a second time", "[worker][limits]") {
  DeepService s;
  Command c = s.cmd();
  std::string deep = std::string(100000, '[') + std::string(100000, ']');
  SQLite::Statement put(s.db, "INSERT INTO handled(request_id, event, at) VALUES (?,?,0)");
  put.bind(1, c.id);
  put.bind(2, R"({"request_id":")" + c.id + R"(","state":"completed","data":)" + deep + "}");
  put.exec();
  Event e = Worker::handle(s.svc, s.db, c, "w");
  CHECK(e.state == OpState::failed);
  CHECK(e.code == "outcome_unreadable");
  CHECK(s.runs == 0);
  CHECK(s.rows() == 0);
}

TEST_CASE("a handler's over-long error message is cut to fit the event limits", "[worker][limits]") {
  DeepService s;
  s.svc.handlers["make"] = [](const Command&, ServiceDb&) -> Outcome {
    throw std::runtime_error(std::string(100000, 'e'));
  };
  Event e = Worker::handle(s.svc, s.db, s.cmd(), "w");
  CHECK(e.state == OpState::failed);
  CHECK(e.code == "handler_error");
  CHECK(e.message.size() <= k_max_message_bytes);
  CHECK(check_event_limits(e).ok());
}
