// The cost of the layers above the governor, as ratios to the governor in the same run:
// a regular (headroom-checked) try_acquire against the default (priority) one, and one whole
// call_machine round trip (reserve, send, read the response, commit) against a bare
// reserve + commit. Rates are far above what the loop can use, so everything is granted.
#include <cstdint>
#include <optional>

#include <rategov/rategov.hpp>

#include <benchmark/benchmark.h>

namespace {

struct metric_a {};
struct metric_b {};
struct metric_c {};
using three = rategov::metrics<metric_a, metric_b, metric_c>;
using governor3 = rategov::governor<three>;

rategov::quota plenty() {
    return rategov::per_second(1'000'000'000).with_burst(1'000'000'000);
}

const governor3::cost_type cost{rategov::amount<metric_a>{1}, rategov::amount<metric_b>{4},
                                rategov::amount<metric_c>{2}};

void BM_governor3_try_acquire_priority(benchmark::State& state) {
    governor3 g(plenty(), plenty(), plenty());
    g.set_priority_headroom(0.1);
    for (auto _ : state)
        benchmark::DoNotOptimize(g.try_acquire(cost));
}
BENCHMARK(BM_governor3_try_acquire_priority);

void BM_governor3_try_acquire_regular(benchmark::State& state) {
    governor3 g(plenty(), plenty(), plenty());
    g.set_priority_headroom(0.1);
    for (auto _ : state)
        benchmark::DoNotOptimize(g.try_acquire(cost, rategov::traffic_class::regular));
}
BENCHMARK(BM_governor3_try_acquire_regular);

void BM_governor3_reserve_commit(benchmark::State& state) {
    governor3 g(plenty(), plenty(), plenty());
    for (auto _ : state) {
        auto r = g.reserve(cost);
        benchmark::DoNotOptimize(r.ready_at());
        r.commit(cost);
    }
}
BENCHMARK(BM_governor3_reserve_commit);

// A response without allocations: no headers, the usage reported.
struct bench_response {
    int status = 200;
    rategov::feedback::header_list headers{};
    std::optional<governor3::cost_type> usage{};
};

void BM_call_machine_round_trip(benchmark::State& state) {
    governor3 g(plenty(), plenty(), plenty());
    rategov::call_options<governor3> opt;
    opt.seed = 1;
    const bench_response ok{200, {}, cost};
    std::int64_t failed = 0;
    for (auto _ : state) {
        rategov::call_machine<governor3> m(g, cost, opt);
        const auto s = m.next(); // send
        benchmark::DoNotOptimize(s);
        m.on_response(ok);
        failed += m.result() ? 0 : 1;
    }
    state.counters["failed"] = static_cast<double>(failed);
}
BENCHMARK(BM_call_machine_round_trip);

} // namespace
