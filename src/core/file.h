// Files: read-only memory maps, whole-file reads, and atomic writes (temp file in the same
// folder, fsync, rename) so a killed process never leaves a half-written output behind.
// Folders (checkpoints) are made atomic the same way: fill "<name>.tmp-<pid>", then rename.
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace tpro {

namespace fs = std::filesystem;

class MappedFile {
 public:
  MappedFile() = default;
  explicit MappedFile(const fs::path& path);  // throws Error naming the path
  ~MappedFile();
  MappedFile(MappedFile&& o) noexcept;
  MappedFile& operator=(MappedFile&& o) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

std::string read_file(const fs::path& path);  // throws Error "cannot read <path>: <reason>"

// True when p is dir or below it, compared component by component (so /data2 is not inside
// /data). Both should be canonical (fs::canonical / weakly_canonical): links are not followed here.
bool is_within(const fs::path& dir, const fs::path& p);

// Writes bytes to path atomically: path.tmp-<pid> then rename over path.
void write_file_atomic(const fs::path& path, std::string_view bytes);

// Streams a large file atomically: write() chunks, then commit() renames into place.
// Destroying an uncommitted writer removes the temp file.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(const fs::path& path);
  ~AtomicFileWriter();
  void write(const void* data, size_t n);
  void commit();

 private:
  fs::path path_, tmp_;
  int fd_ = -1;
};

// An exclusive advisory lock (flock) on <dir>/.tpro-lock, held while the object lives, so one
// process at a time writes into an adapter folder. The file holds the holder's pid, which a
// refused second writer names. The lock file is left in place (removing it would race).
class FolderLock {
 public:
  FolderLock() = default;
  // Creates dir if needed; throws Error "<dir> is in use by another tpro run (pid N) ..."
  // naming `what` (e.g. "the adapter folder") when another open file description holds it.
  static FolderLock acquire(const fs::path& dir, const std::string& what);
  ~FolderLock();
  FolderLock(FolderLock&& o) noexcept : fd_(o.fd_), path_(std::move(o.path_)) { o.fd_ = -1; }
  FolderLock& operator=(FolderLock&& o) noexcept;
  FolderLock(const FolderLock&) = delete;
  FolderLock& operator=(const FolderLock&) = delete;
  bool held() const { return fd_ >= 0; }
  void release();

 private:
  int fd_ = -1;
  fs::path path_;
};
inline constexpr const char* kFolderLockName = ".tpro-lock";

// Makes a fresh temp folder next to final_dir ("<final>.tmp-<pid>"), removing a stale one.
fs::path begin_atomic_dir(const fs::path& final_dir);
// Renames tmp_dir over final_dir (removing an older final_dir first).
void commit_atomic_dir(const fs::path& tmp_dir, const fs::path& final_dir);

}  // namespace tpro
