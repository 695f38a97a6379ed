#include <rategov/rategov.hpp>

#include <benchmark/benchmark.h>
