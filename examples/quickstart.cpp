// quickstart: a governor for an LLM provider's per-minute limits, and one reserve → commit
// round trip. Build and run: see README.md.
#include <cstdio>

#include <rategov/rategov.hpp>

namespace m = rategov::metric;
using llm = rategov::metrics<m::requests, m::total_prompt, m::uncached_prompt, m::generated>;

int main() {
    // The provider's starting limits, per minute (see README "A first governor").
    rategov::governor<llm> gov(rategov::per_minute(600),       // requests
                               rategov::per_minute(3'600'000), // prompt tokens, cached + not
                               rategov::per_minute(900'000),   // uncached prompt tokens
                               rategov::per_minute(36'000));   // generated tokens

    // Before sending: reserve what the request may use (max_tokens for the output).
    const rategov::cost<llm> estimate{
        rategov::amount<m::requests>{1}, rategov::amount<m::total_prompt>{1'200},
        rategov::amount<m::uncached_prompt>{1'200}, rategov::amount<m::generated>{512}};
    auto reservation = gov.reserve(estimate, std::chrono::seconds(30));
    if (!reservation) {
        std::puts("would wait more than 30 s: shed the request or try later");
        return 1;
    }
    reservation.wait(); // returns at once here: the buckets start full

    // ... send the request with your HTTP client; the response reports the real usage ...
    const rategov::cost<llm> usage{rategov::amount<m::requests>{1},
                                   rategov::amount<m::total_prompt>{1'180},
                                   rategov::amount<m::uncached_prompt>{300}, // 880 were cached
                                   rategov::amount<m::generated>{212}};
    reservation.commit(usage); // surplus refunded, deficit charged

    const auto left = gov.availability();
    std::printf("available now: %llu requests, %llu prompt, %llu uncached, %llu generated\n",
                static_cast<unsigned long long>(left[0]), static_cast<unsigned long long>(left[1]),
                static_cast<unsigned long long>(left[2]), static_cast<unsigned long long>(left[3]));
    return left[3] == 36'000 - 212 ? 0 : 1;
}
