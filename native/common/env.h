// Process switches read from the environment: TORCH_SSL_<NAME>=0 turns a kernel path off (docs/threads.md lists them).
#pragma once
#include <cstdlib>
#include <cstring>

namespace tssl {

/// Whether the environment variable `name` is set to exactly "0".
inline bool switchedOff(const char* name) {
  const char* v = std::getenv(name);
  return v && std::strcmp(v, "0") == 0;
}

}  // namespace tssl
