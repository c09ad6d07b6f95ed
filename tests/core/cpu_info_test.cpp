// The default thread count: physical cores counted from /proc/cpuinfo's text (hyperthread
// siblings share a core id, sockets are told apart by physical id, texts without core ids fall
// back to the processor count), and the count this machine gets.
#include <gtest/gtest.h>
#include <omp.h>

#include <cstdlib>
#include <string>

#include "core/cpu_info.h"

using namespace tpro;

namespace {
// One processor block of /proc/cpuinfo.
std::string proc(int n, int package, int core) {
  return "processor\t: " + std::to_string(n) + "\nmodel name\t: Test CPU\nphysical id\t: " + std::to_string(package) +
         "\nsiblings\t: 4\ncore id\t\t: " + std::to_string(core) + "\ncpu cores\t: 2\n\n";
}
}  // namespace

TEST(CpuInfo, CountsPhysicalCoresNotHyperthreads) {
  // 2 cores x 2 hyperthreads: processors 0/2 and 1/3 are siblings.
  EXPECT_EQ(parse_physical_cores(proc(0, 0, 0) + proc(1, 0, 1) + proc(2, 0, 0) + proc(3, 0, 1)), 2);
  // No hyperthreads: one processor per core.
  EXPECT_EQ(parse_physical_cores(proc(0, 0, 0) + proc(1, 0, 1)), 2);
}

TEST(CpuInfo, TellsSocketsApart) {
  // Two sockets whose cores are both numbered 0 and 1.
  EXPECT_EQ(parse_physical_cores(proc(0, 0, 0) + proc(1, 0, 1) + proc(2, 1, 0) + proc(3, 1, 1)), 4);
}

TEST(CpuInfo, FallsBackToProcessorsWithoutCoreIds) {
  EXPECT_EQ(parse_physical_cores("processor\t: 0\nBogoMIPS\t: 50.00\n\nprocessor\t: 1\nBogoMIPS\t: 50.00\n\n"
                                 "processor\t: 2\n\n"),
            3);
  // One processor lacking its core id is enough to distrust the others.
  EXPECT_EQ(parse_physical_cores(proc(0, 0, 0) + proc(1, 0, 0) + "processor\t: 2\n\n"), 3);
  EXPECT_EQ(parse_physical_cores(""), 0);
  EXPECT_EQ(parse_physical_cores("garbage\nmore: garbage\n"), 0);
  // A key that only starts like "core id" is not it.
  EXPECT_EQ(parse_physical_cores("processor : 0\ncore ids : 7\n\nprocessor : 1\ncore ids : 7\n"), 2);
}

TEST(CpuInfo, DefaultIsAtLeastOneAndAtMostTheProcessors) {
  const int64_t n = default_thread_count();
  EXPECT_GE(n, 1);
  EXPECT_LE(n, 1 << 16);
}

TEST(CpuInfo, AppliesTheCountOrLeavesOmpNumThreads) {
  const int before = omp_get_max_threads();
  EXPECT_EQ(apply_thread_count(3), 3);
  EXPECT_EQ(omp_get_max_threads(), 3);
  const char* env = std::getenv("OMP_NUM_THREADS");
  const std::string saved = env ? env : "";
  unsetenv("OMP_NUM_THREADS");
  EXPECT_EQ(apply_thread_count(0), default_thread_count());
  EXPECT_EQ(omp_get_max_threads(), default_thread_count());
  setenv("OMP_NUM_THREADS", "5", 1);
  omp_set_num_threads(7);
  EXPECT_EQ(apply_thread_count(0), 0) << "OMP_NUM_THREADS is the user's choice";
  EXPECT_EQ(omp_get_max_threads(), 7) << "left as it was";
  EXPECT_EQ(apply_thread_count(2), 2) << "an explicit count wins over the environment";
  if (env) setenv("OMP_NUM_THREADS", saved.c_str(), 1);
  else unsetenv("OMP_NUM_THREADS");
  omp_set_num_threads(before);
}
