// Writes the browser tests' fixture folder (see tests/server/fixture_folders.h):
//   tpro_serve_fixture <dir>
#include <cstdio>

#include "server/fixture_folders.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <dir>\n", argv[0]);
    return 2;
  }
  try {
    tpro::test::write_serve_fixture(argv[1]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tpro_serve_fixture: %s\n", e.what());
    return 1;
  }
  return 0;
}
