#include "daemon/static_files.h"

namespace asyncops {

const StaticFile* find_static_file(const std::string& path) {
  for (const StaticFile* f = static_files_begin(); f != static_files_end(); ++f) {
    if (path == f->path) return f;
  }
  return nullptr;
}

}  // namespace asyncops
