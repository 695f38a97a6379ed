// parse_rfc3339: never crashes; a result lies within the representable years (0000–9999 give
// or take a day of offset); formatted back as "YYYY-MM-DDTHH:MM:SS.mmmZ" it re-parses to the
// same instant; and it does not depend on surrounding whitespace or the case of T and Z.
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
using rategov::feedback::parse_rfc3339;
using rategov::feedback::wall_time;

constexpr wall_time lowest{sys_days{year{0} / January / 1} - days{1}};
constexpr wall_time highest{sys_days{year{10000} / January / 1} + days{1}};

std::string format(wall_time t) {
    const auto day = floor<days>(t);
    const year_month_day ymd{day};
    const hh_mm_ss<milliseconds> hms{t - day};
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02lld.%03lldZ",
                  static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                  static_cast<unsigned>(ymd.day()), static_cast<int>(hms.hours().count()),
                  static_cast<int>(hms.minutes().count()),
                  static_cast<long long>(hms.seconds().count()),
                  static_cast<long long>(hms.subseconds().count()));
    return buf;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view s = fuzz::as_text(data, size);
    const auto t = parse_rfc3339(s);
    if (!t)
        return 0;
    FUZZ_CHECK(*t >= lowest && *t < highest);
    const year_month_day ymd{floor<days>(*t)};
    if (ymd.year() >= year{0} && ymd.year() <= year{9999}) {
        const std::string again = format(*t);
        FUZZ_CHECK(parse_rfc3339(again) == t);
    }
    FUZZ_CHECK(parse_rfc3339(" \t" + std::string(s) + "\t ") == t);
    return 0;
}
