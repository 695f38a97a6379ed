// Three metrics taken all-or-nothing: rategov::governor (three lock-free GCRA words) against
// three token buckets behind one std::mutex. Each metric allows 10^9 tokens per second with a
// burst of 10^9 and a call takes {1, 4, 2}, far below the rate, so every call is granted; a
// `denied` counter confirms it.
#include <cstdint>
#include <string>
#include <unistd.h>

#include <rategov/rategov.hpp>
#include <rategov/shm/shm.hpp>

#include <benchmark/benchmark.h>

#include "baseline/mutex_bucket.hpp"
#include "take_again.hpp"

namespace {

struct metric_a {};
struct metric_b {};
struct metric_c {};
using three = rategov::metrics<metric_a, metric_b, metric_c>;
using governor3 = rategov::governor<three>;

constexpr std::uint64_t huge_rate = 1'000'000'000;

rategov::quota always_granted() {
    return rategov::per_second(huge_rate).with_burst(huge_rate);
}

// Shared by the threads of a threaded run (and reused by the single-threaded run).
governor3& shared_governor() {
    static governor3 g(always_granted(), always_granted(), always_granted());
    return g;
}

baseline::mutex_governor3& shared_mutex_governor() {
    static baseline::mutex_governor3 g(always_granted(), always_granted(), always_granted());
    return g;
}

// {1, 4, 2} taken again and again from `g`, whatever its store.
template <class Governor>
void take_again_and_again(benchmark::State& state, Governor& g) {
    bench::take_again_and_again(
        state, g,
        {rategov::amount<metric_a>{1}, rategov::amount<metric_b>{4}, rategov::amount<metric_c>{2}});
}

void BM_governor3_try_acquire(benchmark::State& state) {
    take_again_and_again(state, shared_governor());
}
BENCHMARK(BM_governor3_try_acquire);
BENCHMARK(BM_governor3_try_acquire)->Threads(2);

// The same governor with its state in a shared-memory segment: the cost of the store's
// indirection (one pointer) and of memory shared between processes.
using shm_governor3 = rategov::shm::governor<three>;

shm_governor3& shared_shm_governor() {
    struct holder {
        std::string name = "/rategov-bench-" + std::to_string(::getpid());
        rategov::shm::segment seg = rategov::shm::segment::open(name);
        shm_governor3 g{seg.place("bench"), rategov::steady_clock{}, always_granted(),
                        always_granted(), always_granted()};
        ~holder() { rategov::shm::segment::remove(name); }
    };
    static holder h;
    return h.g;
}

void BM_shm_governor3_try_acquire(benchmark::State& state) {
    take_again_and_again(state, shared_shm_governor());
}
BENCHMARK(BM_shm_governor3_try_acquire);
BENCHMARK(BM_shm_governor3_try_acquire)->Threads(2);

void BM_mutex_governor3_try_acquire(benchmark::State& state) {
    auto& g = shared_mutex_governor();
    const baseline::mutex_governor3::cost_type c{1, 4, 2};
    if (!g.try_acquire(c)) {
        state.SkipWithError("mutex_governor3: the first try_acquire was not granted");
        return;
    }
    std::int64_t denied = 0;
    for (auto _ : state) {
        const bool r = g.try_acquire(c);
        benchmark::DoNotOptimize(r);
        denied += r ? 0 : 1;
    }
    state.counters["denied"] = static_cast<double>(denied);
}
BENCHMARK(BM_mutex_governor3_try_acquire);
BENCHMARK(BM_mutex_governor3_try_acquire)->Threads(2);

// The same with some work between acquisitions (about 100 ns: preparing a request), as a
// client does: the lines still move between cores, but threads rarely collide head-on, and
// a mutex can no longer let one thread run alone while the other sleeps.
void some_work() {
    std::uint64_t x = 1;
    for (int i = 0; i < 100; ++i) {
        x = x * 6364136223846793005u + 1442695040888963407u;
        benchmark::DoNotOptimize(x);
    }
}

void BM_governor3_try_acquire_with_work(benchmark::State& state) {
    auto& g = shared_governor();
    const governor3::cost_type c{rategov::amount<metric_a>{1}, rategov::amount<metric_b>{4},
                                 rategov::amount<metric_c>{2}};
    for (auto _ : state) {
        some_work();
        const auto r = g.try_acquire(c);
        benchmark::DoNotOptimize(r);
    }
}
BENCHMARK(BM_governor3_try_acquire_with_work);
BENCHMARK(BM_governor3_try_acquire_with_work)->Threads(2);

void BM_mutex_governor3_try_acquire_with_work(benchmark::State& state) {
    auto& g = shared_mutex_governor();
    const baseline::mutex_governor3::cost_type c{1, 4, 2};
    for (auto _ : state) {
        some_work();
        const bool r = g.try_acquire(c);
        benchmark::DoNotOptimize(r);
    }
}
BENCHMARK(BM_mutex_governor3_try_acquire_with_work);
BENCHMARK(BM_mutex_governor3_try_acquire_with_work)->Threads(2);

} // namespace
