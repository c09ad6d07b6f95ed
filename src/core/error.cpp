// Invariant failures: print where and abort (a bug in tpro, never a user error).
#include "core/error.h"

#include <cstdio>
#include <cstdlib>

namespace tpro {

void check_failed(const char* expr, const char* file, int line, const std::string& msg) {
  std::fprintf(stderr, "tpro: internal check failed: %s at %s:%d %s\n", expr, file, line, msg.c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace tpro
