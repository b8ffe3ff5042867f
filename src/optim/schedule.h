// Learning-rate schedules, a pure function of the step (so a resumed run continues the same curve).
// With W = warmup_steps, T = max_steps, lr_min = peak·min_lr_ratio, and `step` the 0-based step about to run:
//   warmup (every type):  step < W          lr = peak · (step + 1) / W
//   constant:             step >= W         lr = peak
//   cosine:               step >= W         lr = lr_min + (peak − lr_min) · ½(1 + cos(π · min(1,
//   (step−W)/(T−W)))) wsd:                  D = max(W, T − round(decay_fraction·T))
//                         W <= step < D     lr = peak                       (stable)
//                         step >= D         lr = peak + (lr_min − peak) · min(1, (step − D)/(T − D))
// Cosine and wsd reach lr_min at step T and stay there beyond it.
#pragma once

#include <cstdint>

#include "config/config.h"

namespace nsa {

double learning_rate(const ScheduleConfig& schedule, double peak_lr, int64_t step, int64_t max_steps);

}  // namespace nsa
