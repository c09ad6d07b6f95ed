// LlamaConfig's derived values and checks; see config.h.
#include "model/config.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace tpro {

void validate_config(const LlamaConfig& c, const std::string& origin) {
  auto positive = [&](const char* key, double v, const char* why) {
    if (!(std::isfinite(v) && v > 0.0))
      fail(origin, ": ", key, " must be a positive finite number, got ", v, " (", why, ")");
  };
  positive("rms_norm_eps", c.rms_norm_eps, "RMSNorm divides by sqrt(mean(x^2) + eps)");
  positive("rope_theta", c.rope_theta, "RoPE frequencies are rope_theta^(-2i/head_dim)");
  auto non_negative = [&](const char* key, double v, const char* why) {
    if (!(std::isfinite(v) && v >= 0.0)) fail(origin, ": ", key, " must be a finite number >= 0, got ", v, " (", why, ")");
  };
  non_negative("attn_logit_softcapping", c.attn_softcap, "scores become cap·tanh(score/cap)");
  non_negative("final_logit_softcapping", c.final_softcap, "logits become cap·tanh(logit/cap)");
  non_negative("query_pre_attn_scalar", c.query_pre_attn_scalar, "scores are scaled by its inverse square root");
  non_negative("rope_local_base_freq", c.rope_local_theta, "the sliding layers' RoPE base");
  non_negative("embedding scale", c.embed_scale, "embeddings are multiplied by it");
  if (c.sliding_window < 0) fail(origin, ": sliding_window must be >= 0, got ", c.sliding_window);
  if (!c.layer_sliding.empty() && int64_t(c.layer_sliding.size()) != c.n_layer)
    fail(origin, ": layer_types lists ", c.layer_sliding.size(), " layers but num_hidden_layers is ", c.n_layer);
  if (c.n_head <= 0 || c.n_head_kv <= 0 || c.n_head % c.n_head_kv)
    fail(origin, ": num_attention_heads ", c.n_head, " is not a multiple of num_key_value_heads ", c.n_head_kv);
  if (c.head_dim <= 0 || c.head_dim % 2) fail(origin, ": head dimension ", c.head_dim, " must be positive and even for RoPE");
  if (c.rotary_dim < 0 || c.rotary_dim % 2 || c.rotary_dim > c.head_dim)
    fail(origin, ": the rotary dimensions (head_dim · partial_rotary_factor) are ", c.rotary_dim,
         ", expected an even number up to head_dim ", c.head_dim);
  const RopeScaling& rs = c.rope_scaling;
  if (rs.type == "longrope") {
    const size_t half = size_t(c.rot_dim() / 2);
    if (rs.short_factor.size() != half || rs.long_factor.size() != half)
      fail(origin, ": rope_scaling short_factor and long_factor need ", half, " values each (rotary dims / 2), got ",
           rs.short_factor.size(), " and ", rs.long_factor.size());
    for (const auto* v : {&rs.short_factor, &rs.long_factor})
      for (double f : *v) positive("rope_scaling short_factor/long_factor", f, "frequencies are divided by them");
    if (rs.original_max_position <= 0)
      fail(origin, ": original_max_position_embeddings must be positive, got ", rs.original_max_position);
  } else if (rs.type == "yarn" || rs.type == "dynamic") {
    positive("rope_scaling.factor", rs.factor, "frequencies are interpolated by it");
    if (rs.type == "yarn") {
      positive("rope_scaling.beta_fast", rs.beta_fast, "the ramp's bounds");
      positive("rope_scaling.beta_slow", rs.beta_slow, "the ramp's bounds");
      if (rs.original_max_position <= 0)
        fail(origin, ": rope_scaling.original_max_position_embeddings must be positive, got ", rs.original_max_position);
    }
  } else if (!rs.type.empty()) {
    positive("rope_scaling.factor", rs.factor, "frequencies are divided by it");
    if (rs.type == "llama3") {
      positive("rope_scaling.low_freq_factor", rs.low_freq_factor, "wavelength bounds are divided by it");
      positive("rope_scaling.high_freq_factor", rs.high_freq_factor, "wavelength bounds are divided by it");
      if (!(rs.high_freq_factor > rs.low_freq_factor))
        fail(origin, ": rope_scaling.high_freq_factor ", rs.high_freq_factor, " must exceed low_freq_factor ",
             rs.low_freq_factor, " (the interpolation divides by their difference)");
      if (rs.original_max_position <= 0)
        fail(origin, ": rope_scaling.original_max_position_embeddings must be positive, got ", rs.original_max_position);
    }
  }
}

void check_layers_present(const LlamaConfig& c, const std::vector<int64_t>& layer_indices, const std::string& origin,
                          const char* key) {
  int64_t top = -1;
  for (int64_t l : layer_indices) top = std::max(top, l);
  if (top >= c.n_layer)
    fail(origin, ": the weights hold layer ", top, " but ", key, " is ", c.n_layer, " (hint: the config and the weights ",
         "disagree; set ", key, " to ", top + 1, " or use the config that came with these weights)");
}

void set_gemma_family(LlamaConfig& c, int version) {
  c.mlp_act = MlpAct::gelu_tanh;
  c.sandwich_norms = true;
  c.norm_plus_one = true;
  c.qk_norm = version >= 3;
  c.embed_scale_inside = version >= 3;
  c.attn_qkv_bias = c.attn_o_bias = c.mlp_bias = false;
  const int64_t pattern = version >= 3 ? 6 : 2;  // llama.cpp's swa pattern; transformers' layer_types default
  c.layer_sliding.assign(size_t(std::max<int64_t>(c.n_layer, 0)), 0);
  for (int64_t l = 0; l < c.n_layer; ++l) c.layer_sliding[size_t(l)] = (l + 1) % pattern != 0;
}

float LlamaConfig::attn_scale() const {
  const double s = query_pre_attn_scalar > 0.0 ? query_pre_attn_scalar : double(head_dim);
  return float(1.0 / std::sqrt(s));
}

std::vector<float> LlamaConfig::rope_inv_freq_local() const {
  if (rope_local_theta <= 0.0) return {};
  LlamaConfig local = *this;
  local.rope_theta = rope_local_theta;
  local.rotary_dim = 0;
  local.rope_scaling = RopeScaling();
  local.rope_local_theta = 0.0;
  return local.rope_inv_freq();
}

namespace {
double yarn_get_mscale(double scale, double mscale) { return scale <= 1.0 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0; }
}  // namespace

float LlamaConfig::rope_mscale() const {
  const RopeScaling& rs = rope_scaling;
  if (rs.attention_factor > 0.0 && (rs.type == "yarn" || rs.type == "longrope")) return float(rs.attention_factor);
  if (rs.type == "yarn") {
    if (rs.mscale > 0.0 && rs.mscale_all_dim > 0.0)
      return float(yarn_get_mscale(rs.factor, rs.mscale) / yarn_get_mscale(rs.factor, rs.mscale_all_dim));
    return float(yarn_get_mscale(rs.factor, 1.0));
  }
  if (rs.type == "longrope") {  // factor = max_position / original_max_position (Phi-3)
    const double factor = double(max_position) / double(rs.original_max_position);
    return factor <= 1.0 ? 1.0f : float(std::sqrt(1.0 + std::log(factor) / std::log(double(rs.original_max_position))));
  }
  return 1.0f;
}

std::vector<float> LlamaConfig::rope_inv_freq(int64_t seq_len) const {
  const int64_t dim = rot_dim(), half = dim / 2;
  const RopeScaling& rs = rope_scaling;
  double base = rope_theta;
  if (rs.type == "dynamic" && seq_len > max_position)  // NTK: the base grows with the sequence
    base = base * std::pow(rs.factor * double(seq_len) / double(max_position) - (rs.factor - 1.0),
                           double(dim) / double(dim - 2));
  std::vector<float> inv(half);
  for (int64_t i = 0; i < half; ++i) {
    // transformers computes base ** (arange(0, dim, 2) / dim) in float32.
    const float e = float(2 * i) / float(dim);
    inv[i] = 1.0f / std::pow(float(base), e);
  }
  if (rs.type == "longrope") {  // short factors up to original_max_position, long ones beyond
    const std::vector<double>& ext = seq_len > rs.original_max_position ? rs.long_factor : rs.short_factor;
    for (int64_t i = 0; i < half; ++i) {
      const float e = float(2 * i) / float(dim);
      inv[i] = 1.0f / (float(ext[size_t(i)]) * std::pow(float(rope_theta), e));
    }
  } else if (rs.type == "yarn") {
    // transformers _compute_yarn_parameters: interpolated (÷factor) and extrapolated frequencies
    // blended by a linear ramp over the dims between beta_fast and beta_slow rotations.
    const double orig = double(rs.original_max_position);
    auto correction_dim = [&](double rotations) {
      return double(dim) * std::log(orig / (rotations * 2.0 * M_PI)) / (2.0 * std::log(rope_theta));
    };
    double low = correction_dim(rs.beta_fast), high = correction_dim(rs.beta_slow);
    if (rs.truncate) low = std::floor(low), high = std::ceil(high);
    low = std::max(low, 0.0), high = std::min(high, double(dim - 1));
    if (low == high) high += 0.001;
    for (int64_t i = 0; i < half; ++i) {
      const float ramp = std::clamp(float((double(i) - low) / (high - low)), 0.0f, 1.0f);
      const float extrapolation = 1.0f - ramp;
      const float interp = inv[size_t(i)] / float(rs.factor);
      inv[size_t(i)] = interp * (1.0f - extrapolation) + inv[size_t(i)] * extrapolation;
    }
  }
  if (rope_scaling.type == "linear") {
    for (auto& f : inv) f = float(f / rope_scaling.factor);
  } else if (rope_scaling.type == "llama3") {
    // transformers _compute_llama3_parameters: long wavelengths scaled by 1/factor, short kept,
    // a smooth interpolation between low_freq_wavelen and high_freq_wavelen.
    const double factor = rope_scaling.factor, lo = rope_scaling.low_freq_factor, hi = rope_scaling.high_freq_factor;
    const double old_ctx = double(rope_scaling.original_max_position);
    const double low_wavelen = old_ctx / lo, high_wavelen = old_ctx / hi;
    for (auto& f : inv) {
      const double wavelen = 2.0 * M_PI / f;
      if (wavelen > low_wavelen) {
        f = float(f / factor);
      } else if (wavelen >= high_wavelen) {
        const double smooth = (old_ctx / wavelen - lo) / (hi - lo);
        f = float((1.0 - smooth) * f / factor + smooth * f);
      }
    }
  }
  return inv;
}

}  // namespace tpro
