// A stand-in for the seed provider, for the examples: it answers in virtual time, enforces
// its own limits (lower than the client's starting ones, as an adaptive provider may), and
// sends the seed provider's headers. Not part of the library: your transport calls the
// real provider instead.
#pragma once

#include <cstdint>
#include <random>
#include <string>

#include <rategov/rategov.hpp>

namespace example {

namespace m = rategov::metric;
/// What the seed provider limits, per account and model.
using llm = rategov::metrics<m::requests, m::total_prompt, m::uncached_prompt, m::generated>;

/// One chat completion request (your own type: the library never looks inside).
struct chat_request {
    std::string model;
    std::uint64_t prompt_tokens; // counted by your tokenizer
    std::uint64_t max_tokens;    // the most it may generate
};

template <class Clock>
class stand_in_provider {
public:
    explicit stand_in_provider(const Clock& clock)
        : m_limits(clock, rategov::per_minute(600), rategov::per_minute(3'600'000),
                   rategov::per_minute(900'000),
                   // 30 000 generated tokens per minute (below the client's starting 36 000).
                   rategov::per_minute(30'000)) {}

    /// Answers one request now: 429 with Retry-After when over a limit, else 200 with the
    /// usage it counted. 30 % of each prompt is cached; it generates 40–100 % of max_tokens.
    rategov::response<llm> answer(const chat_request& req) {
        const std::uint64_t generated = req.max_tokens * (40 + m_random() % 61) / 100;
        const std::uint64_t uncached = req.prompt_tokens * 7 / 10;
        const rategov::cost<llm> usage{rategov::amount<m::requests>{1},
                                       rategov::amount<m::total_prompt>{req.prompt_tokens},
                                       rategov::amount<m::uncached_prompt>{uncached},
                                       rategov::amount<m::generated>{generated}};
        rategov::response<llm> r;
        // The effective limits, per second as the seed provider reports them.
        r.headers.add("x-ratelimit-limit-tokens-generated", "500");
        r.headers.add("x-ratelimit-limit-tokens-prompt", "60000");
        r.headers.add("x-ratelimit-limit-tokens-cache-adjusted-prompt", "15000");
        if (!m_limits.try_acquire(usage)) {
            ++rejected;
            r.status = 429;
            r.headers.add("x-ratelimit-over-limit", "yes");
            r.headers.add("retry-after", "1");
            return r;
        }
        r.status = 200;
        r.usage = usage;
        return r;
    }

    std::uint64_t rejected = 0;

private:
    rategov::governor<llm, Clock> m_limits;
    std::mt19937_64 m_random{7};
};

} // namespace example
