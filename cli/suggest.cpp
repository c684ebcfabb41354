#include "cli/suggest.h"

#include <algorithm>

namespace asyncops {
namespace {

size_t edit_distance(const std::string& a, const std::string& b) {
  // Optimal string alignment distance: insert, delete, substitute, swap.
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.size()][b.size()];
}

}  // namespace

std::string closest_name(const std::string& word, const std::vector<std::string>& candidates) {
  if (word.empty() || word.size() > 64) return "";
  std::string best;
  size_t best_d = word.size() <= 4 ? 1 : 2;
  for (const auto& c : candidates) {
    size_t d = edit_distance(word, c);
    if (d <= best_d && (best.empty() || d < best_d)) {
      best = c;
      best_d = d;
    }
  }
  if (!best.empty()) return best;
  for (const auto& c : candidates) {
    if (word.size() >= 2 && c.rfind(word, 0) == 0) return c;
  }
  return "";
}

}  // namespace asyncops
