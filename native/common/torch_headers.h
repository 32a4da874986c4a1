// The narrow LibTorch headers the engine uses, precompiled once (CMake target_precompile_headers).
// Deliberately not <torch/torch.h>: no data loaders, serialization, JIT or python bindings.
#pragma once
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/util/Exception.h>
#include <torch/autograd.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/functional/pooling.h>
#include <torch/nn/init.h>
#include <torch/optim/optimizer.h>
#include <torch/types.h>
#include <torch/utils.h>
