/*
 * runtime.c — the one instance of the shared runtime (see runtime.h).
 */
#include "runtime.h"

rk_runtime_t rk_rt;
