// One metric: rategov::bucket against a std::mutex token bucket. Every "granted" benchmark
// uses a rate of 10^9 per second (1 token per ns) with a burst of 10^9, taking 1 token per
// call, so the bucket stays full and every call is granted; a `denied` counter confirms it.
#include <chrono>
#include <cstdint>

#include <rategov/rategov.hpp>

#include <benchmark/benchmark.h>

#include "baseline/mutex_bucket.hpp"

namespace {

constexpr std::uint64_t huge_rate = 1'000'000'000;

rategov::quota always_granted() {
    return rategov::per_second(huge_rate).with_burst(huge_rate);
}

// Shared by the threads of a threaded run (and reused by the single-threaded run: at this
// rate it is full again within a second).
rategov::bucket<>& shared_bucket() {
    static rategov::bucket<> b(always_granted());
    return b;
}

baseline::mutex_bucket& shared_mutex_bucket() {
    static baseline::mutex_bucket b(always_granted());
    return b;
}

void BM_bucket_try_acquire(benchmark::State& state) {
    auto& b = shared_bucket();
    if (!b.try_acquire(1)) {
        state.SkipWithError("bucket: the first try_acquire was not granted");
        return;
    }
    std::int64_t denied = 0;
    for (auto _ : state) {
        const auto r = b.try_acquire(1);
        benchmark::DoNotOptimize(r);
        denied += r ? 0 : 1;
    }
    state.counters["denied"] = static_cast<double>(denied);
}
BENCHMARK(BM_bucket_try_acquire);
BENCHMARK(BM_bucket_try_acquire)->Threads(2);

// The caller supplies the time: no clock read in the loop. Time advances by a fixed step per
// call (10 ns, about what a clock read takes), so the bucket stays full as in the clocked
// benchmark.
void BM_bucket_try_acquire_at(benchmark::State& state) {
    rategov::bucket<> b(always_granted());
    auto at = b.now();
    if (!b.try_acquire_at(1, at)) {
        state.SkipWithError("bucket: the first try_acquire_at was not granted");
        return;
    }
    constexpr std::chrono::nanoseconds step(10);
    std::int64_t denied = 0;
    for (auto _ : state) {
        at += step;
        const auto r = b.try_acquire_at(1, at);
        benchmark::DoNotOptimize(r);
        denied += r ? 0 : 1;
    }
    state.counters["denied"] = static_cast<double>(denied);
}
BENCHMARK(BM_bucket_try_acquire_at);

// An empty bucket that stays empty: 1 token per hour, already taken.
void BM_bucket_try_acquire_denied(benchmark::State& state) {
    rategov::bucket<> b(rategov::per_hour(1));
    if (!b.try_acquire(1)) {
        state.SkipWithError("bucket: the only token was not granted");
        return;
    }
    if (b.try_acquire(1).status != rategov::acquire_status::denied) {
        state.SkipWithError("bucket: the empty bucket did not deny");
        return;
    }
    std::int64_t granted = 0;
    for (auto _ : state) {
        const auto r = b.try_acquire(1);
        benchmark::DoNotOptimize(r);
        granted += r ? 1 : 0;
    }
    state.counters["granted"] = static_cast<double>(granted);
}
BENCHMARK(BM_bucket_try_acquire_denied);

void BM_mutex_bucket_try_acquire(benchmark::State& state) {
    auto& b = shared_mutex_bucket();
    if (!b.try_acquire(1)) {
        state.SkipWithError("mutex_bucket: the first try_acquire was not granted");
        return;
    }
    std::int64_t denied = 0;
    for (auto _ : state) {
        const bool r = b.try_acquire(1);
        benchmark::DoNotOptimize(r);
        denied += r ? 0 : 1;
    }
    state.counters["denied"] = static_cast<double>(denied);
}
BENCHMARK(BM_mutex_bucket_try_acquire);
BENCHMARK(BM_mutex_bucket_try_acquire)->Threads(2);

} // namespace
