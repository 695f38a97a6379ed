// adaptive_feedback: keep a governor's limits right from the provider's responses — the
// limits it reports in headers, its 429s — within bounds, in virtual time.
#include <array>
#include <cstdio>
#include <optional>
#include <string_view>
#include <utility>

#include <rategov/rategov.hpp>

namespace m = rategov::metric;
namespace fb = rategov::feedback;
using llm = rategov::metrics<m::requests, m::total_prompt, m::generated>;
using rategov::testing::manual_clock;

int main() {
    manual_clock clock;
    rategov::governor<llm, manual_clock> gov(clock, rategov::per_minute(600),
                                             rategov::per_minute(3'600'000),
                                             rategov::per_minute(36'000));
    rategov::adaptive_limits<decltype(gov)> adapt(gov);
    adapt.bound<m::generated>(
        {rategov::per_minute(12'000), rategov::per_minute(36'000), rategov::per_minute(360'000)});
    const fb::fireworks_profile<llm> profile{}; // token limits in headers are per second

    auto show = [&](const char* what) {
        std::printf("%-44s generated limit %s\n", what,
                    gov.limit<m::generated>().to_string().c_str());
    };
    show("start:");

    // A response reporting an effective limit of 1000 generated tokens per second.
    const std::array<fb::header_list::entry, 2> grown{{
        {"X-Ratelimit-Limit-Tokens-Generated", "1000"},
        {"Content-Type", "application/json"},
    }};
    auto started = clock.now();
    clock.advance(std::chrono::milliseconds(800));
    adapt.on_response(profile.read(200, fb::header_list(grown), fb::wall_time_now()), started);
    show("after a 200 reporting 1000/s:");

    // A 429 with no limit headers: the limit shrinks by 0.7.
    started = clock.now();
    clock.advance(std::chrono::milliseconds(300));
    adapt.on_response(profile.read(429, fb::header_list{}, fb::wall_time_now()), started);
    show("after a 429:");

    // A 503 is load shedding, not the account's limit: nothing changes.
    started = clock.now();
    clock.advance(std::chrono::milliseconds(300));
    adapt.on_response(profile.read(503, fb::header_list{}, fb::wall_time_now()), started);
    show("after a 503:");

    return gov.limit<m::generated>().count() == 42'000 ? 0 : 1;
}
