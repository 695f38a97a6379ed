// The Redis store (include/rategov/redis): a leased governor, whose try_acquire is served
// from its local pool (a lease every so often), against one round trip per call. Redis runs
// on loopback, started by the benchmark (rategov::testing::redis_server). One metric with a
// rate of 10^9 per second and a burst of 10^9, so every call is granted; `denied` confirms.
#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>

#include <rategov/redis/redis.hpp>
#include <rategov/testing/redis_server.hpp>

#include <benchmark/benchmark.h>

namespace {

using one = rategov::metrics<rategov::metric::requests>;
using cost_t = rategov::cost<one>;

rategov::testing::redis_server* server() {
    static std::unique_ptr<rategov::testing::redis_server> s = [] {
        std::unique_ptr<rategov::testing::redis_server> p;
        if (rategov::testing::redis_server::available()) {
            try {
                p = std::make_unique<rategov::testing::redis_server>();
            } catch (const std::runtime_error&) {
                p.reset();
            }
        }
        return p;
    }();
    return s.get();
}

rategov::redis::options bench_options(int port) {
    rategov::redis::options o;
    o.endpoint.port = port;
    o.endpoint.command_timeout = std::chrono::milliseconds(1000);
    o.on_failure = rategov::redis::failure_policy::fail_closed;
    o.expected_processes = 1;
    return o;
}

const rategov::quota huge = rategov::per_second(1'000'000'000).with_burst(1'000'000'000);

template <class Governor>
void run(benchmark::State& state, const char* key) {
    auto* s = server();
    if (s == nullptr) {
        state.SkipWithError("redis-server not found (set RATEGOV_REDIS_SERVER or PATH)");
        return;
    }
    Governor gov(bench_options(s->port()), key, huge);
    const cost_t c{rategov::amount<rategov::metric::requests>{1}};
    if (!gov.try_acquire(c)) {
        state.SkipWithError("redis: the first try_acquire was not granted");
        return;
    }
    std::int64_t denied = 0;
    for (auto _ : state) {
        const auto r = gov.try_acquire(c);
        benchmark::DoNotOptimize(r);
        denied += r ? 0 : 1;
    }
    state.counters["denied"] = static_cast<double>(denied);
    state.counters["round_trips"] = static_cast<double>(gov.status().round_trips);
}

void BM_redis_leased_try_acquire(benchmark::State& state) {
    run<rategov::redis::leased_governor<one>>(state, "bench-leased");
}
BENCHMARK(BM_redis_leased_try_acquire);

void BM_redis_round_trip_try_acquire(benchmark::State& state) {
    run<rategov::redis::governor<one>>(state, "bench-round-trip");
}
BENCHMARK(BM_redis_round_trip_try_acquire);

} // namespace
