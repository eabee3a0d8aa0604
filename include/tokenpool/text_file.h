#pragma once
// ReadTextFile: a whole file's bytes, for the CLIs' and the gateway's inputs (configs,
// scenarios, traces). Lives in the platform library: the pure core reads no files.

#include <string>

#include "tokenpool/status.h"

namespace tokenpool {

// The bytes of the regular file at `path`. On failure the status's message says why, without
// the path (the caller names the file and its role): "is a directory, not a file", or the
// system's reason ("No such file or directory", "Permission denied"). An ifstream opened on a
// directory reads nothing: configs and scenarios were reported "empty".
Result<std::string> ReadTextFile(const std::string& path);

}  // namespace tokenpool
