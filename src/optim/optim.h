// Everything the trainer needs from the optimizer layer, in one include.
#pragma once

#include "optim/adamw.h"
#include "optim/grad_clip.h"
#include "optim/schedule.h"
#include "optim/weight_decay.h"
