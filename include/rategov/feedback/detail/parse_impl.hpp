// Definitions of <rategov/feedback/parse.hpp>. Everything is constexpr, allocation-free and
// exception-free; every arithmetic step that could overflow is checked first and saturates.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string_view>

RATEGOV_NAMESPACE_BEGIN
namespace feedback {
namespace parse_detail {

inline constexpr std::uint64_t u64_max = std::numeric_limits<std::uint64_t>::max();

constexpr bool is_digit(char c) noexcept {
    return c >= '0' && c <= '9';
}

constexpr char ascii_lower(char c) noexcept {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

/// Eight characters as one little-endian word (compilers turn this into one load).
constexpr std::uint64_t load8(const char* p) noexcept {
    std::uint64_t x = 0;
    for (int i = 7; i >= 0; --i)
        x = (x << 8) | static_cast<unsigned char>(p[i]);
    return x;
}

/// ASCII lower case of eight characters at once: adds 0x20 to each byte in 'A'..'Z' and
/// leaves every other byte (including bytes ≥ 0x80) as it is.
constexpr std::uint64_t lower8(std::uint64_t x) noexcept {
    constexpr std::uint64_t low7 = 0x7f7f7f7f7f7f7f7fu, high = 0x8080808080808080u;
    const std::uint64_t h = x & low7;
    const std::uint64_t ge_a = h + 0x3f3f3f3f3f3f3f3fu; // bit 7 set when byte ≥ 'A'
    const std::uint64_t gt_z = h + 0x2525252525252525u; // bit 7 set when byte > 'Z'
    return x | ((ge_a & ~gt_z & ~x & high) >> 2);
}

constexpr std::uint64_t digit_value(char c) noexcept {
    return static_cast<std::uint64_t>(static_cast<unsigned char>(c) - '0');
}

constexpr std::uint64_t saturating_add(std::uint64_t a, std::uint64_t b) noexcept {
    return b > u64_max - a ? u64_max : a + b;
}

constexpr std::uint64_t saturating_mul(std::uint64_t a, std::uint64_t b) noexcept {
    if (a == 0 || b == 0)
        return 0;
    return a > u64_max / b ? u64_max : a * b;
}

/// The longest run of digits at the start of `s` as a number (saturating at 2^64 - 1), and
/// how many characters it spans.
struct digit_run {
    std::uint64_t value = 0;
    std::size_t length = 0;
};

constexpr digit_run read_digits(std::string_view s) noexcept {
    digit_run r;
    while (r.length < s.size() && is_digit(s[r.length])) {
        const std::uint64_t d = digit_value(s[r.length]);
        r.value = r.value > (u64_max - d) / 10 ? u64_max : r.value * 10 + d;
        ++r.length;
    }
    return r;
}

/// floor(scale × 0.d₁d₂…dₙ) for the digits `fraction`, exactly and without overflow, however
/// many digits there are. Horner's scheme from the last digit: acc ← ⌊(scale·dᵢ + acc) / 10⌋
/// (nested floors of a division by a positive integer compose), with scale and acc split
/// into tens and units so that no intermediate exceeds the result, which is below `scale`.
constexpr std::uint64_t scaled_fraction(std::string_view fraction, std::uint64_t scale) noexcept {
    const std::uint64_t scale_tens = scale / 10;
    const std::uint64_t scale_units = scale % 10;
    std::uint64_t acc = 0;
    for (std::size_t i = fraction.size(); i-- > 0;) {
        const std::uint64_t d = digit_value(fraction[i]);
        acc = scale_tens * d + acc / 10 + (scale_units * d + acc % 10) / 10;
    }
    return acc;
}

/// Exactly `n` digits at `s[pos]`, as a number; -1 if any of them is missing or no digit.
constexpr int fixed_digits(std::string_view s, std::size_t pos, std::size_t n) noexcept {
    if (pos > s.size() || s.size() - pos < n)
        return -1;
    int v = 0;
    for (std::size_t i = pos; i < pos + n; ++i) {
        if (!is_digit(s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/// The instant of a validated civil date and time (UTC); nullopt for an impossible one.
/// `second` may be 60 (a leap second reads as the next second).
constexpr std::optional<wall_time> make_wall_time(int y, int mo, int d, int h, int mi, int sec,
                                                  std::int64_t ms = 0) noexcept {
    using namespace std::chrono;
    if (y < 0 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 ||
        sec < 0 || sec > 60)
        return std::nullopt;
    const year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)},
                             day{static_cast<unsigned>(d)}};
    if (!ymd.ok())
        return std::nullopt;
    return wall_time{sys_days{ymd}} + hours{h} + minutes{mi} + seconds{sec} + milliseconds{ms};
}

/// `HH:MM:SS` at `s[pos]`, checked for shape only; false if it is not there.
struct time_of_day {
    int h = 0, m = 0, s = 0;
};

constexpr bool read_time_of_day(std::string_view s, std::size_t pos, time_of_day& t) noexcept {
    if (pos > s.size() || s.size() - pos < 8 || s[pos + 2] != ':' || s[pos + 5] != ':')
        return false;
    t.h = fixed_digits(s, pos, 2);
    t.m = fixed_digits(s, pos + 3, 2);
    t.s = fixed_digits(s, pos + 6, 2);
    return t.h >= 0 && t.m >= 0 && t.s >= 0;
}

inline constexpr std::string_view month_names[12] = {"jan", "feb", "mar", "apr", "may", "jun",
                                                     "jul", "aug", "sep", "oct", "nov", "dec"};
inline constexpr std::string_view day_names[7] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
inline constexpr std::string_view long_day_names[7] = {
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"};

/// 1–12 for a month abbreviation (any case), 0 otherwise.
constexpr int month_number(std::string_view s) noexcept {
    for (int i = 0; i < 12; ++i)
        if (iequals(s, month_names[i]))
            return i + 1;
    return 0;
}

template <std::size_t N>
constexpr bool is_one_of(std::string_view s, const std::string_view (&names)[N]) noexcept {
    for (const auto name : names)
        if (iequals(s, name))
            return true;
    return false;
}

/// IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT` (exactly 29 characters).
constexpr std::optional<wall_time> parse_imf_fixdate(std::string_view s) noexcept {
    if (s.size() != 29 || !is_one_of(s.substr(0, 3), day_names) || s[3] != ',' || s[4] != ' ' ||
        s[7] != ' ' || s[11] != ' ' || s[16] != ' ' || s[25] != ' ' || s.substr(26) != "GMT")
        return std::nullopt;
    const int d = fixed_digits(s, 5, 2);
    const int mo = month_number(s.substr(8, 3));
    const int y = fixed_digits(s, 12, 4);
    time_of_day t;
    if (d < 0 || mo == 0 || y < 0 || !read_time_of_day(s, 17, t))
        return std::nullopt;
    return make_wall_time(y, mo, d, t.h, t.m, t.s);
}

/// asctime: `Sun Nov  6 08:49:37 1994` (exactly 24 characters; the day of the month may be
/// padded with a space instead of a zero).
constexpr std::optional<wall_time> parse_asctime(std::string_view s) noexcept {
    if (s.size() != 24 || !is_one_of(s.substr(0, 3), day_names) || s[3] != ' ' || s[7] != ' ' ||
        s[10] != ' ' || s[19] != ' ')
        return std::nullopt;
    const int mo = month_number(s.substr(4, 3));
    const int d = s[8] == ' ' ? fixed_digits(s, 9, 1) : fixed_digits(s, 8, 2);
    const int y = fixed_digits(s, 20, 4);
    time_of_day t;
    if (d < 0 || mo == 0 || y < 0 || !read_time_of_day(s, 11, t))
        return std::nullopt;
    return make_wall_time(y, mo, d, t.h, t.m, t.s);
}

/// RFC 850: `Sunday, 06-Nov-94 08:49:37 GMT`. The century is the latest one that puts the
/// date no more than 50 (average Gregorian) years after `now`.
constexpr std::optional<wall_time> parse_rfc850(std::string_view s, wall_time now) noexcept {
    using namespace std::chrono;
    const std::size_t comma = s.find(',');
    if (comma == std::string_view::npos || !is_one_of(s.substr(0, comma), long_day_names))
        return std::nullopt;
    const std::string_view rest = s.substr(comma + 1); // " 06-Nov-94 08:49:37 GMT"
    if (rest.size() != 23 || rest[0] != ' ' || rest[3] != '-' || rest[7] != '-' ||
        rest[10] != ' ' || rest[19] != ' ' || rest.substr(20) != "GMT")
        return std::nullopt;
    const int d = fixed_digits(rest, 1, 2);
    const int mo = month_number(rest.substr(4, 3));
    const int yy = fixed_digits(rest, 8, 2);
    time_of_day t;
    if (d < 0 || mo == 0 || yy < 0 || !read_time_of_day(rest, 11, t))
        return std::nullopt;
    // Keep `now` (and so every candidate year) well inside year_month_day's range.
    constexpr wall_time earliest{sys_days{year{1} / January / 1}};
    constexpr wall_time latest{sys_days{year{30000} / January / 1}};
    const wall_time clamped_now = std::clamp(now, earliest, latest);
    const int now_year = static_cast<int>(year_month_day{floor<days>(clamped_now)}.year());
    const wall_time horizon = clamped_now + years{50};
    if (d < 1 || d > 31)
        return std::nullopt;
    // Latest candidate first: this century's year + 100, then back a century at a time. The
    // century is chosen on the calendar position alone (year/month/day, even 29 February of
    // a common year, which sys_days reads as 1 March), then the date is validated: "29-Feb-00"
    // seen in 2099 is 2100, which has no 29 February, not 2000.
    for (int y = now_year - now_year % 100 + yy + 100; y >= 0; y -= 100) {
        const year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)},
                                 day{static_cast<unsigned>(d)}};
        if (wall_time{sys_days{ymd}} + hours{t.h} + minutes{t.m} + seconds{t.s} <= horizon)
            return make_wall_time(y, mo, d, t.h, t.m, t.s);
    }
    return std::nullopt;
}

} // namespace parse_detail

constexpr std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    return s;
}

constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size())
        return false;
    std::size_t i = 0;
    // Eight characters at a time: header names are long and share long prefixes.
    for (; i + 8 <= a.size(); i += 8)
        if (parse_detail::lower8(parse_detail::load8(a.data() + i)) !=
            parse_detail::lower8(parse_detail::load8(b.data() + i)))
            return false;
    for (; i < a.size(); ++i)
        if (parse_detail::ascii_lower(a[i]) != parse_detail::ascii_lower(b[i]))
            return false;
    return true;
}

constexpr std::optional<std::uint64_t> parse_decimal(std::string_view s, std::uint64_t scale,
                                                     std::uint64_t max) noexcept {
    s = trim(s);
    const parse_detail::digit_run whole = parse_detail::read_digits(s);
    if (whole.length == 0)
        return std::nullopt;
    std::string_view fraction;
    if (whole.length < s.size()) {
        if (s[whole.length] != '.')
            return std::nullopt;
        fraction = s.substr(whole.length + 1);
        if (fraction.empty() || parse_detail::read_digits(fraction).length != fraction.size())
            return std::nullopt;
    }
    const std::uint64_t value =
        parse_detail::saturating_add(parse_detail::saturating_mul(whole.value, scale),
                                     parse_detail::scaled_fraction(fraction, scale));
    return std::min(value, max);
}

constexpr std::optional<std::chrono::nanoseconds> parse_go_duration(std::string_view s) noexcept {
    using rep = std::chrono::nanoseconds::rep;
    constexpr auto ns_max = static_cast<std::uint64_t>(std::numeric_limits<rep>::max());
    s = trim(s);
    if (s == "0")
        return std::chrono::nanoseconds{0};
    if (s.empty())
        return std::nullopt;
    std::uint64_t total = 0;
    while (!s.empty()) {
        // A number: [0-9]*(\.[0-9]*)? with at least one digit (Go accepts "1.s" and ".5s").
        const parse_detail::digit_run whole = parse_detail::read_digits(s);
        s.remove_prefix(whole.length);
        std::string_view fraction;
        if (!s.empty() && s.front() == '.') {
            s.remove_prefix(1);
            fraction = s.substr(0, parse_detail::read_digits(s).length);
            s.remove_prefix(fraction.size());
        }
        if (whole.length == 0 && fraction.empty())
            return std::nullopt;
        // A unit: everything up to the next digit or dot.
        std::size_t unit_length = 0;
        while (unit_length < s.size() && !parse_detail::is_digit(s[unit_length]) &&
               s[unit_length] != '.')
            ++unit_length;
        const std::string_view unit = s.substr(0, unit_length);
        s.remove_prefix(unit_length);
        std::uint64_t scale = 0;
        if (unit == "ns")
            scale = 1;
        else if (unit == "us" || unit == "\xC2\xB5s" || unit == "\xCE\xBCs")
            scale = 1'000;
        else if (unit == "ms")
            scale = 1'000'000;
        else if (unit == "s")
            scale = 1'000'000'000;
        else if (unit == "m")
            scale = 60'000'000'000;
        else if (unit == "h")
            scale = 3'600'000'000'000;
        else
            return std::nullopt; // missing or unknown unit
        const std::uint64_t component =
            parse_detail::saturating_add(parse_detail::saturating_mul(whole.value, scale),
                                         parse_detail::scaled_fraction(fraction, scale));
        total = parse_detail::saturating_add(total, component);
    }
    return std::chrono::nanoseconds{static_cast<rep>(std::min(total, ns_max))};
}

constexpr std::optional<wall_time> parse_rfc3339(std::string_view s) noexcept {
    using namespace std::chrono;
    s = trim(s);
    // YYYY-MM-DDTHH:MM:SS then [.fraction] then Z or ±HH:MM.
    if (s.size() < 20 || s[4] != '-' || s[7] != '-' || s[13] != ':' || s[16] != ':')
        return std::nullopt;
    if (s[10] != 'T' && s[10] != 't' && s[10] != ' ')
        return std::nullopt;
    const int y = parse_detail::fixed_digits(s, 0, 4);
    const int mo = parse_detail::fixed_digits(s, 5, 2);
    const int d = parse_detail::fixed_digits(s, 8, 2);
    parse_detail::time_of_day t;
    if (y < 0 || mo < 0 || d < 0 || !parse_detail::read_time_of_day(s, 11, t))
        return std::nullopt;
    std::size_t pos = 19;
    std::uint64_t ms = 0;
    if (s[pos] == '.') {
        const std::size_t length = parse_detail::read_digits(s.substr(pos + 1)).length;
        if (length == 0)
            return std::nullopt;
        ms = parse_detail::scaled_fraction(s.substr(pos + 1, length), 1000);
        pos += 1 + length;
    }
    if (pos >= s.size())
        return std::nullopt; // the offset is required
    minutes offset{0};
    if (s[pos] == 'Z' || s[pos] == 'z') {
        ++pos;
    } else if (s[pos] == '+' || s[pos] == '-') {
        const int oh = parse_detail::fixed_digits(s, pos + 1, 2);
        const int om = parse_detail::fixed_digits(s, pos + 4, 2);
        if (oh < 0 || om < 0 || s[pos + 3] != ':' || oh > 23 || om > 59)
            return std::nullopt;
        offset = minutes{oh * 60 + om};
        if (s[pos] == '-')
            offset = -offset;
        pos += 6;
    } else {
        return std::nullopt;
    }
    if (pos != s.size())
        return std::nullopt;
    const auto local =
        parse_detail::make_wall_time(y, mo, d, t.h, t.m, t.s, static_cast<std::int64_t>(ms));
    if (!local)
        return std::nullopt;
    return *local - offset;
}

constexpr std::optional<wall_time> parse_http_date(std::string_view s, wall_time now) noexcept {
    s = trim(s);
    const std::size_t comma = s.find(',');
    if (comma == std::string_view::npos)
        return parse_detail::parse_asctime(s);
    if (comma == 3)
        return parse_detail::parse_imf_fixdate(s);
    return parse_detail::parse_rfc850(s, now);
}

constexpr std::optional<std::chrono::milliseconds>
parse_retry_after(std::string_view s, wall_time now, std::chrono::milliseconds max_delay) noexcept {
    using std::chrono::milliseconds;
    s = trim(s);
    if (s.empty())
        return std::nullopt;
    const milliseconds cap = std::max(max_delay, milliseconds{0});
    if (parse_detail::is_digit(s.front())) {
        // delay-seconds = 1*DIGIT: no fraction, no sign.
        if (parse_detail::read_digits(s).length != s.size())
            return std::nullopt;
        const auto delay = parse_decimal(s, 1000, static_cast<std::uint64_t>(cap.count()));
        if (!delay)
            return std::nullopt;
        return milliseconds{static_cast<milliseconds::rep>(*delay)};
    }
    const auto when = parse_http_date(s, now);
    if (!when)
        return std::nullopt;
    if (*when <= now)
        return milliseconds{0};
    // when > now: the difference fits in 64 unsigned bits even when it would overflow rep.
    const std::uint64_t delay = static_cast<std::uint64_t>(when->time_since_epoch().count()) -
                                static_cast<std::uint64_t>(now.time_since_epoch().count());
    return milliseconds{
        static_cast<milliseconds::rep>(std::min(delay, static_cast<std::uint64_t>(cap.count())))};
}

} // namespace feedback
RATEGOV_NAMESPACE_END
