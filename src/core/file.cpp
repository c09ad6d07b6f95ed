// mmap, whole-file reads and atomic writes; see file.h.
#include "core/file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace tpro {

namespace {
std::string errno_str() { return std::strerror(errno); }

fs::path temp_sibling(const fs::path& p) {
  return p.parent_path() / (p.filename().string() + ".tmp-" + std::to_string(::getpid()));
}
}  // namespace

MappedFile::MappedFile(const fs::path& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot open ", path.string(), ": ", errno_str());
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    fail("cannot stat ", path.string(), ": ", errno_str());
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    fail("cannot open ", path.string(), ": is a directory");
  }
  size_ = size_t(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      fail("cannot mmap ", path.string(), ": ", errno_str());
    }
    data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

MappedFile::MappedFile(MappedFile&& o) noexcept : path_(std::move(o.path_)), data_(o.data_), size_(o.size_) {
  o.data_ = nullptr;
  o.size_ = 0;
}

MappedFile& MappedFile::operator=(MappedFile&& o) noexcept {
  if (this != &o) {
    if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
    path_ = std::move(o.path_);
    data_ = o.data_;
    size_ = o.size_;
    o.data_ = nullptr;
    o.size_ = 0;
  }
  return *this;
}

std::string read_file(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot read ", path.string(), ": ", errno_str());
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    ::close(fd);
    fail("cannot read ", path.string(), ": is a directory");
  }
  std::string out;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      fail("cannot read ", path.string(), ": ", errno_str());
    }
    if (n == 0) break;
    out.append(buf, size_t(n));
  }
  ::close(fd);
  return out;
}

AtomicFileWriter::AtomicFileWriter(const fs::path& path) : path_(path), tmp_(temp_sibling(path)) {
  // A stale temp file (or a symlink planted under its predictable name) is removed, and O_EXCL
  // creates a fresh file: the bytes never go through a link to somewhere else.
  ::unlink(tmp_.c_str());
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd_ < 0) fail("cannot write ", tmp_.string(), ": ", errno_str());
}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(tmp_.c_str());
  }
}

void AtomicFileWriter::write(const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::write(fd_, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      fail("cannot write ", tmp_.string(), ": ", errno_str());
    }
    p += w;
    n -= size_t(w);
  }
}

void AtomicFileWriter::commit() {
  if (::fsync(fd_) != 0) fail("cannot sync ", tmp_.string(), ": ", errno_str());
  ::close(fd_);
  fd_ = -1;
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
    std::string err = errno_str();
    ::unlink(tmp_.c_str());
    fail("cannot rename ", tmp_.string(), " to ", path_.string(), ": ", err);
  }
}

bool is_within(const fs::path& dir, const fs::path& p) {
  if (dir.empty()) return false;  // no folder holds anything
  auto q = p.begin();
  for (const fs::path& d : dir) {
    if (d.empty()) break;  // a trailing separator ("dir/") adds an empty last element
    if (q == p.end() || *q != d) return false;
    ++q;
  }
  return true;
}

void write_file_atomic(const fs::path& path, std::string_view bytes) {
  AtomicFileWriter w(path);
  w.write(bytes.data(), bytes.size());
  w.commit();
}

FolderLock FolderLock::acquire(const fs::path& dir, const std::string& what) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail("cannot create ", dir.string(), ": ", ec.message());
  FolderLock l;
  l.path_ = dir / kFolderLockName;
  l.fd_ = ::open(l.path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (l.fd_ < 0) fail("cannot open the lock file ", l.path_.string(), ": ", errno_str());
  if (::flock(l.fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    std::string holder;
    char buf[32] = {};
    if (::pread(l.fd_, buf, sizeof buf - 1, 0) > 0) holder = std::string(buf).substr(0, std::string(buf).find('\n'));
    if (err == EWOULDBLOCK)
      fail(dir.string(), ": ", what, " is in use by another tpro run (pid ", holder.empty() ? "unknown" : holder,
           ") (hint: wait for it to end or stop it, or choose another name)");
    fail("cannot lock ", l.path_.string(), ": ", std::strerror(err));
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(l.fd_, 0) != 0 || ::pwrite(l.fd_, pid.data(), pid.size(), 0) != ssize_t(pid.size()))
    fail("cannot write the lock file ", l.path_.string(), ": ", errno_str());
  return l;
}

FolderLock& FolderLock::operator=(FolderLock&& o) noexcept {
  if (this != &o) {
    release();
    fd_ = o.fd_;
    path_ = std::move(o.path_);
    o.fd_ = -1;
  }
  return *this;
}

void FolderLock::release() {
  if (fd_ < 0) return;
  if (::ftruncate(fd_, 0) != 0) {}  // best effort: an empty file reads as "no holder"
  ::close(fd_);  // closing the last descriptor releases the flock
  fd_ = -1;
}

FolderLock::~FolderLock() { release(); }

fs::path begin_atomic_dir(const fs::path& final_dir) {
  fs::path tmp = temp_sibling(final_dir);
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec) fail("cannot create folder ", tmp.string(), ": ", ec.message());
  return tmp;
}

void commit_atomic_dir(const fs::path& tmp_dir, const fs::path& final_dir) {
  std::error_code ec;
  if (fs::exists(final_dir)) {
    // Move the old folder aside first so that a crash leaves either the old or the new one.
    fs::path old = final_dir.parent_path() / (final_dir.filename().string() + ".old-" + std::to_string(::getpid()));
    fs::remove_all(old, ec);
    fs::rename(final_dir, old, ec);
    if (ec) fail("cannot replace ", final_dir.string(), ": ", ec.message());
    fs::rename(tmp_dir, final_dir, ec);
    if (ec) fail("cannot rename ", tmp_dir.string(), " to ", final_dir.string(), ": ", ec.message());
    fs::remove_all(old, ec);
    return;
  }
  fs::rename(tmp_dir, final_dir, ec);
  if (ec) fail("cannot rename ", tmp_dir.string(), " to ", final_dir.string(), ": ", ec.message());
}

}  // namespace tpro
