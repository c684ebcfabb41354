#pragma once
// The files the daemon serves itself (issue 12): the live console at /ui
// and the JavaScript client at /asyncops.js. Their sources live in ui/ and
// clients/js/; the build compiles them in (daemon/embed_static.cmake, the
// list in daemon/CMakeLists.txt), so nothing is read from disk or fetched
// at run time.
#include <cstddef>
#include <string>

namespace asyncops {

struct StaticFile {
  const char* path;          // the URL path, e.g. "/ui/app.js"
  const char* media_type;    // without parameters; text types are UTF-8
  const unsigned char* data;
  size_t size;
  const char* etag;          // a strong ETag (quoted) of the content
};

// The compiled-in files (generated).
const StaticFile* static_files_begin();
const StaticFile* static_files_end();

// The file served at path, or nullptr.
const StaticFile* find_static_file(const std::string& path);

}  // namespace asyncops
