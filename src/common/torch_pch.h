#pragma once
// Precompiled once per target (CMake target_precompile_headers): the torch headers dominate compile time.
#include <ATen/ATen.h>
#include <torch/nn.h>
#include <torch/optim.h>
#include <nlohmann/json.hpp>
