// load_model on a Hugging Face folder whose tensors have a non-float dtype: the matrix and
// the vector loaders each name the file, the tensor and the dtype.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "formats/load.h"
#include "formats/model_writer.h"
#include "io/safetensors.h"
#include "model/model_test_util.h"

using namespace tpro;
using tpro::test::error_of;
using tpro::test::small_config;
using tpro::test::temp_dir;
using ::testing::HasSubstr;

namespace {
// Rewrites dir/model.safetensors with tensor `name` relabelled I32 (same 4 bytes an element
// as the F32 it was written in), as a checkpoint exported with the wrong dtype would be.
void relabel_as_i32(const fs::path& dir, const std::string& name) {
  SafeTensorsWriter w;
  {  // copied out before the file is replaced
    SafeTensorsFile f(dir / "model.safetensors");
    for (const auto& n : f.names()) {
      const TensorView t = f.view(n);
      ASSERT_EQ(t.dtype, DType::F32) << n;
      w.add(n, n == name ? DType::I32 : DType::F32, t.shape, t.data);
    }
  }
  w.write(dir / "model.safetensors");
}
}  // namespace

TEST(ModelLoad, NonFloatDtypesNameTheTensor) {
  const fs::path d = temp_dir("m");
  write_random_model(d, small_config(), 1, DType::F32);
  EXPECT_EQ(load_model(d).layers.size(), 2u);  // the untouched folder loads

  relabel_as_i32(d, "model.layers.1.self_attn.k_proj.weight");
  EXPECT_ERROR_HAS(load_model(d),
                   "model.safetensors: tensor model.layers.1.self_attn.k_proj.weight has dtype I32 "
                   "(hint: tpro loads F32, BF16 and F16 weights)");

  write_random_model(d, small_config(), 1, DType::F32);
  relabel_as_i32(d, "model.layers.0.post_attention_layernorm.weight");
  EXPECT_ERROR_HAS(load_model(d),
                   "model.safetensors: tensor model.layers.0.post_attention_layernorm.weight has dtype I32, "
                   "expected a float type");
}
