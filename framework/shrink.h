// The framework's public umbrella header.
#pragma once
#include "framework/core/autograd.h"
#include "framework/core/error.h"
#include "framework/core/parallel.h"
#include "framework/core/random.h"
#include "framework/core/tensor.h"
#include "framework/nn/containers.h"
#include "framework/nn/fusion.h"
#include "framework/nn/layers.h"
#include "framework/nn/module.h"
#include "framework/ops/ops.h"
