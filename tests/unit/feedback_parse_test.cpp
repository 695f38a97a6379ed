// feedback/parse.hpp: trim, iequals, decimals, Go durations, RFC 3339 timestamps, the three
// HTTP-date forms and Retry-After. Table-driven: every row is one input and what it must give
// (nullopt for a rejection), so that adding an edge case is adding a line.
#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include <rategov/feedback/parse.hpp>

#include <gtest/gtest.h>

namespace {

using namespace std::chrono_literals;
using namespace std::string_view_literals;
using rategov::feedback::iequals;
using rategov::feedback::parse_decimal;
using rategov::feedback::parse_go_duration;
using rategov::feedback::parse_http_date;
using rategov::feedback::parse_retry_after;
using rategov::feedback::parse_rfc3339;
using rategov::feedback::trim;
using rategov::feedback::wall_time;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;

constexpr std::uint64_t u64_max = std::numeric_limits<std::uint64_t>::max();
constexpr std::int64_t ns_max = std::numeric_limits<std::int64_t>::max();
constexpr std::nullopt_t none = std::nullopt;

/// A UTC civil date and time as a wall_time.
constexpr wall_time at(int y, unsigned mo, unsigned d, int h = 0, int mi = 0, int s = 0,
                       int ms = 0) {
    using namespace std::chrono;
    return wall_time{sys_days{year{y} / month{mo} / day{d}}} + hours{h} + minutes{mi} + seconds{s} +
           milliseconds{ms};
}

/// Milliseconds since the epoch, so that failures print numbers rather than bytes.
std::optional<std::int64_t> epoch_ms(std::optional<wall_time> t) {
    if (!t)
        return std::nullopt;
    return t->time_since_epoch().count();
}
std::optional<std::int64_t> epoch_ms(wall_time t) {
    return t.time_since_epoch().count();
}

std::optional<std::int64_t> count(std::optional<nanoseconds> d) {
    if (!d)
        return std::nullopt;
    return d->count();
}
std::optional<std::int64_t> count(std::optional<milliseconds> d) {
    if (!d)
        return std::nullopt;
    return d->count();
}

/// The input with control and non-ASCII bytes escaped, for SCOPED_TRACE.
std::string show(std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string out = "\"";
    for (const char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u >= 0x7f) {
            out += "\\x";
            out += hex[u >> 4];
            out += hex[u & 0xf];
        } else {
            out += c;
        }
    }
    return out + "\"";
}

constexpr wall_time now = at(2026, 1, 15, 12, 0, 0); // the reference "now" of most tables

// --- constant evaluation ------------------------------------------------------------------------

static_assert(trim(" \t x y \t ") == "x y");
static_assert(iequals("Retry-After", "retry-after"));
static_assert(!iequals("Retry-After", "retry_after"));
static_assert(parse_decimal("1.5", 1000) == 1500u);
static_assert(parse_decimal("1.999", 1000) == 1999u);
static_assert(parse_decimal("1000000000000000000000000000000") == u64_max);
static_assert(!parse_decimal("1e3"));
static_assert(parse_go_duration("1h2m3.5s") == nanoseconds{3'723'500'000'000});
static_assert(parse_go_duration("1.5\xC2\xB5s") == 1500ns);
static_assert(!parse_go_duration("-1s"));
static_assert(parse_rfc3339("1970-01-01T00:00:01.5Z") == wall_time{1500ms});
static_assert(parse_rfc3339("2026-12-31T23:59:60Z") == at(2027, 1, 1));
static_assert(!parse_rfc3339("2026-02-29T00:00:00Z"));
static_assert(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT", now) == wall_time{784'111'777s});
static_assert(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT", now) == wall_time{784'111'777s});
static_assert(parse_http_date("Sun Nov  6 08:49:37 1994", now) == wall_time{784'111'777s});
static_assert(parse_retry_after("120", now, 1h) == 120s);
static_assert(parse_retry_after("Thu, 15 Jan 2026 12:00:30 GMT", now, 1h) == 30s);

// --- trim and iequals ---------------------------------------------------------------------------

TEST(FeedbackParse, Trim) {
    struct row {
        std::string_view in, out;
    };
    const row rows[] = {
        {""sv, ""sv},           {" "sv, ""sv},          {"\t \t"sv, ""sv},
        {"a"sv, "a"sv},         {"  a\t"sv, "a"sv},     {" a b "sv, "a b"sv},
        {"\na\n"sv, "\na\n"sv}, {"\ra\r"sv, "\ra\r"sv}, {"\0a\0"sv, "\0a\0"sv},
        {"\ta\t"sv, "a"sv},     {"a \t \t"sv, "a"sv},   {"\v a"sv, "\v a"sv},
    };
    for (const auto& r : rows) {
        SCOPED_TRACE(show(r.in));
        EXPECT_EQ(trim(r.in), r.out);
    }
}

TEST(FeedbackParse, Iequals) {
    struct row {
        std::string_view a, b;
        bool equal;
    };
    const row rows[] = {
        {""sv, ""sv, true},
        {"Retry-After"sv, "retry-after"sv, true},
        {"X-RATELIMIT-RESET"sv, "x-ratelimit-reset"sv, true},
        {"abc"sv, "abd"sv, false},
        {"abc"sv, "ab"sv, false},
        {"ab"sv, "abc"sv, false},
        {"@"sv, "`"sv, false}, // 0x40 and 0x60 differ by the case bit but are not letters
        {"["sv, "{"sv, false},
        {"\xC3\x84"sv, "\xC3\xA4"sv, false}, // Ä and ä: ASCII only
        {"a\0b"sv, "A\0B"sv, true},
        {"a\0b"sv, "a\0c"sv, false},
    };
    for (const auto& r : rows) {
        SCOPED_TRACE(show(r.a) + " vs " + show(r.b));
        EXPECT_EQ(iequals(r.a, r.b), r.equal);
        EXPECT_EQ(iequals(r.b, r.a), r.equal);
    }
}

// --- parse_decimal ------------------------------------------------------------------------------

TEST(FeedbackParse, Decimal) {
    struct row {
        std::string_view in;
        std::uint64_t scale, max;
        std::optional<std::uint64_t> out;
    };
    const row rows[] = {
        {"0"sv, 1, u64_max, 0},
        {"12"sv, 1, u64_max, 12},
        {"007"sv, 1, u64_max, 7},
        {"1.5"sv, 1000, u64_max, 1500},
        {"1.999"sv, 1000, u64_max, 1999},
        {"1.9999"sv, 1000, u64_max, 1999},
        {"0.0005"sv, 1000, u64_max, 0},
        {"0.001"sv, 1000, u64_max, 1},
        {"0.99999999999999999999999999999"sv, 1000, u64_max, 999},
        {"2.5"sv, 1, u64_max, 2},
        {"12.000"sv, 1, u64_max, 12},
        {" 7 "sv, 1, u64_max, 7},
        {"\t3.25\t"sv, 100, u64_max, 325},
        {"100"sv, 1, 50, 50},
        {"1.5"sv, 0, u64_max, 0},
        // Saturation, never wrapping.
        {"18446744073709551615"sv, 1, u64_max, u64_max},
        {"18446744073709551616"sv, 1, u64_max, u64_max},
        {"18446744073709551615"sv, 2, u64_max, u64_max},
        {"1000000000000000000000000000000"sv, 1, u64_max, u64_max},
        {"1000000000000000000000000000000"sv, 1000, 60'000, 60'000},
        {"1000000000000000000000000000000.5"sv, 1000, u64_max, u64_max},
        {"0.5"sv, u64_max, u64_max, u64_max / 2},
        {"0.9999999999999999999999"sv, u64_max, u64_max, u64_max - 1},
        {"1.5"sv, u64_max, u64_max, u64_max},
        {"1.5"sv, u64_max / 2, u64_max, u64_max - u64_max / 4 - 2},
        // Rejections.
        {""sv, 1, u64_max, none},
        {"   "sv, 1, u64_max, none},
        {"-1"sv, 1, u64_max, none},
        {"+1"sv, 1, u64_max, none},
        {"-0"sv, 1, u64_max, none},
        {"1e3"sv, 1, u64_max, none},
        {"1E3"sv, 1, u64_max, none},
        {"1.2.3"sv, 1, u64_max, none},
        {"1..2"sv, 1, u64_max, none},
        {".5"sv, 1, u64_max, none},
        {"5."sv, 1, u64_max, none},
        {"."sv, 1, u64_max, none},
        {"1 2"sv, 1, u64_max, none},
        {"1,5"sv, 1, u64_max, none},
        {"12abc"sv, 1, u64_max, none},
        {"abc"sv, 1, u64_max, none},
        {"0x10"sv, 1, u64_max, none},
        {"inf"sv, 1, u64_max, none},
        {"nan"sv, 1, u64_max, none},
        {"1\0"sv, 1, u64_max, none},
        {"\0"
         "1"sv,
         1, u64_max, none},
        {"1\n"sv, 1, u64_max, none},
        {"\xD9\xA1"sv, 1, u64_max, none}, // ARABIC-INDIC DIGIT ONE
    };
    for (const auto& r : rows) {
        SCOPED_TRACE(show(r.in) + " scale " + std::to_string(r.scale));
        EXPECT_EQ(parse_decimal(r.in, r.scale, r.max), r.out);
    }
}

// --- parse_go_duration --------------------------------------------------------------------------

TEST(FeedbackParse, GoDuration) {
    struct row {
        std::string_view in;
        std::optional<std::int64_t> ns;
    };
    constexpr std::int64_t us = 1'000, ms = 1'000'000, s = 1'000'000'000, m = 60 * s, h = 60 * m;
    const row rows[] = {
        {"0"sv, 0},
        {" 0 "sv, 0},
        {"0s"sv, 0},
        {"00s"sv, 0},
        {"1s"sv, s},
        {"6m0s"sv, 6 * m},
        {"12ms"sv, 12 * ms},
        {"1h2m3.5s"sv, h + 2 * m + 3 * s + s / 2},
        {"1.5\xC2\xB5s"sv, 1500}, // U+00B5 MICRO SIGN
        {"1.5\xCE\xBCs"sv, 1500}, // U+03BC GREEK SMALL LETTER MU
        {"300us"sv, 300 * us},
        {"100ns"sv, 100},
        {"2h"sv, 2 * h},
        {"1.5h"sv, 90 * m},
        {"0.5m"sv, 30 * s},
        {"1.s"sv, s}, // as Go: digits on either side of the dot suffice
        {".5s"sv, s / 2},
        {"1ns1ns"sv, 2},
        {"1m1h"sv, h + m},
        {"1.0000000001s"sv, s}, // a tenth of a nanosecond truncates away
        {"0.1ns"sv, 0},
        {"0.999999999999s"sv, s - 1},
        {"\t59.999s "sv, 59'999 * ms},
        {"2562047h47m16.854775807s"sv, ns_max}, // exactly nanoseconds::max()
        // Saturation at nanoseconds::max().
        {"2562047h47m16.854775808s"sv, ns_max},
        {"2562048h"sv, ns_max},
        {"9223372036854775807ns"sv, ns_max},
        {"9223372036854775808ns"sv, ns_max},
        {"1000000000000000000000000000000h"sv, ns_max},
        {"1000000000000000000000000000000h1000000000000000000000000000000s"sv, ns_max},
        // Rejections.
        {""sv, none},
        {" "sv, none},
        {"1"sv, none},
        {"00"sv, none},
        {"0.0"sv, none},
        {"s"sv, none},
        {".s"sv, none},
        {"-1s"sv, none},
        {"+1s"sv, none},
        {"-0"sv, none},
        {"1x"sv, none},
        {"1d"sv, none},
        {"1S"sv, none},
        {"1H"sv, none},
        {"1 s"sv, none},
        {"1h 2m"sv, none},
        {"1h2"sv, none},
        {"1..5s"sv, none},
        {"1.2.3s"sv, none},
        {"1e3s"sv, none},
        {"\xC2\xB5s"sv, none},
        {"1\xC2\xB5"sv, none},
        {"1\xB5s"sv, none},
        {"1s\0"sv, none},
        {"1\0s"sv, none},
        {"1s garbage"sv, none},
        {"inf"sv, none},
        {"1sec"sv, none},
    };
    for (const auto& r : rows) {
        SCOPED_TRACE(show(r.in));
        EXPECT_EQ(count(parse_go_duration(r.in)), r.ns);
    }
}

// --- parse_rfc3339 ------------------------------------------------------------------------------

TEST(FeedbackParse, Rfc3339) {
    struct row {
        std::string_view in;
        std::optional<std::int64_t> ms;
    };
    const auto t = [](wall_time w) { return epoch_ms(w); };
    const auto reset = t(at(2026, 11, 24, 10, 0, 5));
    const row rows[] = {
        {"2026-11-24T10:00:05Z"sv, reset},
        {"2026-11-24t10:00:05z"sv, reset},
        {"2026-11-24 10:00:05Z"sv, reset},
        {"  2026-11-24T10:00:05Z\t"sv, reset},
        {"2026-11-24T12:00:05+02:00"sv, reset},
        {"2026-11-24T04:30:05-05:30"sv, reset},
        {"2026-11-24T10:00:05+00:00"sv, reset},
        {"2026-11-24T10:00:05-00:00"sv, reset},
        {"2026-11-25T09:59:05+23:59"sv, reset},
        {"2026-11-24T10:00:05.123Z"sv, t(at(2026, 11, 24, 10, 0, 5, 123))},
        {"2026-11-24T10:00:05.5Z"sv, t(at(2026, 11, 24, 10, 0, 5, 500))},
        {"2026-11-24T10:00:05.1239999999999Z"sv, t(at(2026, 11, 24, 10, 0, 5, 123))},
        {"2026-11-24T10:00:05.0009Z"sv, reset},
        {"2026-11-24T12:00:05.250+02:00"sv, t(at(2026, 11, 24, 10, 0, 5, 250))},
        {"1970-01-01T00:00:00Z"sv, 0},
        // Leap seconds read as the next second.
        {"2016-12-31T23:59:60Z"sv, t(at(2017, 1, 1))},
        {"2016-12-31T23:59:60.5Z"sv, t(at(2017, 1, 1, 0, 0, 0, 500))},
        {"2026-12-31T23:59:60Z"sv, t(at(2027, 1, 1))},
        // Leap years.
        {"2024-02-29T00:00:00Z"sv, t(at(2024, 2, 29))},
        {"2000-02-29T00:00:00Z"sv, t(at(2000, 2, 29))},
        {"2026-02-28T23:59:59Z"sv, t(at(2026, 2, 28, 23, 59, 59))},
        {"2026-02-29T00:00:00Z"sv, none},
        {"1900-02-29T00:00:00Z"sv, none},
        {"2026-04-31T00:00:00Z"sv, none},
        {"2026-02-30T00:00:00Z"sv, none},
        // Far past and far future.
        {"1900-01-01T00:00:00Z"sv, -2'208'988'800'000},
        {"0000-01-01T00:00:00Z"sv, t(at(0, 1, 1))},
        {"9999-12-31T23:59:59Z"sv, 253'402'300'799'000},
        {"9999-12-31T23:59:60Z"sv, 253'402'300'800'000},
        // Rejections.
        {""sv, none},
        {"   "sv, none},
        {"garbage"sv, none},
        {"2026-11-24"sv, none},
        {"2026-11-24T10:00:05"sv, none}, // the offset is required
        {"2026-11-24T10:00Z"sv, none},
        {"2026-13-01T00:00:00Z"sv, none},
        {"2026-00-01T00:00:00Z"sv, none},
        {"2026-01-00T00:00:00Z"sv, none},
        {"2026-01-32T00:00:00Z"sv, none},
        {"2026-11-24T24:00:00Z"sv, none},
        {"2026-11-24T10:60:00Z"sv, none},
        {"2026-11-24T10:00:61Z"sv, none},
        {"2026-11-24T10:00:05.Z"sv, none},
        {"2026-11-24T10:00:05.1.2Z"sv, none},
        {"2026-11-24T10:00:05ZZ"sv, none},
        {"2026-11-24T10:00:05Z junk"sv, none},
        {"2026-11-24T10:00:05 Z"sv, none},
        {"2026-11-24T10:00:05UTC"sv, none},
        {"2026-11-24T10:00:05+0200"sv, none},
        {"2026-11-24T10:00:05+02"sv, none},
        {"2026-11-24T10:00:05+24:00"sv, none},
        {"2026-11-24T10:00:05+02:60"sv, none},
        {"2026-11-24T10:00:05+2:00"sv, none},
        {"2026-11-24X10:00:05Z"sv, none},
        {"2026-11-24T1:00:05Z"sv, none},
        {"2026-1-24T10:00:05Z"sv, none},
        {"26-11-24T10:00:05Z"sv, none},
        {"+2026-11-24T10:00:05Z"sv, none},
        {"-2026-11-24T10:00:05Z"sv, none},
        {"20260-11-24T10:00:05Z"sv, none},
        {"2026/11/24T10:00:05Z"sv, none},
        {"2026-11-24T10:00:05\0Z"sv, none},
        {"2026-11-24T10:00:05Z\0"sv, none},
        {"1e3"sv, none},
    };
    for (const auto& r : rows) {
        SCOPED_TRACE(show(r.in));
        EXPECT_EQ(epoch_ms(parse_rfc3339(r.in)), r.ms);
    }
}

// --- parse_http_date ----------------------------------------------------------------------------

TEST(FeedbackParse, HttpDate) {
    struct row {
        std::string_view in;
        std::optional<std::int64_t> ms;
    };
    const auto t = [](wall_time w) { return epoch_ms(w); };
    const std::optional<std::int64_t> rfc_example = 784'111'777'000; // 1994-11-06T08:49:37Z
    const row rows[] = {
        // IMF-fixdate.
        {"Sun, 06 Nov 1994 08:49:37 GMT"sv, rfc_example},
        {"sun, 06 nov 1994 08:49:37 GMT"sv, rfc_example},
        {"SUN, 06 NOV 1994 08:49:37 GMT"sv, rfc_example},
        {"Mon, 06 Nov 1994 08:49:37 GMT"sv, rfc_example}, // the day name is not checked
        {" \tSun, 06 Nov 1994 08:49:37 GMT\t "sv, rfc_example},
        {"Thu, 15 Jan 2026 12:00:30 GMT"sv, t(at(2026, 1, 15, 12, 0, 30))},
        {"Wed, 31 Dec 2025 23:59:60 GMT"sv, t(at(2026, 1, 1))},
        {"Thu, 29 Feb 2024 00:00:00 GMT"sv, t(at(2024, 2, 29))},
        {"Sun, 29 Feb 2026 00:00:00 GMT"sv, none},
        {"Mon, 01 Jan 1900 00:00:00 GMT"sv, -2'208'988'800'000},
        {"Fri, 31 Dec 9999 23:59:59 GMT"sv, 253'402'300'799'000},
        // RFC 850.
        {"Sunday, 06-Nov-94 08:49:37 GMT"sv, rfc_example},
        {"sunday, 06-nov-94 08:49:37 GMT"sv, rfc_example},
        {"SUNDAY, 06-NOV-94 08:49:37 GMT"sv, rfc_example},
        {"Wednesday, 31-Dec-25 23:59:60 GMT"sv, t(at(2026, 1, 1))},
        {"Thursday, 29-Feb-24 00:00:00 GMT"sv, t(at(2024, 2, 29))},
        {"Sunday, 29-Feb-26 00:00:00 GMT"sv, none},
        // asctime.
        {"Sun Nov  6 08:49:37 1994"sv, rfc_example},
        {"Sun Nov 06 08:49:37 1994"sv, rfc_example},
        {"sun nov  6 08:49:37 1994"sv, rfc_example},
        {"Thu Feb 29 00:00:00 2024"sv, t(at(2024, 2, 29))},
        {"Sun Feb 29 00:00:00 2026"sv, none},
        {"Wed Dec 31 23:59:60 2025"sv, t(at(2026, 1, 1))},
        {"Mon Jan  1 00:00:00 1900"sv, -2'208'988'800'000},
        {"Fri Dec 31 23:59:59 9999"sv, 253'402'300'799'000},
        // Zones other than GMT (RFC 9110 allows none).
        {"Sun, 06 Nov 1994 08:49:37 UTC"sv, none},
        {"Sun, 06 Nov 1994 08:49:37 PST"sv, none},
        {"Sun, 06 Nov 1994 08:49:37 +0000"sv, none},
        {"Sun, 06 Nov 1994 08:49:37 +0200"sv, none},
        {"Sun, 06 Nov 1994 08:49:37 Z"sv, none},
        {"Sun, 06 Nov 1994 08:49:37 gmt"sv, none},
        {"Sun, 06 Nov 1994 08:49:37"sv, none},
        {"Sunday, 06-Nov-94 08:49:37 UTC"sv, none},
        {"Sunday, 06-Nov-94 08:49:37 +0000"sv, none},
        {"Sun Nov  6 08:49:37 1994 GMT"sv, none},
        // Malformed.
        {""sv, none},
        {"   "sv, none},
        {"garbage"sv, none},
        {"1e3"sv, none},
        {"-1"sv, none},
        {"Sun, 06 Nov 1994 08:49:37 GMT junk"sv, none},
        {"Sun, 06 Nov 1994 08:49:37 GMTX"sv, none},
        {"Sun, 6 Nov 1994 08:49:37 GMT"sv, none},
        {"Sun,  6 Nov 1994 08:49:37 GMT"sv, none},
        {"Sun, 06 Nov 94 08:49:37 GMT"sv, none},
        {"Sun, 06 Nov 01994 08:49:37 GMT"sv, none},
        {"Sun 06 Nov 1994 08:49:37 GMT"sv, none},
        {"Sun,06 Nov 1994 08:49:37 GMT "sv, none},
        {"Xyz, 06 Nov 1994 08:49:37 GMT"sv, none},
        {"Sun, 06 Foo 1994 08:49:37 GMT"sv, none},
        {"Sun, 06 November 1994 08:49:37 GMT"sv, none},
        {"Sun, 32 Jan 1994 08:49:37 GMT"sv, none},
        {"Sun, 00 Jan 1994 08:49:37 GMT"sv, none},
        {"Sun, 06 Nov 1994 24:00:00 GMT"sv, none},
        {"Sun, 06 Nov 1994 08:60:00 GMT"sv, none},
        {"Sun, 06 Nov 1994 08:49:61 GMT"sv, none},
        {"Sun, 06 Nov 1994 8:49:37 GMT"sv, none},
        {"Sun, 06 Nov 1994 08-49-37 GMT"sv, none},
        {"Sun, 06 Nov 1994 08:49:37\0GMT"sv, none},
        {"Sun, 06 Nov 1994 08:49:37 GMT\0"sv, none},
        {"Sunday, 06-Nov-1994 08:49:37 GMT"sv, none},
        {"Sunday, 6-Nov-94 08:49:37 GMT"sv, none},
        {"Sun, 06-Nov-94 08:49:37 GMT"sv, none},
        {"Sundae, 06-Nov-94 08:49:37 GMT"sv, none},
        {"Sunday 06-Nov-94 08:49:37 GMT"sv, none},
        {"Sunday, 06 Nov 94 08:49:37 GMT"sv, none},
        {"Sun Nov 6 08:49:37 1994"sv, none},
        {"Sun Nov  6 08:49:37 94"sv, none},
        {"Sun Nov   6 08:49:37 1994"sv, none},
        {"Sun Nov 6  08:49:37 1994"sv, none},
        {"Sun Nov  x 08:49:37 1994"sv, none},
        {"Sunday Nov  6 08:49:37 1994"sv, none},
    };
    for (const auto& r : rows) {
        SCOPED_TRACE(show(r.in));
        EXPECT_EQ(epoch_ms(parse_http_date(r.in, now)), r.ms);
    }
}

TEST(FeedbackParse, Rfc850Century) {
    // A two-digit year is the latest year with those digits that is no more than 50 years
    // after `now` (RFC 9110 §5.6.7).
    struct row {
        wall_time now;
        std::string_view in;
        int year;
    };
    const row rows[] = {
        {now, "Sunday, 06-Nov-94 08:49:37 GMT"sv, 1994},
        {now, "Thursday, 15-Jan-26 12:00:00 GMT"sv, 2026},
        {now, "Saturday, 01-Jan-00 00:00:00 GMT"sv, 2000},
        {now, "Monday, 01-Jan-70 00:00:00 GMT"sv, 2070},
        {now, "Friday, 01-Jan-75 00:00:00 GMT"sv, 2075},
        {now, "Friday, 06-Nov-76 00:00:00 GMT"sv, 1976}, // 2076-11 is more than 50 years on
        {now, "Friday, 01-Jan-77 00:00:00 GMT"sv, 1977},
        {now, "Friday, 01-Jan-99 00:00:00 GMT"sv, 1999},
        {at(2099, 6, 1), "Friday, 01-Jan-00 00:00:00 GMT"sv, 2100},
        {at(2099, 6, 1), "Friday, 01-Jan-10 00:00:00 GMT"sv, 2110},
        {at(2099, 6, 1), "Friday, 06-Nov-49 00:00:00 GMT"sv, 2049},
        {at(2099, 6, 1), "Friday, 01-Jan-49 00:00:00 GMT"sv, 2149},
        {at(2099, 6, 1), "Friday, 01-Jan-99 00:00:00 GMT"sv, 2099},
        {at(1999, 1, 1), "Friday, 06-Nov-49 00:00:00 GMT"sv, 1949},
        {at(1999, 1, 1), "Friday, 06-Nov-48 00:00:00 GMT"sv, 2048},
        {at(1999, 1, 1), "Friday, 06-Nov-00 00:00:00 GMT"sv, 2000},
        {at(1970, 1, 1), "Friday, 06-Nov-94 00:00:00 GMT"sv, 1994},
        {at(1970, 1, 1), "Friday, 06-Nov-19 00:00:00 GMT"sv, 2019},
        {at(1970, 1, 1), "Friday, 06-Nov-20 00:00:00 GMT"sv, 1920},
        {at(1970, 1, 1), "Friday, 06-Nov-21 00:00:00 GMT"sv, 1921},
    };
    for (const auto& r : rows) {
        SCOPED_TRACE(show(r.in) + " now " + std::to_string(r.now.time_since_epoch().count()));
        const auto parsed = parse_http_date(r.in, r.now);
        ASSERT_TRUE(parsed.has_value());
        const std::chrono::year_month_day ymd{std::chrono::floor<std::chrono::days>(*parsed)};
        EXPECT_EQ(static_cast<int>(ymd.year()), r.year);
        EXPECT_LE(*parsed, r.now + std::chrono::years{50});
    }
    // 29 February is checked in the century chosen: 2000 was a leap year, 2100 will not be.
    EXPECT_EQ(epoch_ms(parse_http_date("Tuesday, 29-Feb-00 00:00:00 GMT"sv, now)),
              epoch_ms(at(2000, 2, 29)));
    EXPECT_EQ(parse_http_date("Monday, 29-Feb-00 00:00:00 GMT"sv, at(2099, 6, 1)), std::nullopt);
    // Absurd "now"s neither crash nor overflow.
    for (const wall_time extreme : {wall_time::min(), wall_time::max(), wall_time{}}) {
        const auto parsed = parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"sv, extreme);
        if (parsed) {
            const std::chrono::year_month_day ymd{std::chrono::floor<std::chrono::days>(*parsed)};
            EXPECT_EQ(static_cast<int>(ymd.year()) % 100, 94);
        }
    }
}

// --- parse_retry_after --------------------------------------------------------------------------

TEST(FeedbackParse, RetryAfter) {
    struct row {
        std::string_view in;
        milliseconds max_delay;
        std::optional<std::int64_t> ms;
    };
    constexpr milliseconds hour = 1h;
    constexpr milliseconds ms_max = milliseconds::max();
    const row rows[] = {
        // delay-seconds.
        {"120"sv, hour, 120'000},
        {"0"sv, hour, 0},
        {"000"sv, hour, 0},
        {" 5 "sv, hour, 5'000},
        {"\t5"sv, hour, 5'000},
        {"3600"sv, hour, 3'600'000},
        {"3601"sv, hour, 3'600'000},
        {"1000000000000000000000000000000"sv, hour, 3'600'000},
        {"18446744073709551616"sv, hour, 3'600'000},
        {"1000000000000000000000000000000"sv, ms_max, ms_max.count()},
        {"9223372036854775807"sv, ms_max, ms_max.count()},
        {"9223372036854775"sv, ms_max, 9'223'372'036'854'775'000},
        {"120"sv, 0ms, 0},
        {"120"sv, -1s, 0},
        // HTTP-dates, relative to now (2026-01-15T12:00:00Z).
        {"Thu, 15 Jan 2026 12:00:30 GMT"sv, hour, 30'000},
        {"Thursday, 15-Jan-26 12:00:30 GMT"sv, hour, 30'000},
        {"Thu Jan 15 12:00:30 2026"sv, hour, 30'000},
        {"  Thu, 15 Jan 2026 12:00:30 GMT  "sv, hour, 30'000},
        {"thu, 15 jan 2026 12:30:00 GMT"sv, hour, 1'800'000},
        {"Thu, 15 Jan 2026 12:00:00 GMT"sv, hour, 0}, // now
        {"Thu, 15 Jan 2026 11:59:59 GMT"sv, hour, 0}, // the past
        {"Sun, 06 Nov 1994 08:49:37 GMT"sv, hour, 0},
        {"Sunday, 06-Nov-94 08:49:37 GMT"sv, hour, 0},
        {"Sun Nov  6 08:49:37 1994"sv, hour, 0},
        {"Thu Jan  1 00:00:00 2026"sv, hour, 0},
        {"Mon, 01 Jan 1900 00:00:00 GMT"sv, hour, 0},
        {"Fri, 31 Dec 9999 23:59:59 GMT"sv, hour, 3'600'000}, // the far future, clamped
        {"Fri, 31 Dec 9999 23:59:59 GMT"sv, ms_max, 253'402'300'799'000 - 1'768'478'400'000},
        {"Fri, 16 Jan 2026 12:00:00 GMT"sv, hour, 3'600'000},
        {"Thu, 15 Jan 2026 12:00:30 GMT"sv, -1s, 0},
        // Rejections.
        {""sv, hour, none},
        {"   "sv, hour, none},
        {"-1"sv, hour, none},
        {"+1"sv, hour, none},
        {"-0"sv, hour, none},
        {"1.5"sv, hour, none},
        {"1."sv, hour, none},
        {"1e3"sv, hour, none},
        {"12abc"sv, hour, none},
        {"1 2"sv, hour, none},
        {"0x10"sv, hour, none},
        {"abc"sv, hour, none},
        {"12\0"sv, hour, none},
        {"1s"sv, hour, none},
        {"2026-01-15T12:00:30Z"sv, hour, none},
        {"Thu, 15 Jan 2026 12:00:30 UTC"sv, hour, none},
        {"Thu, 15 Jan 2026 12:00:30 GMT junk"sv, hour, none},
        {"Thu, 30 Feb 2026 12:00:30 GMT"sv, hour, none},
    };
    for (const auto& r : rows) {
        SCOPED_TRACE(show(r.in) + " max " + std::to_string(r.max_delay.count()));
        EXPECT_EQ(count(parse_retry_after(r.in, now, r.max_delay)), r.ms);
    }
}

TEST(FeedbackParse, RetryAfterExtremeNow) {
    // The difference between a date and an absurd "now" must neither overflow nor go
    // negative.
    constexpr milliseconds ms_max = milliseconds::max();
    const auto far = "Fri, 31 Dec 9999 23:59:59 GMT"sv;
    EXPECT_EQ(parse_retry_after(far, wall_time::min(), ms_max), ms_max);
    EXPECT_EQ(parse_retry_after(far, wall_time::min(), 1h), 1h);
    EXPECT_EQ(parse_retry_after(far, wall_time::max(), ms_max), 0ms);
    EXPECT_EQ(parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT"sv, wall_time::max(), ms_max), 0ms);
    EXPECT_EQ(parse_retry_after("120"sv, wall_time::min(), ms_max), 120s);
}

} // namespace

namespace {

// iequals compares eight characters at a time; it must agree with the character-by-character
// definition on any bytes, including non-ASCII ones and '@'/'`', '['/'{' (which differ only
// in bit 0x20 but are not letters).
TEST(FeedbackIequals, AgreesWithTheBytewiseDefinitionOnRandomInput) {
    auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; };
    auto reference = [&](std::string_view a, std::string_view b) {
        if (a.size() != b.size())
            return false;
        for (std::size_t i = 0; i < a.size(); ++i)
            if (lower(a[i]) != lower(b[i]))
                return false;
        return true;
    };
    std::mt19937 rng(7);
    int agreed_equal = 0;
    for (int k = 0; k < 200'000; ++k) {
        const auto n = static_cast<std::size_t>(rng() % 40);
        std::string a, b;
        for (std::size_t i = 0; i < n; ++i) {
            const auto c = static_cast<char>(rng() % 256);
            a += c;
            switch (rng() % 4) {
            case 0:
                b += static_cast<char>(rng() % 256);
                break;
            case 1:
                b += (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c;
                break;
            case 2:
                b += static_cast<char>(c ^ 0x20); // the bit that case flips, on any byte
                break;
            default:
                b += c;
            }
        }
        const bool expected = reference(a, b);
        ASSERT_EQ(rategov::feedback::iequals(a, b), expected) << "case " << k;
        agreed_equal += expected ? 1 : 0;
    }
    EXPECT_GT(agreed_equal, 1000); // the equal case was exercised too
    static_assert(!rategov::feedback::iequals("@[\\]^_@[\\]^_", "`{|}~\x7f`{|}~\x7f"));
}

} // namespace
