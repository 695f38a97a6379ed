// virtual_time: a client loop in virtual time on the manual clock — ten minutes of traffic
// in a few milliseconds, with the reserve → wait → commit discipline. The transport is a
// stand-in that reports usage; yours would send an HTTP request.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <random>

#include <rategov/rategov.hpp>

namespace m = rategov::metric;
using llm = rategov::metrics<m::requests, m::total_prompt, m::uncached_prompt, m::generated>;
using rategov::testing::manual_clock;

int main() {
    using namespace std::chrono;
    manual_clock clock; // starts at 0; reservation.wait() advances it
    rategov::governor<llm, manual_clock> gov(
        clock, rategov::per_minute(600), rategov::per_minute(3'600'000),
        rategov::per_minute(900'000), rategov::per_minute(36'000));
    std::mt19937_64 rng(7);
    std::uint64_t requests = 0, generated = 0, prompt = 0;
    while (clock.now() < manual_clock::time_point(minutes(10))) {
        const std::uint64_t prompt_tokens = 500 + rng() % 4'000;
        const std::uint64_t max_tokens = 300;
        auto r = gov.reserve({rategov::amount<m::requests>{1},
                              rategov::amount<m::total_prompt>{prompt_tokens},
                              rategov::amount<m::uncached_prompt>{prompt_tokens},
                              rategov::amount<m::generated>{max_tokens}});
        if (!r)
            return 1; // cannot happen here: no max_wait, every cost fits the bursts
        r.wait();
        // The "response": half the prompt was cached, the answer used 40–100% of max_tokens.
        const std::uint64_t out = max_tokens * (40 + rng() % 61) / 100;
        r.commit({rategov::amount<m::requests>{1}, rategov::amount<m::total_prompt>{prompt_tokens},
                  rategov::amount<m::uncached_prompt>{prompt_tokens / 2},
                  rategov::amount<m::generated>{out}});
        ++requests;
        generated += out;
        prompt += prompt_tokens;
    }
    const double minutes_run = duration<double>(clock.now().time_since_epoch()).count() / 60;
    std::printf("%.1f virtual minutes: %llu requests, %.0f generated tokens/min (limit 36000), "
                "%.0f prompt tokens/min (limit 3600000)\n",
                minutes_run, static_cast<unsigned long long>(requests),
                static_cast<double>(generated) / minutes_run,
                static_cast<double>(prompt) / minutes_run);
    // Over ten minutes the generated-token limit binds: at most burst + rate·T.
    return generated <= 36'000 + 36'000 * 10 + 300 ? 0 : 1;
}
