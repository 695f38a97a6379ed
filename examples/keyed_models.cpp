// keyed_models: one set of limits per account, model and model variant — created on first
// use from a factory (limits differ per model), shared by every thread that names the key,
// evicted when idle — with call() naming its key. Runs in virtual time.
#include <chrono>
#include <cstdio>

#include <rategov/keyed/keyed.hpp>
#include <rategov/rategov.hpp>

#include "stand_in_provider.hpp"

using namespace std::chrono_literals;
using example::chat_request;
using example::llm;
namespace m = rategov::metric;

using clock_type = rategov::testing::manual_clock;
using governor_type = rategov::governor<llm, clock_type>;
using limits = rategov::keyed_limits<governor_type>;

int main() {
    clock_type clock;
    // Per account and model: the seed provider's limits; a "turbo" variant has its own,
    // smaller generated-token budget. Each entry adapts within bounds of its own.
    rategov::keyed<rategov::model_key, limits, clock_type> registry(
        clock, {.max_keys = 1000, .idle_after = 10min}, [&](const rategov::model_key& key) {
            const std::uint64_t generated = key.variant() == "turbo" ? 12'000 : 36'000;
            return limits(clock, rategov::per_minute(600), rategov::per_minute(3'600'000),
                          rategov::per_minute(900'000), rategov::per_minute(generated));
        });

    // One stand-in provider per (account, model, variant): the provider limits each apart.
    example::stand_in_provider<clock_type> providers[4] = {
        example::stand_in_provider<clock_type>(clock),
        example::stand_in_provider<clock_type>(clock),
        example::stand_in_provider<clock_type>(clock),
        example::stand_in_provider<clock_type>(clock)};
    const rategov::model_key keys[4] = {{"acct-a", "llama-v3p1-8b"},
                                        {"acct-a", "llama-v3p1-8b", "turbo"},
                                        {"acct-b", "llama-v3p1-8b"},
                                        {"acct-b", "qwen3-235b"}};

    int ok = 0;
    for (int i = 0; i < 400; ++i) {
        const std::size_t k = static_cast<std::size_t>(i) % 4;
        const chat_request req{keys[k].model(), 800, 200};
        const rategov::cost<llm> estimate{
            rategov::amount<m::requests>{1}, rategov::amount<m::total_prompt>{800},
            rategov::amount<m::uncached_prompt>{800}, rategov::amount<m::generated>{200}};
        rategov::call_options<governor_type, rategov::feedback::fireworks_profile<llm>> opt;
        opt.deadline = clock.now() + 2min;
        // The call names its key; the entry (and its adaptive limits) is held for the call.
        const auto r = rategov::call(
            registry, keys[k], req, estimate,
            [&](const chat_request& q) { return providers[k].answer(q); }, opt);
        ok += r ? 1 : 0;
    }

    registry.for_each([](const rategov::model_key& key, const limits& l, const auto& stats) {
        std::printf("%-7s %-14s %-6s uses %3u  generated limit %s\n", key.account().c_str(),
                    key.model().c_str(), key.variant().empty() ? "-" : key.variant().c_str(),
                    stats.uses, l.governor.limit<m::generated>().to_string().c_str());
    });
    clock.advance(11min);
    registry.evict_idle(); // notes that nothing was used since the last sweep...
    const std::size_t before = registry.size();
    clock.advance(11min);
    registry.evict_idle(); // ...and evicts what stayed idle for 10 minutes
    std::printf("%d/400 calls succeeded; %zu keys before eviction, %zu after\n", ok, before,
                registry.size());
    return ok == 400 && registry.size() == 0 ? 0 : 1;
}
