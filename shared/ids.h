#pragma once
#include <string>
#include <string_view>

namespace asyncops {

// A UUIDv7 (RFC 9562) in its canonical 36-character lower-case form. Ids are
// time-ordered: ids made later in one process compare greater as strings,
// because the 12 bits after the millisecond timestamp are a counter.
// Thread-safe.
std::string new_uuid_v7();

// True for the canonical 8-4-4-4-12 lower- or upper-case hex form.
bool is_uuid(std::string_view s);

}  // namespace asyncops
