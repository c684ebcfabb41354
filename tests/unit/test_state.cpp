// shared/state.h: the one table of state names.
#include <catch2/catch.hpp>

#include "shared/state.h"

using namespace asyncops;

TEST_CASE("every state's name parses back to it", "[state]") {
  for (const StateName& n : k_state_names) {
    CHECK(std::string(to_string(n.state)) == n.name);
    CHECK(parse_state(n.name) == n.state);
  }
  CHECK_FALSE(parse_state("Pending"));
  CHECK_FALSE(parse_state(""));
  CHECK_FALSE(parse_state("unknown"));
}

TEST_CASE("state names are listed in lifecycle order", "[state]") {
  CHECK(state_names() ==
        std::vector<std::string>{"pending", "processing", "completed", "rejected", "failed", "canceled"});
  CHECK(state_names_text() == "pending, processing, completed, rejected, failed, canceled");
}

TEST_CASE("only pending and processing are unfinished", "[state]") {
  CHECK_FALSE(is_terminal(OpState::pending));
  CHECK_FALSE(is_terminal(OpState::processing));
  for (OpState s : {OpState::completed, OpState::rejected, OpState::failed, OpState::canceled}) CHECK(is_terminal(s));
}
