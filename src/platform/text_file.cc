#include "tokenpool/text_file.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace tokenpool {

Result<std::string> ReadTextFile(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return NotFound(std::strerror(errno));
  if (S_ISDIR(st.st_mode)) return InvalidArgument("is a directory, not a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound(std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Internal(std::strerror(errno));
  return text.str();
}

}  // namespace tokenpool
