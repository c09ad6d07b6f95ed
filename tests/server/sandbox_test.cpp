// server/sandbox: paths inside each served folder resolve; "..", absolute paths and symlinks
// that leave it (also dangling ones, and links inside a folder a job reads or writes) are
// refused with a 400 naming the field; missing roots are an Error.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "common/test_util.h"
#include "core/file.h"
#include "server/api_error.h"
#include "server/sandbox.h"

using namespace tpro;
using tpro::test::error_of;

using FieldMsg = std::pair<std::string, std::string>;

const std::string kHint = " (hint: tpro serve only reads and writes inside --models, --data and --loras)";

namespace {

struct Folders {
  fs::path root;
  Folders() {
    root = fs::temp_directory_path() / ("tpro_sandbox_" + std::to_string(getpid()));
    fs::remove_all(root);
    for (const char* d : {"models/m", "data/sub", "loras", "outside"}) fs::create_directories(root / d);
    write_file_atomic(root / "data" / "a.txt", "a");
    write_file_atomic(root / "data" / "sub" / "b.json", "[]");
    write_file_atomic(root / "outside" / "secret.txt", "s");
    fs::create_symlink(root / "outside" / "secret.txt", root / "data" / "link.txt");
    fs::create_symlink(root / "outside", root / "data" / "linkdir");
    fs::create_symlink(root / "data" / "a.txt", root / "data" / "inner_link.txt");
  }
  ~Folders() { fs::remove_all(root); }
  PathSandbox sandbox() const { return PathSandbox(root / "models", root / "data", root / "loras"); }
};

// The (field, message) of the ApiError f throws, or ("", "(no error)").
std::pair<std::string, std::string> api_error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 400);
    EXPECT_EQ(e.type(), "invalid_request_error");
    return {e.field(), e.what()};
  }
  return {"", "(no error)"};
}

}  // namespace

TEST(Sandbox, ResolvesInsideTheRoot) {
  Folders f;
  const PathSandbox sb = f.sandbox();
  const fs::path data = fs::canonical(f.root / "data");
  EXPECT_EQ(sb.root(Root::Data), data);
  EXPECT_EQ(sb.resolve(Root::Data, "a.txt", "raw_text_file"), data / "a.txt");
  EXPECT_EQ(sb.resolve(Root::Data, "sub/../a.txt", "raw_text_file"), data / "a.txt");
  EXPECT_EQ(sb.resolve(Root::Data, (data / "sub" / "b.json").string(), "dataset"), data / "sub" / "b.json");
  EXPECT_EQ(sb.resolve(Root::Data, "inner_link.txt", "x"), data / "a.txt");  // links inside stay allowed
  EXPECT_EQ(sb.resolve(Root::Loras, "new/run", "output_dir", false), fs::canonical(f.root / "loras") / "new" / "run");
  EXPECT_EQ(sb.display(Root::Data, data / "sub" / "b.json"), "sub/b.json");
  EXPECT_EQ(sb.display(Root::Data, data), ".");
}

TEST(Sandbox, RefusesPathsOutside) {
  Folders f;
  const PathSandbox sb = f.sandbox();
  const std::string data = fs::canonical(f.root / "data").string();
  const std::string hint = " (hint: tpro serve only reads and writes inside --models, --data and --loras)";
  EXPECT_EQ(api_error_of([&] { sb.resolve(Root::Data, "../outside/secret.txt", "raw_text_file"); }),
            FieldMsg(
                "raw_text_file", "raw_text_file: '../outside/secret.txt' is outside the data folder " + data + hint));
  // Outside even when it does not exist, and for folders that are only to be created.
  EXPECT_EQ(api_error_of([&] { sb.resolve(Root::Data, "../../nope", "dataset"); }).second,
            "dataset: '../../nope' is outside the data folder " + data + hint);
  EXPECT_EQ(api_error_of([&] { sb.resolve(Root::Loras, "../x", "output_dir", false); }).first, "output_dir");
  EXPECT_EQ(api_error_of([&] { sb.resolve(Root::Data, "/etc/hostname", "format"); }).first, "format");
  // A sibling whose name starts with the root's name is not inside it.
  fs::create_directories(f.root / "data2");
  write_file_atomic(f.root / "data2" / "c.txt", "c");
  EXPECT_EQ(api_error_of([&] { sb.resolve(Root::Data, (f.root / "data2" / "c.txt").string(), "f"); }).first, "f");
  // Links inside the folder that point out of it.
  const std::string secret = fs::canonical(f.root / "outside" / "secret.txt").string();
  EXPECT_EQ(api_error_of([&] { sb.resolve(Root::Data, "link.txt", "raw_text_file"); }).second,
            "raw_text_file: 'link.txt' is outside the data folder " + data + " (a symlink on the way leads to " +
                secret + ")" + hint);
  EXPECT_EQ(api_error_of([&] { sb.resolve(Root::Data, "linkdir/secret.txt", "raw_text_file"); }).first,
            "raw_text_file");
  EXPECT_EQ(api_error_of([&] { sb.resolve(Root::Models, "", "model"); }).second,
            "model is empty: choose a path in the models folder");
  EXPECT_EQ(api_error_of([&] { sb.resolve(Root::Data, "missing.txt", "dataset"); }).second,
            "dataset: 'missing.txt' does not exist in the data folder " + data);
}

TEST(Sandbox, DanglingLinksAreFollowedToWhereTheyWouldLead) {
  Folders f;
  const PathSandbox sb = f.sandbox();
  const std::string loras = fs::canonical(f.root / "loras").string();
  // A link to a folder that does not exist yet: a mkdir through it would create it outside.
  fs::create_symlink(f.root / "outside" / "not_yet", f.root / "loras" / "run");
  const fs::path not_yet = fs::canonical(f.root / "outside") / "not_yet";
  EXPECT_EQ(resolve_links(f.root / "loras" / "run" / "sub"), not_yet / "sub");
  EXPECT_EQ(api_error_of([&] { sb.resolve(Root::Loras, "run", "output_dir", false); }),
            FieldMsg("output_dir", "output_dir: 'run' is outside the loras folder " + loras +
                                       " (a symlink on the way leads to " + not_yet.string() + ")" + kHint));
  EXPECT_EQ(api_error_of([&] { sb.resolve(Root::Loras, "run/deeper/x", "output_dir", false); }).first, "output_dir");
  // A dangling link that stays inside is only a path that does not exist yet.
  fs::create_symlink("later", f.root / "loras" / "soon");
  EXPECT_EQ(sb.resolve(Root::Loras, "soon/x", "output_dir", false), fs::path(loras) / "later" / "x");
  // A loop is an error, not a hang.
  fs::create_symlink(f.root / "loras" / "loop_b", f.root / "loras" / "loop_a");
  fs::create_symlink(f.root / "loras" / "loop_a", f.root / "loras" / "loop_b");
  EXPECT_THAT(api_error_of([&] { sb.resolve(Root::Loras, "loop_a/x", "output_dir", false); }).second,
              ::testing::HasSubstr("output_dir: cannot resolve 'loop_a/x'"));
}

TEST(Sandbox, LinksInsideAFolderMustStayInTheRoot) {
  Folders f;
  const PathSandbox sb = f.sandbox();
  const fs::path loras = fs::canonical(f.root / "loras");
  const std::string outside = fs::canonical(f.root / "outside").string();
  fs::create_directories(loras / "run" / "checkpoint-5");
  write_file_atomic(loras / "run" / "adapter_config.json", "{}");
  fs::create_symlink(loras / "run" / "adapter_config.json", loras / "run" / "inside_link.json");
  sb.check_links(Root::Loras, loras / "run", "lora", 2);  // links inside the root are fine
  fs::create_symlink(f.root / "outside" / "secret.txt", loras / "run" / "checkpoint-5" / "optimizer.safetensors");
  // Depth 0 looks at the folder's own entries only; depth 1 finds the checkpoint's file.
  sb.check_links(Root::Loras, loras / "run", "lora", 0);
  EXPECT_EQ(api_error_of([&] { sb.check_links(Root::Loras, loras / "run", "lora", 1); }),
            FieldMsg("lora", "lora: 'run/checkpoint-5/optimizer.safetensors' is a symlink that leads outside the "
                             "loras folder " + loras.string() + " (to " + outside + "/secret.txt)" + kHint));
  // One file at a fixed place.
  fs::create_symlink(f.root / "outside" / "secret.txt", loras / "evaluations.csv");
  EXPECT_EQ(api_error_of([&] { sb.check_file(Root::Loras, loras / "evaluations.csv", "evaluations.csv"); }).first,
            "evaluations.csv");
  sb.check_file(Root::Loras, loras / "absent.csv", "x");  // nothing there: nothing to refuse
}

TEST(Sandbox, RootsMustExist) {
  Folders f;
  EXPECT_THAT(error_of([&] { PathSandbox(f.root / "models", f.root / "nodata", f.root / "loras"); }),
              ::testing::StartsWith("--data: '" + (f.root / "nodata").string() + "' is not an existing folder"));
}
