#pragma once
// Atomic writes: write to `path.tmp`, fsync, rename. A file is complete or absent, never half-written.
#include <string>

namespace handoff {

void write_file_atomic(const std::string& path, const std::string& bytes);
std::string read_file(const std::string& path);  // throws Error naming the path
bool file_exists(const std::string& path);
void make_dirs(const std::string& path);

}  // namespace handoff
