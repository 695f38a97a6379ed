// simulated_provider: a client tested against the provider simulator in virtual time — the
// seed provider's limits enforced by token buckets, a prompt cache, its headers — and what
// the provider counted afterwards.
#include <chrono>
#include <cstdint>
#include <cstdio>

#include <rategov/rategov.hpp>

namespace rt = rategov::testing;
namespace m = rategov::metric;
using governor_type = rategov::governor<rt::llm_metrics, rt::manual_clock>;

int main() {
    rt::manual_clock clock; // wait_mode::advance: waiting moves virtual time
    rt::simulator_config cfg;
    cfg.mode = rt::enforcement::bucket;
    cfg.bucket_burst = std::chrono::seconds(10);
    cfg.cache_hit = 0.3;
    rt::provider_simulator sim(clock, cfg);

    // The client: the seed provider's starting limits, a burst of 10 s each, the limits
    // learnt from the headers.
    auto q = [](std::uint64_t per_minute) {
        return rategov::per_minute(per_minute).with_burst(per_minute / 6);
    };
    governor_type gov(clock, q(6'000), q(3'600'000), q(900'000), q(36'000));
    rategov::adaptive_limits<governor_type> adaptive(gov);
    adaptive.bound<m::generated>(
        {rategov::per_minute(9'000), q(36'000), rategov::per_minute(720'000)});

    rategov::call_options<governor_type, rategov::feedback::fireworks_profile<rt::llm_metrics>> opt;
    opt.adaptive = &adaptive;
    opt.queue = false; // the estimate (max_tokens) exceeds the usage: see call_options::queue
    auto transport = [&](const rt::llm_request& r) { return sim.answer(r); };

    const auto start = clock.now();
    int ok = 0;
    for (int i = 0; i < 600; ++i) {
        const rt::llm_request req{.prompt_tokens = 1000 + 7u * static_cast<unsigned>(i % 100),
                                  .max_tokens = 512,
                                  .output_tokens = 100 + 3u * static_cast<unsigned>(i % 67)};
        const rategov::cost<rt::llm_metrics> estimate{
            rategov::amount<m::requests>{1}, rategov::amount<m::total_prompt>{req.prompt_tokens},
            rategov::amount<m::uncached_prompt>{req.prompt_tokens},
            rategov::amount<m::generated>{req.max_tokens}};
        opt.seed = static_cast<std::uint64_t>(i) + 1; // reproducible jitter
        ok += rategov::call(gov, req, estimate, transport, opt) ? 1 : 0;
    }
    const double minutes = std::chrono::duration<double>(clock.now() - start).count() / 60;
    const rt::llm_counters c = sim.counters();
    std::printf("%d/600 calls succeeded in %.1f virtual minutes; the provider answered %llu "
                "requests: %llu admitted, %llu over the limit (429)\n",
                ok, minutes, static_cast<unsigned long long>(c.submitted),
                static_cast<unsigned long long>(c.ok),
                static_cast<unsigned long long>(c.over_limit));
    std::printf("generated %.0f tokens/min against the provider's %llu (one call at a time: "
                "latency bounds it, not the limit; rategov_scenario runs many)\n",
                static_cast<double>(c.served.generated) / minutes,
                static_cast<unsigned long long>(sim.limits().generated));
    return ok == 600 && c.over_limit == 0 ? 0 : 1;
}
