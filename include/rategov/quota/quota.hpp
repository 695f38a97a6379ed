/// \file
/// `quota`: a validated statement of a limit — so many tokens per period, with a burst.
#pragma once

#include <chrono>
#include <compare>
#include <concepts>
#include <cstdint>
#include <limits>
#include <ratio>
#include <string>
#include <type_traits>

#include <rategov/config.hpp>

RATEGOV_NAMESPACE_BEGIN

/// A limit: `count` tokens per `period`, of which at most `burst` may be taken at once.
///
/// Made by `per_second`, `per_minute`, `per_hour` or `per`, refined by `with_burst`. All
/// values are validated when the quota is made: a zero or negative count, period or burst,
/// a period longer than 730 days, a rate above 10^9 per second (finer than a nanosecond)
/// or a burst above 2^56 throw `config_error` naming the value.
///
/// **Default burst: the whole period's count.** LLM providers state their token limits per
/// minute ("3.6M prompt tokens per minute"), and one request can carry a large share of that
/// (a 200k-token prompt). A burst of one period's count lets any single request that the
/// provider itself would accept pass, and lets an idle client spend its minute at once, as a
/// per-minute budget allows; in the long run the rate is exact. If the server enforces a
/// sliding window or smooths to a per-second rate, lower it:
/// `per_minute(36'000).with_burst(6'000)` admits at most 6'000 tokens in any instant.
///
/// \code
/// auto prompt = rategov::per_minute(3'600'000);                 // burst 3'600'000
/// auto gen    = rategov::per_minute(36'000).with_burst(6'000);  // at most 10 s' worth at once
/// auto rps    = rategov::per(std::chrono::seconds(10), 50);     // 50 per 10 s
/// \endcode
class quota {
public:
    /// Largest burst (and count) a quota accepts: 2^56, leaving room in the bucket's 62-bit
    /// position for a queue or debt of at least 47 bursts.
    static constexpr std::uint64_t max_burst = std::uint64_t{1} << 56;
    /// Longest period: 730 days.
    static constexpr std::chrono::nanoseconds max_period = std::chrono::hours(24) * 730;

    /// `count` tokens per `period`, burst = `count`. Prefer the named makers below.
    constexpr quota(std::uint64_t count, std::chrono::nanoseconds period)
        : m_count(count)
        , m_period(period)
        , m_burst(count) {
        validate();
    }

    /// The same rate with another burst (1 ≤ burst ≤ 2^56).
    [[nodiscard]] constexpr quota with_burst(std::uint64_t burst) const {
        quota q = *this;
        q.m_burst = burst;
        q.validate();
        return q;
    }

    /// Tokens per period.
    [[nodiscard]] constexpr std::uint64_t count() const noexcept { return m_count; }
    /// The period over which `count()` tokens accrue.
    [[nodiscard]] constexpr std::chrono::nanoseconds period() const noexcept { return m_period; }
    /// The most tokens that can be taken at one instant (the bucket's capacity).
    [[nodiscard]] constexpr std::uint64_t burst() const noexcept { return m_burst; }
    /// The rate in tokens per second, for display.
    [[nodiscard]] constexpr double per_second_value() const noexcept {
        return static_cast<double>(m_count) * 1e9 / static_cast<double>(m_period.count());
    }

    /// Equal when count, period and burst are equal (1 per second ≠ 60 per minute: the
    /// burst differs).
    friend constexpr bool operator==(const quota&, const quota&) = default;

    /// "3600000 per 1min, burst 3600000".
    [[nodiscard]] std::string to_string() const {
        return std::to_string(m_count) + " per " + period_string(m_period) + ", burst " +
               std::to_string(m_burst);
    }

private:
    static std::string period_string(std::chrono::nanoseconds p) {
        using namespace std::chrono;
        if (p % hours(1) == nanoseconds(0))
            return std::to_string(p / hours(1)) + "h";
        if (p % minutes(1) == nanoseconds(0))
            return std::to_string(p / minutes(1)) + "min";
        if (p % seconds(1) == nanoseconds(0))
            return std::to_string(p / seconds(1)) + "s";
        if (p % milliseconds(1) == nanoseconds(0))
            return std::to_string(p / milliseconds(1)) + "ms";
        return std::to_string(p.count()) + "ns";
    }

    constexpr void validate() const {
        if (m_count == 0)
            detail::throw_config_error("quota: count 0 — a limit must allow at least 1 token "
                                       "per period");
        if (m_count > max_burst)
            detail::throw_config_error("quota: count " + std::to_string(m_count) +
                                       " exceeds the largest supported count 2^56");
        if (m_period.count() <= 0)
            detail::throw_config_error("quota: period of " + std::to_string(m_period.count()) +
                                       " ns — the period must be positive");
        if (m_period > max_period)
            detail::throw_config_error("quota: period of " + std::to_string(m_period.count()) +
                                       " ns exceeds 730 days");
        if (m_count > static_cast<std::uint64_t>(m_period.count()))
            detail::throw_config_error(
                "quota: " + std::to_string(m_count) + " per " + std::to_string(m_period.count()) +
                " ns exceeds 10^9 per second, the finest rate rategov resolves (1 per ns)");
        if (m_burst == 0)
            detail::throw_config_error("quota: burst 0 — the burst must be at least 1 token");
        if (m_burst > max_burst)
            detail::throw_config_error("quota: burst " + std::to_string(m_burst) +
                                       " exceeds the largest supported burst 2^56");
        // The bucket's arithmetic holds a full bucket's refill time in 2^56 ns.
        const auto period = static_cast<std::uint64_t>(m_period.count());
        const std::uint64_t ns_per_token = (period + m_count - 1) / m_count;
        if (m_burst > max_burst / ns_per_token)
            detail::throw_config_error(
                "quota: burst " + std::to_string(m_burst) + " at " + std::to_string(m_count) +
                " per " + std::to_string(m_period.count()) +
                " ns takes longer than 2^56 ns (2.28 years) to refill; lower the burst");
    }

    std::uint64_t m_count;
    std::chrono::nanoseconds m_period;
    std::uint64_t m_burst;
};

namespace detail {

/// A duration as its count and unit ("-2 ms", "87673 h", "1.5 s"), for error messages.
template <class Rep, class Period>
[[nodiscard]] std::string duration_string(std::chrono::duration<Rep, Period> d) {
    std::string count;
    if constexpr (std::is_floating_point_v<Rep>)
        count = std::to_string(static_cast<long double>(d.count()));
    else
        count = std::to_string(d.count());
    if constexpr (std::is_same_v<Period, std::nano>)
        return count + " ns";
    else if constexpr (std::is_same_v<Period, std::micro>)
        return count + " us";
    else if constexpr (std::is_same_v<Period, std::milli>)
        return count + " ms";
    else if constexpr (std::is_same_v<Period, std::ratio<1>>)
        return count + " s";
    else if constexpr (std::is_same_v<Period, std::ratio<60>>)
        return count + " min";
    else if constexpr (std::is_same_v<Period, std::ratio<3600>>)
        return count + " h";
    else
        return count + " × " + std::to_string(Period::num) + "/" + std::to_string(Period::den) +
               " s";
}

/// Validates a count given as any integer type (a negative value is an error, not a wrap).
template <std::integral N>
[[nodiscard]] constexpr std::uint64_t checked_count(N n, const char* maker) {
    if constexpr (std::is_signed_v<N>) {
        if (n < 0)
            throw_config_error(std::string(maker) + "(" + std::to_string(n) +
                               "): the count must be positive");
    }
    if (n == 0)
        throw_config_error(std::string(maker) + "(0): the count must be positive");
    return static_cast<std::uint64_t>(n);
}

} // namespace detail

/// `n` tokens per second (burst `n`).
template <std::integral N>
[[nodiscard]] constexpr quota per_second(N n) {
    return quota(detail::checked_count(n, "per_second"), std::chrono::seconds(1));
}

/// `n` tokens per minute (burst `n`).
template <std::integral N>
[[nodiscard]] constexpr quota per_minute(N n) {
    return quota(detail::checked_count(n, "per_minute"), std::chrono::minutes(1));
}

/// `n` tokens per hour (burst `n`).
template <std::integral N>
[[nodiscard]] constexpr quota per_hour(N n) {
    return quota(detail::checked_count(n, "per_hour"), std::chrono::hours(1));
}

/// `n` tokens per `period` (burst `n`). A period longer than 730 days, zero or negative
/// throws `config_error` naming it.
template <class Rep, class Period, std::integral N>
[[nodiscard]] constexpr quota per(std::chrono::duration<Rep, Period> period, N n) {
    using namespace std::chrono;
    const auto count = detail::checked_count(n, "per");
    if (period <= duration<Rep, Period>::zero())
        detail::throw_config_error("per(" + detail::duration_string(period) + ", " +
                                   std::to_string(count) + "): the period must be positive");
    // Compare in floating point so that the check cannot overflow itself.
    if (duration<long double, Period>(period) > duration<long double, std::nano>(quota::max_period))
        detail::throw_config_error("per(" + detail::duration_string(period) + ", " +
                                   std::to_string(count) + "): the period exceeds 730 days");
    if (duration<long double, Period>(period) < duration<long double, std::nano>(1))
        detail::throw_config_error("per(" + detail::duration_string(period) + ", " +
                                   std::to_string(count) +
                                   "): the period is shorter than 1 ns (0 ns when truncated)");
    // Rounded up to whole nanoseconds: a longer period is a lower rate, never a higher one.
    return quota(count, ceil<nanoseconds>(period));
}

RATEGOV_NAMESPACE_END
