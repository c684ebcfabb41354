// Stream tickets (issue 12): single use, 60 s, bounded.
#include <catch2/catch.hpp>

#include "daemon/tickets.h"

using namespace asyncops;

TEST_CASE("a ticket redeems once, to the principal and role it was issued for", "[tickets]") {
  TicketBook book;
  auto t = book.issue({"ann", "reader"});
  REQUIRE(t);
  CHECK(t->rfind("aotk_", 0) == 0);
  CHECK(t->size() == 5 + 43);
  CHECK(book.outstanding() == 1);
  auto g = book.redeem(*t);
  REQUIRE(g);
  CHECK(g->principal == "ann");
  CHECK(g->role == "reader");
  CHECK_FALSE(book.redeem(*t));
  CHECK(book.outstanding() == 0);
  CHECK_FALSE(book.redeem("aotk_forged"));
  CHECK_FALSE(book.redeem(std::string(4096, 'x')));
}

TEST_CASE("a ticket is valid for 60 s and no longer", "[tickets]") {
  TicketBook book;
  auto now = TicketBook::Clock::now();
  auto a = book.issue({"ann", "submitter"}, now);
  auto b = book.issue({"ann", "submitter"}, now);
  REQUIRE(a);
  REQUIRE(b);
  CHECK(*a != *b);
  CHECK(book.redeem(*a, now + std::chrono::seconds(59)));
  CHECK_FALSE(book.redeem(*b, now + std::chrono::seconds(60)));
}

TEST_CASE("outstanding tickets are bounded: expired ones make room", "[tickets]") {
  TicketBook book;
  auto now = TicketBook::Clock::now();
  for (size_t i = 0; i < TicketBook::k_max_outstanding; ++i) REQUIRE(book.issue({"ann", "reader"}, now));
  CHECK_FALSE(book.issue({"ann", "reader"}, now + std::chrono::seconds(1)));
  CHECK(book.issue({"ann", "reader"}, now + std::chrono::seconds(61)));
  CHECK(book.outstanding() == 1);
}
