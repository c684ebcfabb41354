// shared/base64url.h: the one base64url of tokens and list cursors.
#include <catch2/catch.hpp>

#include <vector>

#include "shared/base64url.h"

using namespace asyncops;

TEST_CASE("base64url encodes the RFC 4648 test vectors, unpadded, with - and _", "[base64url]") {
  CHECK(base64url_encode("") == "");
  CHECK(base64url_encode("f") == "Zg");
  CHECK(base64url_encode("fo") == "Zm8");
  CHECK(base64url_encode("foo") == "Zm9v");
  CHECK(base64url_encode("foob") == "Zm9vYg");
  CHECK(base64url_encode("fooba") == "Zm9vYmE");
  CHECK(base64url_encode("foobar") == "Zm9vYmFy");
  CHECK(base64url_encode("\xfb\xff\xbf") == "-_-_");
}

TEST_CASE("base64url decodes what it encodes, every byte value included", "[base64url]") {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  for (size_t n = 0; n <= all.size(); n += 37) {
    auto back = base64url_decode(base64url_encode(all.substr(0, n)));
    REQUIRE(back);
    CHECK(back.value() == all.substr(0, n));
  }
}

TEST_CASE("base64url refuses characters outside its alphabet, padding and NUL included", "[base64url]") {
  for (const std::string& bad : std::vector<std::string>{"Zg==", "Zm9v+", "Zm9v/", "Zm 9v", std::string("Zm\0v", 4)}) {
    CHECK_FALSE(base64url_decode(bad));
  }
}
