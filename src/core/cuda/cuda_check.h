// NSA_CUDA_CHECK: turns a failed CUDA runtime call into nsa::Error naming the call. CUDA-only code.
#pragma once

#include <cuda_runtime.h>

#include "core/error.h"

#define NSA_CUDA_CHECK(expr)                                                                       \
  do {                                                                                             \
    cudaError_t nsa_err_ = (expr);                                                                 \
    if (nsa_err_ != cudaSuccess)                                                                   \
      ::nsa::throw_error(__FILE__, __LINE__,                                                       \
                         ::nsa::str("[cuda] ", #expr, " failed: ", cudaGetErrorString(nsa_err_))); \
  } while (0)
