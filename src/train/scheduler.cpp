// The lambda(step) of every schedule; see scheduler.h. The HF formulas follow
// transformers/optimization.py term by term (including its max(1, ...) guards), the FP_* ones
// follow Training PRO's custom_scheduler.py, where an "epoch" is ceil(total / epochs) steps.
// FP_3epoch_raise_hold_fall is built from its documented shape (rise / hold / cosine fall) with
// the rise drawn like FP_raise_fall_creative's first half; below 3 epochs it is rejected.
#include "train/scheduler.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/error.h"
#include "train/suggest.h"

namespace tpro {

namespace {

constexpr double kPi = std::numbers::pi;

struct NamedType {
  const char* name;
  SchedulerType type;
};

constexpr NamedType kTypes[] = {
    {"linear", SchedulerType::Linear},
    {"constant", SchedulerType::Constant},
    {"constant_with_warmup", SchedulerType::ConstantWithWarmup},
    {"cosine", SchedulerType::Cosine},
    {"cosine_with_restarts", SchedulerType::CosineWithRestarts},
    {"polynomial", SchedulerType::Polynomial},
    {"inverse_sqrt", SchedulerType::InverseSqrt},
    {"FP_low_epoch_annealing", SchedulerType::FpLowEpochAnnealing},
    {"FP_half_time_annealing", SchedulerType::FpHalfTimeAnnealing},
    {"FP_raise_fall_creative", SchedulerType::FpRaiseFallCreative},
    {"FP_3epoch_raise_hold_fall", SchedulerType::Fp3EpochRaiseHoldFall},
    {"FP_step_decay_with_warmup", SchedulerType::FpStepDecayWithWarmup},
};

bool is_fp(SchedulerType t) { return t >= SchedulerType::FpLowEpochAnnealing; }

// Linear warmup from 0; HF divides by max(1, w) (max(1.0, w) in constant_with_warmup: same).
double warm(int64_t s, int64_t w) { return double(s) / double(std::max<int64_t>(1, w)); }

// Half-cosine from 1 (progress 0) to 0 (progress 1); negative progress mirrors it into a rise.
double half_cosine(double progress) { return std::max(0.0, 0.5 * (1.0 + std::cos(kPi * progress))); }

double progress_after(int64_t s, int64_t start, int64_t total) {
  return double(s - start) / double(std::max<int64_t>(1, total - start));
}

double hf_factor(const SchedulerSpec& sp, int64_t s, int64_t w) {
  const int64_t T = sp.total_steps;
  switch (sp.type) {
    case SchedulerType::Constant:
      return 1.0;
    case SchedulerType::ConstantWithWarmup:
      return s < w ? warm(s, w) : 1.0;
    case SchedulerType::Linear:
      if (s < w) return warm(s, w);
      return std::max(0.0, double(T - s) / double(std::max<int64_t>(1, T - w)));
    case SchedulerType::Cosine: {
      if (s < w) return warm(s, w);
      double cycles = sp.num_cycles > 0 ? sp.num_cycles : 0.5;
      return std::max(0.0, 0.5 * (1.0 + std::cos(kPi * cycles * 2.0 * progress_after(s, w, T))));
    }
    case SchedulerType::CosineWithRestarts: {
      if (s < w) return warm(s, w);
      double cycles = sp.num_cycles > 0 ? sp.num_cycles : 1.0;
      double p = progress_after(s, w, T);
      if (p >= 1.0) return 0.0;
      return std::max(0.0, 0.5 * (1.0 + std::cos(kPi * std::fmod(cycles * p, 1.0))));
    }
    case SchedulerType::Polynomial: {
      if (s < w) return warm(s, w);
      if (sp.base_lr <= 0) return 0.0;
      const double lr_init = sp.base_lr;
      // HF divides by (T - w) unguarded; s == w == T would be 0/0 there, here it is the end.
      if (s > T || T - w <= 0) return sp.lr_end / lr_init;
      double remaining = 1.0 - double(s - w) / double(T - w);
      return ((lr_init - sp.lr_end) * std::pow(remaining, sp.power) + sp.lr_end) / lr_init;
    }
    case SchedulerType::InverseSqrt: {
      if (s < w) return warm(s, w);
      int64_t ts = sp.timescale > 0 ? sp.timescale : (w > 0 ? w : 10000);
      double shift = double(ts - w);
      return 1.0 / std::sqrt((double(s) + shift) / double(ts));
    }
    default:
      return 1.0;
  }
}

double fp_factor(const SchedulerSpec& sp, int64_t s, int64_t w) {
  const int64_t T = sp.total_steps;
  // An unknown epoch length degrades to "the whole run is one epoch" (validate rejects it).
  int64_t E = resolved_steps_per_epoch(sp);
  if (E <= 0) E = std::max<int64_t>(1, T);
  switch (sp.type) {
    case SchedulerType::FpLowEpochAnnealing: {
      int64_t wc = std::min(w, E);
      if (s < wc) return warm(s, wc);
      if (s < E) return 1.0;
      return half_cosine(progress_after(s, E, T));
    }
    case SchedulerType::FpHalfTimeAnnealing: {
      int64_t half = T / 2;
      int64_t wc = std::min(w, half);
      if (s < wc) return warm(s, wc);
      if (s < half) return 1.0;
      return half_cosine(progress_after(s, half, T));
    }
    case SchedulerType::FpRaiseFallCreative:
      return half_cosine(progress_after(s, T / 2, T));
    case SchedulerType::Fp3EpochRaiseHoldFall:
      if (s < E) return 0.5 * (1.0 - std::cos(kPi * double(s) / double(E)));
      if (s < 2 * E) return 1.0;
      return half_cosine(progress_after(s, 2 * E, T));
    case SchedulerType::FpStepDecayWithWarmup: {
      int64_t wc = std::min(w, E);
      if (s < wc) return warm(s, wc);
      if (s < E) return 1.0;
      return std::ldexp(1.0, -int(std::min<int64_t>(s / E, 1000)));  // 1 / 2^(epoch - 1)
    }
    default:
      return 1.0;
  }
}

}  // namespace

const std::vector<std::string>& scheduler_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const auto& t : kTypes) v.emplace_back(t.name);
    return v;
  }();
  return names;
}

std::string_view scheduler_name(SchedulerType t) {
  for (const auto& n : kTypes)
    if (n.type == t) return n.name;
  return "?";
}

SchedulerType scheduler_from_name(std::string_view name) {
  for (const auto& n : kTypes)
    if (name == n.name) return n.type;
  fail("unknown lr_scheduler_type '", name, "' (expected one of ", join_names(scheduler_names()), ")",
       did_you_mean(name, scheduler_names()));
}

int64_t resolved_warmup_steps(const SchedulerSpec& s) {
  if (s.warmup_steps > 0) return s.warmup_steps;
  if (s.warmup_ratio > 0 && s.total_steps > 0) return int64_t(std::ceil(double(s.total_steps) * s.warmup_ratio));
  return 0;
}

int64_t resolved_steps_per_epoch(const SchedulerSpec& s) {
  if (s.steps_per_epoch > 0) return s.steps_per_epoch;
  if (s.epochs > 0 && s.total_steps > 0) return int64_t(std::ceil(double(s.total_steps) / s.epochs));
  return 0;
}

void validate_scheduler(const SchedulerSpec& s) {
  std::string_view name = scheduler_name(s.type);
  if (s.total_steps < 0) fail("scheduler total_steps must be >= 0, got ", s.total_steps);
  if (s.warmup_steps < 0) fail("warmup_steps must be >= 0, got ", s.warmup_steps);
  if (!(s.warmup_ratio >= 0 && s.warmup_ratio <= 1)) fail("warmup_ratio must be in [0, 1], got ", s.warmup_ratio);
  if (!(std::isfinite(s.base_lr) && s.base_lr >= 0)) fail("learning_rate must be a finite number >= 0, got ", s.base_lr);
  if (s.num_cycles < 0) fail("num_cycles must be >= 0, got ", s.num_cycles);
  if (s.type == SchedulerType::Polynomial) {
    if (!(s.base_lr > s.lr_end))
      fail("lr_end (", s.lr_end, ") must be smaller than learning_rate (", s.base_lr, ") for polynomial");
    if (!(s.power > 0)) fail("power must be > 0 for polynomial, got ", s.power);
  }
  if (!is_fp(s.type)) return;
  if (resolved_steps_per_epoch(s) <= 0)
    fail(name, " needs the epoch length, got epochs = ", s.epochs, " and steps_per_epoch = ", s.steps_per_epoch,
         " (hint: set epochs > 0)");
  if (s.type == SchedulerType::Fp3EpochRaiseHoldFall) {
    double n_epochs = s.epochs > 0 ? s.epochs : double(s.total_steps) / double(resolved_steps_per_epoch(s));
    if (n_epochs < 3)
      fail(name, " needs at least 3 epochs (rise, hold, fall), got ", n_epochs,
           " (hint: use FP_low_epoch_annealing for 2 epochs)");
  }
}

double lr_factor(const SchedulerSpec& s, int64_t step) {
  step = std::max<int64_t>(0, step);
  int64_t w = resolved_warmup_steps(s);
  return is_fp(s.type) ? fp_factor(s, step, w) : hf_factor(s, step, w);
}

std::string describe_schedule(const SchedulerSpec& s) {
  const int64_t T = s.total_steps, w = resolved_warmup_steps(s), E = resolved_steps_per_epoch(s);
  std::string out = std::string(scheduler_name(s.type)) + ": ";
  auto range = [](int64_t a, int64_t b) { return cat(a, "-", b); };
  switch (s.type) {
    case SchedulerType::Constant:
      return out + cat("constant 0-", T);
    case SchedulerType::FpLowEpochAnnealing:
      return out + cat("warmup ", range(0, std::min(w, E)), ", hold ", range(std::min(w, E), E), ", annealing ",
                       range(E, T));
    case SchedulerType::FpHalfTimeAnnealing:
      return out + cat("warmup ", range(0, std::min(w, T / 2)), ", hold ", range(std::min(w, T / 2), T / 2),
                       ", annealing ", range(T / 2, T));
    case SchedulerType::FpRaiseFallCreative:
      return out + cat("raise ", range(0, T / 2), ", fall ", range(T / 2, T), " (warmup not used)");
    case SchedulerType::Fp3EpochRaiseHoldFall:
      return out + cat("raise ", range(0, E), ", hold ", range(E, 2 * E), ", fall ", range(2 * E, T),
                       " (warmup not used)");
    case SchedulerType::FpStepDecayWithWarmup:
      return out + cat("warmup ", range(0, std::min(w, E)), ", hold ", range(std::min(w, E), E),
                       ", halving every ", E, " steps ", range(E, T));
    default:
      return out + cat("warmup ", range(0, w), ", decay ", range(w, T));
  }
}

}  // namespace tpro
