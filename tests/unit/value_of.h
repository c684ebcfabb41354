#pragma once
// value_of(r): the value of a Result a test expects to succeed, after
// REQUIRE-ing that it did (a failure shows the error).
#include <utility>

#include <catch2/catch.hpp>

#include "shared/result.h"

namespace asyncops::test {

template <class T>
T value_of(Result<T> r) {
  INFO((r.ok() ? std::string() : r.error()));
  REQUIRE(r.ok());
  return std::move(r.value());
}

}  // namespace asyncops::test
