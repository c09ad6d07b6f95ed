// Helpers shared by every test binary, in namespace tpro::test (test files `using namespace
// tpro;` and keep their own helpers in an anonymous namespace). Error messages are asserted,
// not just that something failed: EXPECT_ERROR_HAS(statement, substring) for a part of the
// message, EXPECT_EQ(error_of(f), "...") for all of it. Plus a fresh scratch folder.
#pragma once
#include <cxxabi.h>
#include <gmock/gmock.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <typeinfo>

#include "core/error.h"

namespace tpro::test {

// The what() of the tpro::Error f throws, or "(no error)" when it returns normally.
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// What running f threw: a tpro::Error's message, or what happened instead.
struct Thrown {
  bool error = false;  // a tpro::Error (or a subclass) was thrown
  std::string what;    // its what(); otherwise a description of what happened
};

inline Thrown thrown_by(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return {true, e.what()};
  } catch (const std::exception& e) {
    int status = 0;
    char* name = abi::__cxa_demangle(typeid(e).name(), nullptr, nullptr, &status);
    Thrown t{false, std::string("threw ") + (name ? name : typeid(e).name()) + ", not a tpro::Error: " + e.what()};
    std::free(name);
    return t;
  } catch (...) {
    return {false, "threw something that is not a std::exception"};
  }
  return {false, "threw nothing"};
}

inline void PrintTo(const Thrown& t, std::ostream* os) { *os << (t.error ? "tpro::Error: " : "") << t.what; }

MATCHER_P(ErrorWith, substring,
          std::string(negation ? "not " : "") + "a tpro::Error whose message " +
              ::testing::DescribeMatcher<std::string>(::testing::HasSubstr(substring))) {
  return arg.error && ::testing::ExplainMatchResult(::testing::HasSubstr(substring), arg.what, result_listener);
}

// <tmp>/tpro_<name>_<pid>_<n>, new and empty: unique per process and per call.
inline std::filesystem::path fresh_dir(const std::string& name) {
  static std::atomic<int> counter{0};
  std::filesystem::path d = std::filesystem::temp_directory_path() /
                            ("tpro_" + name + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

}  // namespace tpro::test

// Expects `statement` to throw a tpro::Error whose what() contains `substring` (gmock
// HasSubstr); fails naming the statement and what happened when it throws nothing or another
// type. More context can be streamed: EXPECT_ERROR_HAS(f(), "bad") << "case " << i;
#define EXPECT_ERROR_HAS(statement, substring)                                                           \
  EXPECT_THAT(::tpro::test::thrown_by([&] { statement; }), ::tpro::test::ErrorWith(substring)) \
      << "statement: " #statement "; "
