// parse_http_date: never crashes, whatever "now" is; a result lies within years 0000–9999
// (or near "now" for RFC 850); an RFC 850 date is never more than 50 years after "now" nor
// 50 years or more before it; and any result, formatted back as an IMF-fixdate, re-parses to
// the same instant.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include <rategov/feedback/parse.hpp>

#include "fuzz_check.hpp"

namespace {

using namespace std::chrono;
using rategov::feedback::parse_http_date;
using rategov::feedback::wall_time;

constexpr wall_time civil(int y, unsigned m, unsigned d) {
    return wall_time{sys_days{year{y} / month{m} / day{d}}};
}

// Ordinary "now"s, where the RFC 850 window is checked, then absurd ones.
constexpr wall_time ordinary_nows[] = {civil(1970, 1, 1), civil(1999, 12, 31), civil(2026, 1, 15),
                                       civil(2099, 6, 1)};
constexpr wall_time absurd_nows[] = {wall_time::min(), wall_time::max(), civil(-30000, 1, 1)};

const char* const day_names[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
const char* const month_names[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

std::string imf_fixdate(wall_time t) {
    const auto day = floor<days>(t);
    const year_month_day ymd{day};
    const hh_mm_ss<seconds> hms{floor<seconds>(t - day)};
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s, %02u %s %04d %02d:%02d:%02lld GMT",
                  day_names[weekday{day}.c_encoding()], static_cast<unsigned>(ymd.day()),
                  month_names[static_cast<unsigned>(ymd.month()) - 1], static_cast<int>(ymd.year()),
                  static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                  static_cast<long long>(hms.seconds().count()));
    return buf;
}

void check(std::string_view s, wall_time now, bool ordinary) {
    const auto t = parse_http_date(s, now);
    if (!t)
        return;
    FUZZ_CHECK(t->time_since_epoch() % seconds{1} == milliseconds{0});
    FUZZ_CHECK(*t >= civil(0, 1, 1) && *t < civil(30200, 1, 1));
    const std::size_t comma = rategov::feedback::trim(s).find(',');
    if (ordinary && comma != std::string_view::npos && comma != 3) {
        // RFC 850: the century is the latest that is at most 50 years after "now"; the one
        // after it would be more (100 calendar years are at most a day longer than years{100}).
        FUZZ_CHECK(*t <= now + years{50});
        FUZZ_CHECK(*t > now + years{50} - years{100} - days{1});
    }
    const year_month_day ymd{floor<days>(*t)};
    if (ymd.year() <= year{9999}) {
        const std::string again = imf_fixdate(*t);
        FUZZ_CHECK(parse_http_date(again, now) == t);
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view s = fuzz::as_text(data, size);
    for (const wall_time now : ordinary_nows)
        check(s, now, true);
    for (const wall_time now : absurd_nows)
        check(s, now, false);
    return 0;
}
