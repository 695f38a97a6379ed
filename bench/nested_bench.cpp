// Nested limits: a path through three levels — an account's requests, a model's three token
// metrics, a variant's one metric — taken all-or-nothing, against BM_governor3_try_acquire
// (one governor of three metrics) in the same run. Every metric allows 10^9 per second with a
// burst of 10^9, so every call is granted; a `denied` counter confirms it. The in-flight
// variant adds a cap at the model level, taken and given back on every call.
#include <cstdint>

#include <rategov/rategov.hpp>

#include <benchmark/benchmark.h>

#include "take_again.hpp"

namespace {

struct tokens_a {};
struct tokens_b {};
struct tokens_c {};
struct variant_tokens {};
namespace m = rategov::metric;

using account_t = rategov::level<rategov::metrics<m::requests>>;
using model_t = rategov::level<rategov::metrics<tokens_a, tokens_b, tokens_c>>;
using model_capped_t = rategov::level<rategov::metrics<tokens_a, tokens_b, tokens_c, m::in_flight>>;
using variant_t = rategov::level<rategov::metrics<variant_tokens>>;

rategov::quota always_granted() {
    constexpr std::uint64_t huge_rate = 1'000'000'000;
    return rategov::per_second(huge_rate).with_burst(huge_rate);
}

// An account's request, a model's three token metrics and a variant's tokens.
template <class Path>
void take_again_and_again(benchmark::State& state, Path& p) {
    bench::take_again_and_again(state, p,
                                {rategov::amount<m::requests>{1}, rategov::amount<tokens_a>{1},
                                 rategov::amount<tokens_b>{4}, rategov::amount<tokens_c>{2},
                                 rategov::amount<variant_tokens>{2}});
}

// Shared by the threads of a threaded run.
account_t& shared_account() {
    static account_t a(always_granted());
    return a;
}
variant_t& shared_variant() {
    static variant_t v(always_granted());
    return v;
}

void BM_hier3_try_acquire(benchmark::State& state) {
    static model_t model(always_granted(), always_granted(), always_granted());
    rategov::path p(shared_account(), model, shared_variant());
    take_again_and_again(state, p);
}
BENCHMARK(BM_hier3_try_acquire);
BENCHMARK(BM_hier3_try_acquire)->Threads(2);

// The same with at most 64 requests in flight at the model: a slot taken and given back.
void BM_hier3_in_flight_try_acquire(benchmark::State& state) {
    static model_capped_t model(always_granted(), always_granted(), always_granted(),
                                rategov::at_most(64));
    rategov::path p(shared_account(), model, shared_variant());
    take_again_and_again(state, p);
}
BENCHMARK(BM_hier3_in_flight_try_acquire);
BENCHMARK(BM_hier3_in_flight_try_acquire)->Threads(2);

} // namespace
