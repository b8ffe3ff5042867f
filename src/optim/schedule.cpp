// Learning-rate schedules (formulas in schedule.h).
#include "optim/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace nsa {

double learning_rate(const ScheduleConfig& schedule, double peak_lr, int64_t step, int64_t max_steps) {
  NSA_CHECK(step >= 0, "[learning_rate] expected step >= 0, got ", step);
  const int64_t warmup = std::max<int64_t>(schedule.warmup_steps, 0);
  if (step < warmup) return peak_lr * static_cast<double>(step + 1) / static_cast<double>(warmup);
  const double min_lr = peak_lr * schedule.min_lr_ratio;
  // Fraction of the way from `begin` to max_steps (1 once there, or when the phase is empty).
  auto progress = [&](int64_t begin) {
    if (max_steps <= begin) return 1.0;
    return std::min(1.0, static_cast<double>(step - begin) / static_cast<double>(max_steps - begin));
  };
  if (schedule.type == "constant") return peak_lr;
  if (schedule.type == "cosine") {
    return min_lr + (peak_lr - min_lr) * 0.5 * (1.0 + std::cos(std::numbers::pi * progress(warmup)));
  }
  if (schedule.type == "wsd") {
    const auto decay_steps = static_cast<int64_t>(std::llround(schedule.decay_fraction * max_steps));
    const int64_t decay_begin = std::max(warmup, max_steps - decay_steps);
    if (step < decay_begin) return peak_lr;
    return peak_lr + (min_lr - peak_lr) * progress(decay_begin);
  }
  throw InputError(str("schedule.type: expected cosine, constant or wsd, got '", schedule.type, "'"));
}

}  // namespace nsa
