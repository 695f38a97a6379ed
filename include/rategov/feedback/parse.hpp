/// \file
/// Allocation-free parsers for the values rate-limited APIs send in response headers:
/// numbers, Go-style durations, RFC 3339 timestamps, HTTP-dates and Retry-After.
///
/// Every parser takes a `std::string_view`, never allocates, never throws, and answers
/// `std::nullopt` for anything it does not fully understand (empty, garbage, trailing junk,
/// negative numbers, impossible dates). Values too large to represent saturate at the
/// caller's bound instead of wrapping: a hostile header can yield "no update" or a clamped
/// value, never a crash or a wild number. Spaces and tabs around the whole value are ignored.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <string_view>

#include <rategov/config.hpp>

RATEGOV_NAMESPACE_BEGIN
namespace feedback {

/// A point in wall-clock time (UTC, Unix epoch), millisecond resolution: what HTTP-dates and
/// RFC 3339 timestamps denote.
using wall_time = std::chrono::time_point<std::chrono::system_clock, std::chrono::milliseconds>;

/// The wall-clock time now, for a profile's `now` argument (dates in headers are wall-clock).
[[nodiscard]] inline wall_time wall_time_now() noexcept {
    return std::chrono::time_point_cast<std::chrono::milliseconds>(
        std::chrono::system_clock::now());
}

/// `s` without leading and trailing spaces and horizontal tabs (HTTP's OWS).
[[nodiscard]] constexpr std::string_view trim(std::string_view s) noexcept;

/// ASCII case-insensitive equality (header names are case-insensitive).
[[nodiscard]] constexpr bool iequals(std::string_view a, std::string_view b) noexcept;

/// A non-negative decimal number — digits, optionally a fraction (`"1.5"`) — times `scale`,
/// truncated toward zero (`parse_decimal("1.5", 1000) == 1500`, `parse_decimal("12")`
/// `== 12`). Surrounding whitespace is allowed. Saturates at `max`. `nullopt` for empty,
/// signs (`"-1"`, `"+1"`), exponents, several dots, or any other character.
[[nodiscard]] constexpr std::optional<std::uint64_t>
parse_decimal(std::string_view s, std::uint64_t scale = 1,
              std::uint64_t max = std::numeric_limits<std::uint64_t>::max()) noexcept;

/// A Go `time.Duration` string as OpenAI sends in `x-ratelimit-reset-*`: a sequence of
/// decimal numbers, each with a unit `h`, `m`, `s`, `ms`, `us` / `µs` (U+00B5 or U+03BC),
/// `ns` — `"1s"`, `"6m0s"`, `"12ms"`, `"1h2m3.5s"`, `"0"` (a bare zero); a fraction is
/// truncated to whole nanoseconds. Saturates at `nanoseconds::max()`. `nullopt` for a sign,
/// a missing unit, an unknown unit or garbage.
[[nodiscard]] constexpr std::optional<std::chrono::nanoseconds>
parse_go_duration(std::string_view s) noexcept;

/// An RFC 3339 timestamp as Anthropic sends in `anthropic-ratelimit-*-reset`:
/// `"2026-11-24T10:00:05Z"`, with optional fractional seconds (kept to milliseconds), `t`/`z`
/// in lower case, a space for `T`, or an offset `+02:00` / `-05:30`. A leap second (`:60`)
/// reads as the next second. `nullopt` for impossible dates (month 13, Feb 30, hour 24) and
/// garbage.
[[nodiscard]] constexpr std::optional<wall_time> parse_rfc3339(std::string_view s) noexcept;

/// An HTTP-date (RFC 9110 §5.6.7) in any of its three forms: IMF-fixdate
/// `"Sun, 06 Nov 1994 08:49:37 GMT"`, obsolete RFC 850 `"Sunday, 06-Nov-94 08:49:37 GMT"`
/// (a two-digit year more than 50 years in the future of `now` is taken as the past
/// century) and asctime `"Sun Nov  6 08:49:37 1994"`. Day and month names are matched
/// case-insensitively; the day name is not checked against the date (senders get it wrong).
/// The zone must be `GMT` (RFC 9110 forbids others): `"... +0200"` or `"... PST"` give
/// `nullopt`. A leap second (`:60`) reads as the next second.
[[nodiscard]] constexpr std::optional<wall_time> parse_http_date(std::string_view s,
                                                                 wall_time now) noexcept;

/// `Retry-After` (RFC 9110 §10.2.3): delay-seconds (`"120"`) or an HTTP-date, as the delay
/// from `now`, clamped to `[0, max_delay]` (a date in the past is 0; 10^30 seconds is
/// `max_delay`). `nullopt` for garbage, negative numbers and fractions (delay-seconds is a
/// non-negative integer).
[[nodiscard]] constexpr std::optional<std::chrono::milliseconds>
parse_retry_after(std::string_view s, wall_time now, std::chrono::milliseconds max_delay) noexcept;

} // namespace feedback
RATEGOV_NAMESPACE_END

#include <rategov/feedback/detail/parse_impl.hpp>
