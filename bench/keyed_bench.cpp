// Keyed lookups against one bucket acquisition in the same run: BM_keyed_lookup_hit finds an
// existing key (a model_key, hash cached) among 64 and gives its handle back — one atomic add
// to take, one to give back — and BM_keyed_try_acquire adds a three-metric try_acquire on
// the entry's governor. With two threads both look up the same key (the worst case: one
// state word shared), and BM_keyed_lookup_hit_distinct gives each thread its own key.
#include <cstdint>
#include <string>
#include <vector>

#include <rategov/keyed/keyed.hpp>
#include <rategov/rategov.hpp>

#include <benchmark/benchmark.h>

namespace {

struct metric_a {};
struct metric_b {};
struct metric_c {};
using three = rategov::metrics<metric_a, metric_b, metric_c>;
using governor3 = rategov::governor<three>;
using registry = rategov::keyed<rategov::model_key, rategov::keyed_limits<governor3>>;

rategov::quota plenty() {
    return rategov::per_second(1'000'000'000).with_burst(1'000'000'000);
}

const std::vector<rategov::model_key>& keys() {
    static const std::vector<rategov::model_key> k = [] {
        std::vector<rategov::model_key> v;
        for (int i = 0; i < 64; ++i)
            v.emplace_back("account-" + std::to_string(i % 4),
                           "accounts/fireworks/models/model-" + std::to_string(i / 4),
                           i % 2 == 0 ? "" : "turbo");
        return v;
    }();
    return k;
}

registry& shared_registry() {
    static registry r = [] {
        return registry({.max_keys = 128}, [](const rategov::model_key&) {
            return rategov::keyed_limits<governor3>(plenty(), plenty(), plenty());
        });
    }();
    static const bool filled = [] {
        for (const auto& k : keys())
            static_cast<void>(r.get(k));
        return true;
    }();
    static_cast<void>(filled);
    return r;
}

void BM_keyed_lookup_hit(benchmark::State& state) {
    auto& r = shared_registry();
    const rategov::model_key& key = keys()[17];
    std::int64_t missed = 0;
    for (auto _ : state) {
        auto h = r.find(key);
        benchmark::DoNotOptimize(h);
        missed += h ? 0 : 1;
    }
    state.counters["missed"] = static_cast<double>(missed);
}
BENCHMARK(BM_keyed_lookup_hit);
BENCHMARK(BM_keyed_lookup_hit)->Threads(2);

void BM_keyed_lookup_hit_distinct(benchmark::State& state) {
    auto& r = shared_registry();
    const rategov::model_key& key = keys()[static_cast<std::size_t>(20 + state.thread_index())];
    for (auto _ : state) {
        auto h = r.find(key);
        benchmark::DoNotOptimize(h);
    }
}
BENCHMARK(BM_keyed_lookup_hit_distinct)->Threads(2);

void BM_keyed_try_acquire(benchmark::State& state) {
    auto& r = shared_registry();
    const rategov::model_key& key = keys()[17];
    const governor3::cost_type c{rategov::amount<metric_a>{1}, rategov::amount<metric_b>{4},
                                 rategov::amount<metric_c>{2}};
    std::int64_t denied = 0;
    for (auto _ : state) {
        auto h = r.find(key);
        const auto g = h->governor.try_acquire(c);
        benchmark::DoNotOptimize(g);
        denied += g ? 0 : 1;
    }
    state.counters["denied"] = static_cast<double>(denied);
}
BENCHMARK(BM_keyed_try_acquire);
BENCHMARK(BM_keyed_try_acquire)->Threads(2);

} // namespace
