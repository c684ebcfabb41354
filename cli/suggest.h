#pragma once
// "Did you mean …": the known name closest to a mistyped one.
#include <string>
#include <vector>

namespace asyncops {

// The candidate nearest to word by edit distance (an adjacent swap counts
// once), if it is close enough to be a typo: at most 1 edit for words of up
// to 4 letters, else 2; or a candidate that word is a prefix of. "" if none.
std::string closest_name(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace asyncops
