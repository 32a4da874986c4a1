// Errors the engine raises on bad input. The binding maps `code` onto the JS error's `.code`; the engine
// never aborts or exits the process.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace tssl {

struct Error : std::runtime_error {
  std::string code;
  Error(std::string code_, const std::string& message) : std::runtime_error(message), code(std::move(code_)) {}
};

inline std::string shapeString(const std::vector<int64_t>& shape) {
  std::ostringstream s;
  s << "[";
  for (size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
  s << "]";
  return s.str();
}

template <typename... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream s;
  (s << ... << parts);
  return s.str();
}

}  // namespace tssl

#define TSSL_CHECK(cond, code, ...)                                      \
  do {                                                                   \
    if (!(cond)) throw ::tssl::Error(code, ::tssl::concat(__VA_ARGS__)); \
  } while (0)
