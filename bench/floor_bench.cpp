// The physical floors every clocked lock-free limiter pays: one CAS, and a clock read plus
// one CAS. Other benchmarks are reported as ratios to these, measured in the same run.
#include <atomic>
#include <chrono>
#include <cstdint>

#include <benchmark/benchmark.h>

namespace {

void BM_floor_cas(benchmark::State& state) {
    std::atomic<std::uint64_t> word{0};
    for (auto _ : state) {
        auto v = word.load(std::memory_order_relaxed);
        benchmark::DoNotOptimize(word.compare_exchange_strong(v, v + 1, std::memory_order_acq_rel));
    }
}
BENCHMARK(BM_floor_cas);

void BM_floor_clock_cas(benchmark::State& state) {
    std::atomic<std::uint64_t> word{0};
    for (auto _ : state) {
        const auto now =
            static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
        auto v = word.load(std::memory_order_relaxed);
        benchmark::DoNotOptimize(
            word.compare_exchange_strong(v, v > now ? v + 1 : now + 1, std::memory_order_acq_rel));
    }
}
BENCHMARK(BM_floor_clock_cas);

} // namespace
