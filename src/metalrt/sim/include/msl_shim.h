// The umbrella header every translated kernel library includes first: MSL's types and
// metal_stdlib as the sim provides them. Generated code refers to the shim's internals through
// ::msim and to MSL's library through ::metal, so user names never collide with either.
#pragma once
#include "msl_context.h"
#include "msl_runtime.h"
#include "msl_types.h"
#include "msl_convert.h"
#include "msl_math.h"
#include "msl_integer.h"
#include "msl_relational.h"
#include "msl_limits.h"
#include "msl_pointer.h"
#include "msl_atomic.h"
#include "msl_sync.h"
#include "msl_entry.h"

// metal_stdlib's spelling of a forced-inline function, used by MLX-style helpers.
#define METAL_FUNC inline __attribute__((always_inline))
