#pragma once
// A store in a fresh temp dir, removed afterwards.
#include <stdlib.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "store/sqlite_store.h"
#include "shared/clock.h"
#include "shared/ids.h"

namespace asyncops::test {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/asyncops-unit-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
};

inline OperationRecord new_op(const std::string& name = "create_user") {
  OperationRecord op;
  op.id = new_uuid_v7();
  op.name = name;
  op.service = "users";
  op.origin = "POST /users";
  op.resource = "/users/" + new_uuid_v7();
  op.params = {{"id", op.resource.substr(7)}};
  op.payload = {{"email", "a@example.com"}, {"name", "A"}};
  op.created_at = op.updated_at = now_ms();
  return op;
}

inline Event event_for(const OperationRecord& op, OpState state, const std::string& code = "") {
  Event e;
  e.request_id = op.id;
  e.state = state;
  e.code = code;
  e.type = "t";
  e.resource = op.resource;
  return e;
}

}  // namespace asyncops::test
