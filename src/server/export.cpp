// Export jobs; see export.h. A merge into a folder fills "<out>.tmp-<pid>" and renames it over
// <out>; files go through AtomicFileWriter (temp file, rename). A zip reads each file twice,
// once for its CRC-32 and once to copy it, so nothing is held in memory but one chunk.
#include "server/export.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "core/crc32.h"
#include "core/error.h"
#include "core/file.h"
#include "formats/adapter_convert.h"
#include "io/zip_writer.h"
#include "train/merge_export.h"

namespace tpro {

namespace fs = std::filesystem;
using nlohmann::json;

const char* export_kind_name(ExportKind k) {
  switch (k) {
    case ExportKind::MergeHf: return "merge";
    case ExportKind::MergeGguf: return "merge_gguf";
    case ExportKind::AdapterGguf: return "adapter_gguf";
    case ExportKind::Zip: return "zip";
  }
  return "?";
}

namespace {

struct ZipFile {
  fs::path path;
  std::string name;  // inside the archive: relative to the adapter folder
  uint64_t size = 0;
  std::time_t mtime = 0;
};

bool is_temp_name(const std::string& name) {
  return name == kFolderLockName || name.find(".tmp-") != std::string::npos;
}

// Regular files of the adapter folder, in name order: its own, runs/ (TensorBoard) and, when
// asked, checkpoint-*/; links, lock and temp files are left out (a link's target may change).
std::vector<ZipFile> zip_members(const fs::path& dir, bool checkpoints) {
  std::vector<ZipFile> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const fs::path rel = it->path().lexically_relative(dir);
    const std::string top = rel.begin()->string();
    if (it->is_symlink(ec) || is_temp_name(it->path().filename().string())) {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    if (it->is_directory(ec)) {
      const bool ck = top.rfind("checkpoint-", 0) == 0;
      if (it.depth() >= 2 || (ck && !checkpoints)) it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file(ec)) continue;
    if (out.size() >= kMaxZipEntries)
      fail(dir.string(), " holds more than ", kMaxZipEntries, " files; a zip export stops there (hint: leave the ",
           "checkpoints out, or archive the folder with another tool)");
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0) fail("cannot stat ", it->path().string());
    out.push_back({it->path(), rel.generic_string(), uint64_t(st.st_size), st.st_mtime});
  }
  if (ec) fail("cannot list ", dir.string(), ": ", ec.message());
  std::sort(out.begin(), out.end(), [](const ZipFile& a, const ZipFile& b) { return a.name < b.name; });
  return out;
}

// Reads the file in chunks (no link followed), calling f(bytes, n); returns the bytes read.
template <typename F>
uint64_t for_each_chunk(const ZipFile& z, std::vector<char>& buf, F f) {
  const int fd = ::open(z.path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) fail("cannot open ", z.path.string(), " for the zip");
  uint64_t total = 0;
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      ::close(fd);
      fail("cannot read ", z.path.string(), " for the zip");
    }
    if (n == 0) break;
    total += uint64_t(n);
    try {
      f(buf.data(), size_t(n));
    } catch (...) {
      ::close(fd);
      throw;
    }
  }
  ::close(fd);
  return total;
}

json run_zip(const ExportJob& job, const ExportProgress& progress) {
  const std::vector<ZipFile> files = zip_members(job.lora, job.include_checkpoints);
  if (files.empty()) fail(job.lora.string(), " holds no files to archive");
  int64_t total = 0, done = 0;
  for (const ZipFile& f : files) total += int64_t(f.size) * 2;  // checksummed, then copied
  std::vector<char> buf(kZipChunk);
  AtomicFileWriter w(job.out);
  ZipStoredWriter zip([&](const void* p, size_t n) { w.write(p, n); });
  for (const ZipFile& f : files) {
    progress(done, total, cat("checksumming ", f.name));
    uint32_t crc = 0;
    const uint64_t n = for_each_chunk(f, buf, [&](const char* p, size_t k) {
      crc = crc32_update(crc, p, k);
      done += int64_t(k);
      progress(done, total, cat("checksumming ", f.name));
    });
    zip.begin_entry(f.name, n, crc, f.mtime);
    for_each_chunk(f, buf, [&](const char* p, size_t k) {
      zip.write(p, k);
      done += int64_t(k);
      progress(done, total, cat("writing ", f.name));
    });
  }
  zip.finish();
  w.commit();
  return {{"files", files.size()}, {"bytes", zip.bytes_written()}};
}

json run_merge(const ExportJob& job, const ExportProgress& progress) {
  const bool gguf = job.kind == ExportKind::MergeGguf;
  auto stage = [&](int done, int total, const std::string& what) { progress(done, total, what); };
  if (gguf) {
    const MergeExportResult r = merge_export({job.model, job.lora, job.out, job.dtype, true, "cpu"}, stage);
    return {{"projections", r.projections}, {"bytes", fs::file_size(job.out)}};
  }
  const fs::path tmp = begin_atomic_dir(job.out);
  try {
    const MergeExportResult r = merge_export({job.model, job.lora, tmp, job.dtype, false, "cpu"}, stage);
    commit_atomic_dir(tmp, job.out);
    return {{"projections", r.projections}, {"tokenizer_copied", r.base_tokenizer_copied}};
  } catch (...) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    throw;
  }
}

}  // namespace

json run_export(const ExportJob& job, const ExportProgress& progress) {
  json r;
  switch (job.kind) {
    case ExportKind::MergeHf:
    case ExportKind::MergeGguf:
      r = run_merge(job, progress);
      break;
    case ExportKind::AdapterGguf: {
      progress(0, 1, "converting the adapter to GGUF");
      const GgmlType t = job.dtype == "f16" ? GgmlType::F16 : job.dtype == "bf16" ? GgmlType::BF16 : GgmlType::F32;
      const ConvertResult c = convert_adapter(job.lora, job.out, job.model, t);
      progress(1, 1, "done");
      r = {{"pairs", c.n_pairs}, {"bytes", fs::file_size(job.out)}};
      break;
    }
    case ExportKind::Zip:
      r = run_zip(job, progress);
      break;
  }
  r["kind"] = export_kind_name(job.kind);
  r["out"] = job.out_name;
  return r;
}

}  // namespace tpro
