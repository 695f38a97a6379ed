// parse_retry_after: never crashes, whatever "now" and max_delay are; a result lies within
// [0, max(max_delay, 0)]; delay-seconds agree with parse_decimal (in milliseconds, clamped);
// an HTTP-date gives exactly its distance from "now", clamped.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <rategov/feedback/parse.hpp>

#include "fuzz_check.hpp"

namespace {

using namespace std::chrono;
using rategov::feedback::parse_decimal;
using rategov::feedback::parse_http_date;
using rategov::feedback::parse_retry_after;
using rategov::feedback::trim;
using rategov::feedback::wall_time;

constexpr wall_time nows[] = {wall_time{sys_days{year{2026} / January / 15}} + hours{12},
                              wall_time{}, wall_time::min(), wall_time::max()};
constexpr milliseconds max_delays[] = {milliseconds::max(), hours{1}, milliseconds{0},
                                       milliseconds{-5}};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view s = fuzz::as_text(data, size);
    const std::string_view v = trim(s);
    const bool all_digits =
        !v.empty() && v.find_first_not_of("0123456789") == std::string_view::npos;
    for (const wall_time now : nows) {
        for (const milliseconds max_delay : max_delays) {
            const auto delay = parse_retry_after(s, now, max_delay);
            const milliseconds cap = max_delay < milliseconds{0} ? milliseconds{0} : max_delay;
            if (all_digits) {
                FUZZ_CHECK(delay.has_value());
                const auto ms = parse_decimal(v, 1000);
                FUZZ_CHECK(ms.has_value());
                const auto expected = static_cast<std::uint64_t>(cap.count()) < *ms
                                          ? cap.count()
                                          : static_cast<milliseconds::rep>(*ms);
                FUZZ_CHECK(delay->count() == expected);
                continue;
            }
            const auto when = parse_http_date(s, now);
            FUZZ_CHECK(delay.has_value() == when.has_value());
            if (!delay)
                continue;
            FUZZ_CHECK(*delay >= milliseconds{0} && *delay <= cap);
            const fuzz::i128 distance = static_cast<fuzz::i128>(when->time_since_epoch().count()) -
                                        now.time_since_epoch().count();
            const fuzz::i128 expected =
                distance < 0 ? 0 : (distance > cap.count() ? cap.count() : distance);
            FUZZ_CHECK(delay->count() == expected);
        }
    }
    return 0;
}
