#pragma once
// Writes url and a newline to path through a temp file and a rename, so that
// a script polling for the file never reads half of it (the bench servers'
// --url-file).
#include <cstdio>
#include <fstream>
#include <string>

inline void write_url_file(const std::string& path, const std::string& url) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << url << "\n";
  }
  std::rename(tmp.c_str(), path.c_str());
}
