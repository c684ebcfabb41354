#pragma once
// Base64url (RFC 4648 section 5) without padding: API tokens and the opaque
// list cursors.
#include <string>

#include "shared/result.h"

namespace asyncops {

// The unpadded base64url text of bytes.
std::string base64url_encode(const std::string& bytes);

// The bytes of unpadded base64url text; an error for any character outside
// the alphabet (padding included). Leftover bits of a partial last group
// are dropped, as encoders leave them zero.
Result<std::string> base64url_decode(const std::string& text);

}  // namespace asyncops
