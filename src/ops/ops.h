// Everything a model needs from the op layer, in one include.
#pragma once

#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "core/tensor.h"
#include "ops/activation.h"
#include "ops/copy.h"
#include "ops/elementwise.h"
#include "ops/factory.h"
#include "ops/indexing.h"
#include "ops/loss.h"
#include "ops/matmul.h"
#include "ops/norm.h"
#include "ops/reduce.h"
#include "ops/rope.h"
#include "ops/softmax.h"
#include "ops/topk.h"
#include "ops/view.h"
