#include <catch2/catch.hpp>

#include "cli/exit_codes.h"
#include "cli/list_query.h"
#include "cli/op_ref.h"
#include "cli/suggest.h"
#include "cli/output.h"
#include "shared/clock.h"
#include "value_of.h"

using namespace asyncops;
using asyncops::test::value_of;

TEST_CASE("final states map to the documented exit codes", "[cli]") {
  CHECK(exit_code_for_state("completed") == 0);
  CHECK(exit_code_for_state("rejected") == 3);
  CHECK(exit_code_for_state("failed") == 4);
  CHECK(exit_code_for_state("canceled") == 4);
  CHECK(exit_code_for_state("pending") == 5);
}

TEST_CASE("relative times read like a person would say them", "[cli]") {
  CHECK(relative_time(format_rfc3339_ms(now_ms() - 5000)) == "5s ago");
  CHECK(relative_time(format_rfc3339_ms(now_ms() - 3 * 60000)) == "3m ago");
  CHECK(relative_time(format_rfc3339_ms(now_ms() - 2 * 3600000)) == "2h ago");
  CHECK(relative_time(format_rfc3339_ms(now_ms() - 4 * 86400000LL)) == "4d ago");
  CHECK(relative_time("garbage").empty());
}

TEST_CASE("json output never carries colour", "[cli]") {
  Output o = Output::resolve("json", false);
  CHECK(o.format == OutputFormat::json);
  CHECK_FALSE(o.color);
  CHECK(o.state("completed") == "completed");
  CHECK(Output::resolve("", true).format == OutputFormat::json);
  CHECK(Output::resolve("jsonl", false).format == OutputFormat::jsonl);
}

TEST_CASE("list: the next-page command keeps the filters, quoted for the shell", "[cli]") {
  ListOptions o;
  o.state = "rejected";
  o.name = "create_user";
  o.since = "2h";
  o.limit = 1;
  CHECK(next_page_command({"--url", "http://127.0.0.1:9/"}, o, "bzoxMg") ==
        "asyncops --url http://127.0.0.1:9/ list --state rejected --name create_user --since 2h --limit 1 --cursor bzoxMg");
  o.name = "it's";
  CHECK(next_page_command({}, o, "c").find("--name 'it'\\''s'") != std::string::npos);
  CHECK(shell_quote("") == "''");
  CHECK(list_query(o, "2024-01-01T00:00:00Z", "", "c") ==
        "?limit=1&state=rejected&name=it%27s&since=2024-01-01T00%3A00%3A00Z&cursor=c");
}

TEST_CASE("list: --until, --code, --owner and --resource go into the query and the next-page command", "[cli]") {
  ListOptions o;
  o.until = "10m";
  o.code = "email_in_use";
  o.owner = "alice";
  o.resource = "/users/";
  o.limit = 5;
  CHECK(list_query(o, "", "2024-01-01T00:00:00Z", "") ==
        "?limit=5&until=2024-01-01T00%3A00%3A00Z&code=email_in_use&owner=alice&resource=%2Fusers%2F");
  CHECK(next_page_command({}, o, "c") ==
        "asyncops list --until 10m --code email_in_use --owner alice --resource /users/ --limit 5 --cursor c");
  auto t = resolve_time("--until", "soon", 0);
  REQUIRE_FALSE(t);
  CHECK(t.error().rfind("--until soon: expected", 0) == 0);
}

TEST_CASE("list --since takes a duration back from now or an RFC 3339 time", "[cli]") {
  int64_t now = 1700000000000;
  CHECK(value_of(resolve_since("2h", now)) == format_rfc3339_ms(now - 2 * 3600000));
  CHECK(value_of(resolve_since("2024-11-27T07:00:00Z", now)) == "2024-11-27T07:00:00Z");
  CHECK(value_of(resolve_since("", now)).empty());
  auto t = resolve_since("yesterday", now);
  REQUIRE_FALSE(t);
  CHECK(t.error().find("duration like") != std::string::npos);
}

TEST_CASE("operation references: the id inside X-Operation, Location and paths", "[cli]") {
  std::string id = "0190c3e2-7a1b-7c3d-8e4f-5a6b7c8d9e0f";
  CHECK(op_ref_text(id) == id);
  CHECK(op_ref_text("/operations/" + id) == id);
  CHECK(op_ref_text("http://127.0.0.1:8080/operations/" + id) == id);
  CHECK(op_ref_text("https://ops.example.com/operations/" + id + "/events?x=1") == id);
  CHECK(op_ref_text("operations/" + id + "/") == id);
  CHECK(op_ref_text("0190c3") == "0190c3");
  CHECK(uuid_prefix_min_ms("0190c3e2-7a1b") == 0x0190c3e27a1bLL);
  CHECK(uuid_prefix_min_ms("0190") == 0x019000000000LL);
  CHECK(uuid_prefix_min_ms("zz") == -1);
}

TEST_CASE("did you mean: the closest command name, only when it is a likely typo", "[cli]") {
  std::vector<std::string> names = {"up", "submit", "get", "list", "watch", "tail", "cancel", "workers", "store"};
  CHECK(closest_name("lsit", names) == "list");
  CHECK(closest_name("sumbit", names) == "submit");
  CHECK(closest_name("wokers", names) == "workers");
  CHECK(closest_name("canc", names) == "cancel");
  CHECK(closest_name("frobnicate", names).empty());
  CHECK(closest_name("", names).empty());
}

TEST_CASE("list table: ids shortened as git does, fitted to the terminal, deletes show what they deleted", "[cli]") {
  CHECK(unique_prefix_length({"0190c3e2-7a1b-7c3d", "0190c3e2-7a1c-7c3d"}, 8) == 13);
  CHECK(unique_prefix_length({"0190c3e2-7a1b", "0290c3e2-7a1b"}, 8) == 8);
  CHECK(unique_prefix_length({"0190c3e2-7a1b", "0190c3e3-7a1b"}, 8) == 8);
  CHECK(unique_prefix_length({"0190c3e2-7a1b", "0190c3e2-8a1b"}, 8) == 10);
  CHECK(unique_prefix_length({"0190c3e2-7a1b", "0190c3e3-7a1b"}, 9) == 10);  // not ending on the dash
  nlohmann::json items = nlohmann::json::array();
  std::string created = format_rfc3339_ms(now_ms());
  items.push_back({{"id", "0190c3e2-7a1b-7c3d-8e4f-5a6b7c8d9e0f"}, {"name", "delete_user"}, {"state", "completed"},
                   {"code", nullptr}, {"resource", ""}, {"origin", "DELETE /users/0190c3e2-0000-7000-8000-000000000001"},
                   {"created_at", created}});
  items.push_back({{"id", "0190c3e2-7a1c-7c3d-8e4f-5a6b7c8d9e0f"}, {"name", "create_user_with_a_long_name"},
                   {"state", "rejected"}, {"code", "email_in_use"},
                   {"resource", "/users/0190c3e2-0000-7000-8000-000000000002"}, {"origin", "POST /users"},
                   {"created_at", created}});
  Output wide;
  auto full = operations_table(items, wide);
  REQUIRE(full.size() == 3);
  CHECK(full[1].rfind("0190c3e2-7a1b-7c3d-8e4f-5a6b7c8d9e0f  delete_user", 0) == 0);
  CHECK(full[1].find("/users/0190c3e2-0000-7000-8000-000000000001") != std::string::npos);
  Output tty;
  tty.width = 80;
  tty.short_ids = true;
  for (const auto& line : operations_table(items, tty)) {
    INFO(line);
    size_t cols = 0;
    for (unsigned char c : line) cols += (c & 0xC0) != 0x80;
    CHECK(cols <= 80);
  }
  CHECK(operations_table(items, tty)[1].rfind("0190c3e2-7a1b  ", 0) == 0);
}

namespace {

// A saga's document as GET /operations/{id} shows it (docs/design/sagas.md §7).
nlohmann::json saga_doc() {
  return nlohmann::json::parse(R"({
    "id": "0190c3e2-7a1b-7c3d-8e4f-5a6b7c8d9e0f", "name": "place_order", "state": "rejected",
    "code": "card_declined", "message": "step charge: insufficient funds",
    "updated_at": "2026-11-30T01:02:03.400Z",
    "steps": [
      {"name": "reserve", "service": "inventory", "command": "reserve_stock", "state": "completed",
       "code": "success", "message": null, "attempt": 1, "started_at": null, "ended_at": null,
       "compensation": {"command": "release_stock", "state": "completed", "code": "success", "message": null,
                        "attempt": 1, "started_at": null, "ended_at": null}},
      {"name": "charge", "service": "payments", "command": "charge_card", "state": "rejected",
       "code": "card_declined", "message": "insufficient funds", "attempt": 2, "started_at": null,
       "ended_at": null, "compensation": {"command": "refund_card", "state": "none", "code": null,
                                          "message": null, "attempt": 0, "started_at": null, "ended_at": null}},
      {"name": "create", "service": "orders", "command": "create_order", "state": "skipped", "code": null,
       "message": null, "attempt": 0, "started_at": null, "ended_at": null, "compensation": null}]})");
}

}  // namespace

TEST_CASE("get: a saga's steps table shows each step and its compensation", "[cli][saga]") {
  Output plain;
  auto lines = steps_table(saga_doc()["steps"], plain);
  REQUIRE(lines.size() == 4);
  CHECK(lines[0] == "  STEP     SERVICE    STATE      CODE           ATTEMPT  COMPENSATION");
  CHECK(lines[1] == "  reserve  inventory  completed  success        1        completed");
  CHECK(lines[2] == "  charge   payments   rejected   card_declined  2        none");
  CHECK(lines[3] == "  create   orders     skipped                   0        -");
  // A failed compensation says why.
  auto doc = saga_doc();
  doc["steps"][0]["compensation"]["state"] = "failed";
  doc["steps"][0]["compensation"]["code"] = "worker_timeout";
  CHECK(steps_table(doc["steps"], plain)[1].find("failed (worker_timeout)") != std::string::npos);
  // A plain operation has no table.
  CHECK(steps_table(nlohmann::json(), plain).empty());
  CHECK(steps_table(nlohmann::json::array(), plain).empty());
  // Colour does not shift the columns.
  Output coloured;
  coloured.color = true;
  auto tinted = steps_table(saga_doc()["steps"], coloured);
  REQUIRE(tinted.size() == 4);
  CHECK(tinted[1].find("\x1b[32mcompleted\x1b[0m  success") != std::string::npos);
  CHECK(tinted[3].find("\x1b[2mskipped\x1b[0m                   0") != std::string::npos);
}

TEST_CASE("watch: a plain operation prints one line per pushed document", "[cli]") {
  Output plain;
  nlohmann::json op = {{"state", "processing"}, {"code", nullptr}, {"updated_at", "2026-11-30T07:20:10.433Z"}};
  CHECK(watch_lines(nullptr, op, plain) == std::vector<std::string>{"07:20:10.433  processing"});
  CHECK(watch_lines(op, op, plain) == std::vector<std::string>{"07:20:10.433  processing"});  // as before sagas
  nlohmann::json done = {{"state", "rejected"}, {"code", "email_in_use"}, {"message", "taken"},
                         {"updated_at", "2026-11-30T07:20:11.000Z"}};
  CHECK(watch_lines(op, done, plain) == std::vector<std::string>{"07:20:11.000  rejected  email_in_use  taken"});
}

TEST_CASE("watch: a saga prints one line per step change, found by comparing the documents", "[cli][saga]") {
  Output plain;
  nlohmann::json final_doc = saga_doc();
  // The first document shows every step that has started.
  auto first = watch_lines(nullptr, final_doc, plain);
  CHECK(first == std::vector<std::string>{
                     "01:02:03.400  rejected  card_declined  step charge: insufficient funds",
                     "01:02:03.400    reserve  completed  success",
                     "01:02:03.400    reserve  compensation completed  success",
                     "01:02:03.400    charge  rejected  card_declined  insufficient funds  (attempt 2)",
                     "01:02:03.400    create  skipped"});
  // A repeated document prints nothing (a resumed stream, a duplicate).
  CHECK(watch_lines(final_doc, final_doc, plain).empty());

  // One step's change while the operation stays processing: only its line.
  nlohmann::json before = saga_doc();
  before["state"] = "processing";
  before["code"] = nullptr;
  before["message"] = nullptr;
  before["steps"][1]["state"] = "processing";
  before["steps"][1]["code"] = nullptr;
  before["steps"][1]["message"] = nullptr;
  before["steps"][0]["compensation"]["state"] = "none";
  before["steps"][0]["compensation"]["code"] = nullptr;
  before["steps"][0]["compensation"]["attempt"] = 0;
  before["steps"][2]["state"] = "waiting";
  nlohmann::json after = before;
  after["steps"][1]["state"] = "rejected";
  after["steps"][1]["code"] = "card_declined";
  after["steps"][1]["attempt"] = 1;
  before["steps"][1]["attempt"] = 1;
  CHECK(watch_lines(before, after, plain) == std::vector<std::string>{"01:02:03.400    charge  rejected  card_declined"});
  // The unwind: a waiting step skipped, a compensation dispatched.
  nlohmann::json unwinding = after;
  unwinding["steps"][2]["state"] = "skipped";
  unwinding["steps"][0]["compensation"]["state"] = "pending";
  unwinding["steps"][0]["compensation"]["attempt"] = 1;
  CHECK(watch_lines(after, unwinding, plain) ==
        std::vector<std::string>{"01:02:03.400    reserve  compensation pending", "01:02:03.400    create  skipped"});
  // A redelivery shows its attempt.
  nlohmann::json again = unwinding;
  again["steps"][0]["compensation"]["attempt"] = 2;
  CHECK(watch_lines(unwinding, again, plain) ==
        std::vector<std::string>{"01:02:03.400    reserve  compensation pending  (attempt 2)"});
  // Garbage in the steps is skipped, never a crash.
  nlohmann::json odd = after;
  odd["steps"] = nlohmann::json::array({1, "x", nullptr, {{"name", 3}}});
  CHECK_NOTHROW(watch_lines(after, odd, plain));
}
