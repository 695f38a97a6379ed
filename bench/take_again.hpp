// Shared by the micro benchmarks: one cost taken again and again, with a counter of the
// refusals (which should stay 0: the limits are far above what a run takes).
#pragma once

#include <cstdint>

#include <benchmark/benchmark.h>

namespace bench {

/// `c` taken from `limiter` (a governor, a path, ...) once per iteration; the result is
/// kept alive until the next (a path's admission gives its slots back when it goes).
template <class Limiter>
void take_again_and_again(benchmark::State& state, Limiter& limiter,
                          const typename Limiter::cost_type& c) {
    if (!limiter.try_acquire(c)) {
        state.SkipWithError("the first try_acquire was not granted");
        return;
    }
    std::int64_t denied = 0;
    for (auto _ : state) {
        auto r = limiter.try_acquire(c);
        benchmark::DoNotOptimize(r);
        denied += r ? 0 : 1;
    }
    state.counters["denied"] = static_cast<double>(denied);
}

} // namespace bench
