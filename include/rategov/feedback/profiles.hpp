/// \file
/// Feedback profiles: turn one response's status and headers into what the governor needs —
/// the limits the server reports per metric, what remains, when it resets, a retry hint, and
/// the kind of outcome. Header access goes through a lookup you supply, so any HTTP library
/// fits without a dependency. Nothing here allocates or throws; every profile's `read` is
/// `noexcept` (except `with_classifier`'s, which throws what its classifier throws), so a
/// lookup that throws ends the program (`std::terminate`): make it non-throwing
/// (`header_list` is).
#pragma once

#include <array>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string_view>
#include <utility>

#include <rategov/config.hpp>
#include <rategov/feedback/parse.hpp>
#include <rategov/governor/metrics.hpp>

RATEGOV_NAMESPACE_BEGIN
namespace feedback {

/// What a response says about the request and the account.
enum class outcome : std::uint8_t {
    success,         ///< 2xx
    over_limit,      ///< 429, or an over-limit flag: the account's limit — slow down, retry
    load_shed,       ///< 503 / 529: the provider sheds load — back off and retry; NOT a limit
    quota_exhausted, ///< out of credit (OpenAI `insufficient_quota`): never retry
    fatal,           ///< other 4xx (bad request, auth, not found): never retry
    retryable,       ///< 408, 409, 425, other 5xx, and transport errors: retry with backoff
};

/// A header lookup: `lookup(name)` returns the value of header `name` (matched
/// case-insensitively by the lookup), or `nullopt` when absent. Adapt your HTTP library's
/// response in one lambda:
/// \code
/// auto lookup = [&](std::string_view name) -> std::optional<std::string_view> {
///     if (auto it = resp.headers.find(std::string(name)); it != resp.headers.end())
///         return it->second;
///     return std::nullopt;
/// };
/// \endcode
template <class L>
concept header_lookup = requires(const L& lookup, std::string_view name) {
    { lookup(name) } -> std::convertible_to<std::optional<std::string_view>>;
};

/// Whether a header named `raw` (as received: surrounding blanks allowed) is `name`,
/// case-insensitively. Cheap rejections first: the length (trimming only a name whose length
/// differs, which is rare), then the last character — rate-limit headers share long prefixes
/// ("x-ratelimit-limit-tokens-…") and differ at the end.
[[nodiscard]] constexpr bool header_name_matches(std::string_view raw,
                                                 std::string_view name) noexcept {
    std::string_view n = raw;
    if (n.size() < name.size()) // trimming only shortens: cannot match
        return false;
    if (n.size() > name.size() && (n = trim(n)).size() != name.size())
        return false;
    return name.empty() ||
           (parse_detail::ascii_lower(n.back()) == parse_detail::ascii_lower(name.back()) &&
            iequals(n, name));
}

/// A ready lookup over (name, value) pairs, e.g. headers collected from libcurl's header
/// callback: names match case-insensitively; with duplicates, the first wins. Holds a view:
/// the pairs must outlive it.
class header_list {
public:
    /// One header: (name as received, value).
    using entry = std::pair<std::string_view, std::string_view>;
    constexpr header_list() = default;
    /// A lookup over `entries` (viewed, not copied).
    constexpr explicit header_list(std::span<const entry> entries) noexcept
        : m_entries(entries) {}
    /// The value of the first header named `name` (case-insensitively), or `nullopt`.
    [[nodiscard]] constexpr std::optional<std::string_view>
    operator()(std::string_view name) const noexcept {
        for (const auto& [raw, v] : m_entries)
            if (header_name_matches(raw, name))
                return v;
        return std::nullopt;
    }

private:
    std::span<const entry> m_entries;
};

/// The unit a limit header counts in.
enum class per : std::uint8_t { second, minute };

/// What a response reports about one metric. Absent fields were not sent (or not
/// understood).
struct metric_report {
    std::optional<std::uint64_t> limit;            ///< the limit in force: `limit` per `period`
    std::chrono::nanoseconds period{0};            ///< the period of `limit` (1 s or 1 min)
    std::optional<std::uint64_t> remaining;        ///< tokens left in the current window
    std::optional<std::chrono::nanoseconds> reset; ///< time until the window refills
};

/// Everything a profile reads from one response, per metric of the governor (`metrics[i]`
/// for the i-th tag of its `metrics<...>`).
template <std::size_t N>
struct response_feedback {
    /// How the response is classified (`retryable` until a profile has read one).
    outcome kind = outcome::retryable;
    /// What the response reports per metric, in the order of the governor's tags.
    std::array<metric_report, N> metrics{};
    std::optional<std::chrono::milliseconds> retry_after; ///< server hint, ≤ max_retry_after
    std::optional<bool> should_retry;                     ///< an explicit server verdict
};

/// The outcome of an HTTP status alone: 2xx success; 429 over_limit; 503 and 529
/// load_shed; 408, 409, 425 and other 5xx retryable; other 4xx fatal; anything else
/// (1xx, 3xx, out of range) retryable.
[[nodiscard]] constexpr outcome classify_status(int status) noexcept {
    if (status >= 200 && status < 300)
        return outcome::success;
    if (status == 429)
        return outcome::over_limit;
    if (status == 503 || status == 529)
        return outcome::load_shed;
    if (status == 408 || status == 409 || status == 425)
        return outcome::retryable;
    if (status >= 400 && status < 500)
        return outcome::fatal;
    return outcome::retryable;
}

namespace profile_detail {

/// The period a limit counted `per u` refers to.
[[nodiscard]] constexpr std::chrono::nanoseconds period_of(per u) noexcept {
    return u == per::second ? std::chrono::nanoseconds(std::chrono::seconds(1))
                            : std::chrono::nanoseconds(std::chrono::minutes(1));
}

/// The value of header `name`, trimmed, or `nullopt` when absent.
template <header_lookup L>
[[nodiscard]] constexpr std::optional<std::string_view> header(const L& headers,
                                                               std::string_view name) noexcept {
    std::optional<std::string_view> v = headers(name);
    if (!v)
        return std::nullopt;
    return trim(*v);
}

/// A count (limit or remaining): a non-negative decimal, a fraction truncated. A value that
/// saturates `uint64_t` (10^30) is absurd: no update rather than a wild limit.
[[nodiscard]] constexpr std::optional<std::uint64_t>
count(std::optional<std::string_view> v) noexcept {
    if (!v)
        return std::nullopt;
    const auto n = parse_decimal(*v);
    if (!n || *n == std::numeric_limits<std::uint64_t>::max())
        return std::nullopt;
    return n;
}

/// `max` as a non-negative count of its own unit.
template <class Rep, class Period>
[[nodiscard]] constexpr std::uint64_t nonnegative(std::chrono::duration<Rep, Period> max) noexcept {
    return max.count() > 0 ? static_cast<std::uint64_t>(max.count()) : 0;
}

/// A duration `d` clamped to `[0, max]`.
[[nodiscard]] constexpr std::chrono::nanoseconds clamp(std::chrono::nanoseconds d,
                                                       std::chrono::nanoseconds max) noexcept {
    if (max < std::chrono::nanoseconds(0))
        max = std::chrono::nanoseconds(0);
    if (d < std::chrono::nanoseconds(0))
        return std::chrono::nanoseconds(0);
    return d < max ? d : max;
}

/// The time from `now` until `t`, clamped to `[0, max]`: a past instant is 0, and the
/// arithmetic never overflows (the difference is compared in milliseconds first).
[[nodiscard]] constexpr std::chrono::nanoseconds until(wall_time t, wall_time now,
                                                       std::chrono::nanoseconds max) noexcept {
    if (max < std::chrono::nanoseconds(0))
        max = std::chrono::nanoseconds(0);
    if (t <= now)
        return std::chrono::nanoseconds(0);
    // t > now: the difference is positive, but may not fit in a signed count (now near the
    // minimum, t near the maximum); compare in unsigned arithmetic.
    const auto udiff = static_cast<std::uint64_t>(t.time_since_epoch().count()) -
                       static_cast<std::uint64_t>(now.time_since_epoch().count());
    const auto umax =
        static_cast<std::uint64_t>(std::chrono::floor<std::chrono::milliseconds>(max).count());
    if (udiff > umax)
        return max;
    const std::chrono::milliseconds diff(static_cast<std::int64_t>(udiff));
    const std::chrono::nanoseconds d = diff;
    return d < max ? d : max;
}

/// A decimal amount of `unit`s (fraction allowed) as nanoseconds, clamped to `[0, max]`.
[[nodiscard]] constexpr std::optional<std::chrono::nanoseconds>
decimal_duration(std::string_view v, std::uint64_t ns_per_unit,
                 std::chrono::nanoseconds max) noexcept {
    const auto n = parse_decimal(v, ns_per_unit, nonnegative(max));
    if (!n)
        return std::nullopt;
    return std::chrono::nanoseconds(static_cast<std::chrono::nanoseconds::rep>(*n));
}

/// `retry-after-ms` style: decimal milliseconds, possibly fractional, rounded up to whole
/// milliseconds (waiting a little longer is safe, a little shorter is not; digits beyond
/// nanoseconds are dropped), clamped to `[0, max]`.
[[nodiscard]] constexpr std::optional<std::chrono::milliseconds>
retry_after_ms(std::optional<std::string_view> v, std::chrono::milliseconds max) noexcept {
    if (!v)
        return std::nullopt;
    const std::uint64_t max_ms = nonnegative(max);
    constexpr std::uint64_t ns_per_ms = 1'000'000;
    const std::uint64_t cap = max_ms > std::numeric_limits<std::uint64_t>::max() / ns_per_ms
                                  ? std::numeric_limits<std::uint64_t>::max()
                                  : max_ms * ns_per_ms;
    const auto ns = parse_decimal(*v, ns_per_ms, cap);
    if (!ns)
        return std::nullopt;
    std::uint64_t ms = *ns / ns_per_ms + (*ns % ns_per_ms != 0 ? 1 : 0);
    if (ms > max_ms)
        ms = max_ms;
    return std::chrono::milliseconds(static_cast<std::chrono::milliseconds::rep>(ms));
}

/// `Retry-After`: delay-seconds or HTTP-date, clamped to `[0, max]`.
[[nodiscard]] constexpr std::optional<std::chrono::milliseconds>
retry_after(std::optional<std::string_view> v, wall_time now,
            std::chrono::milliseconds max) noexcept {
    if (!v)
        return std::nullopt;
    if (max < std::chrono::milliseconds(0))
        max = std::chrono::milliseconds(0);
    return parse_retry_after(*v, now, max);
}

/// `true` / `false` (case-insensitive), else `nullopt`.
[[nodiscard]] constexpr std::optional<bool> boolean(std::optional<std::string_view> v) noexcept {
    if (!v)
        return std::nullopt;
    if (iequals(*v, "true"))
        return true;
    if (iequals(*v, "false"))
        return false;
    return std::nullopt;
}

/// Whether a flag header says yes (`yes`, `true` or `1`, case-insensitive).
[[nodiscard]] constexpr bool flag_set(std::optional<std::string_view> v) noexcept {
    return v && (iequals(*v, "yes") || iequals(*v, "true") || *v == "1");
}

/// Reads a limit and a remaining count into `m`; sets `m.period` when either was reported.
template <header_lookup L>
constexpr void read_counts(metric_report& m, const L& headers, std::string_view limit_name,
                           std::string_view remaining_name, per unit) noexcept {
    if (auto n = count(header(headers, limit_name)))
        m.limit = n;
    if (auto n = count(header(headers, remaining_name)))
        m.remaining = n;
    if (m.limit || m.remaining)
        m.period = period_of(unit);
}

/// Whether `Metrics` has `Tag`, and if so its report in `fb`.
template <class Metrics, class Tag, std::size_t N>
[[nodiscard]] constexpr metric_report* report_of(response_feedback<N>& fb) noexcept {
    if constexpr (Metrics::template contains<Tag>)
        return &fb.metrics[Metrics::template index_of<Tag>];
    else
        return nullptr;
}

/// The retry hints the OpenAI and Anthropic SDKs honour: `retry-after-ms` (decimal ms),
/// else `retry-after` (seconds or HTTP-date), both clamped to `max`; and `x-should-retry`.
template <header_lookup L, std::size_t N>
constexpr void read_sdk_retry_hints(response_feedback<N>& fb, const L& headers, wall_time now,
                                    std::chrono::milliseconds max) noexcept {
    fb.retry_after = retry_after_ms(header(headers, "retry-after-ms"), max);
    if (!fb.retry_after)
        fb.retry_after = retry_after(header(headers, "retry-after"), now, max);
    fb.should_retry = boolean(header(headers, "x-should-retry"));
}

} // namespace profile_detail

/// The default bound on a server's retry hint (the OpenAI SDKs honour up to 60 s).
inline constexpr std::chrono::milliseconds default_max_retry_after{60'000};

/// The default bound on a reported reset time: longer resets (or absurd ones) are clamped.
inline constexpr std::chrono::nanoseconds default_max_reset{std::chrono::hours(24)};

/// The bounds every profile applies to what a server says about time: a retry hint is
/// clamped to `max_retry_after`, a reported reset to `max_reset`. Absurd or hostile values
/// therefore reach the governor as these bounds at most.
struct profile_bounds {
    /// Bound on retry hints (`retry-after-ms`, `Retry-After`).
    std::chrono::milliseconds max_retry_after = default_max_retry_after;
    /// Bound on a reported reset.
    std::chrono::nanoseconds max_reset = default_max_reset;
};

/// Fireworks (the seed provider): the effective adaptive limits per token metric, remaining
/// tokens, request limits, the over-limit flag, and `Retry-After`.
///
/// Reads `x-ratelimit-limit-tokens-prompt` → `metric::total_prompt`,
/// `x-ratelimit-limit-tokens-cache-adjusted-prompt` → `metric::uncached_prompt`,
/// `x-ratelimit-limit-tokens-generated` → `metric::generated` (limits per `tokens_unit`);
/// `x-ratelimit-remaining-tokens-{prompt,cache-adjusted-prompt,generated}` → remaining;
/// `x-ratelimit-{limit,remaining}-requests` → `metric::requests` (per `requests_unit`). A
/// metric the governor lacks is skipped; a value that does not parse (empty, garbage,
/// negative, 10^30) gives no update. `x-ratelimit-over-limit: yes` makes the outcome
/// `over_limit` even on a 2xx (but a fatal 4xx stays fatal). `Retry-After` is clamped to
/// `max_retry_after`. No reset header is sent: `reset` stays empty.
/// \code
/// rategov::feedback::fireworks_profile<llm> fw;
/// fw.tokens_unit = rategov::feedback::per::minute; // if your account reports per minute
/// auto fb = fw.read(resp.status, rategov::feedback::header_list(pairs), now);
/// \endcode
template <class Metrics>
class fireworks_profile : public profile_bounds {
public:
    /// The unit of the token limit headers: the documentation says per second; older
    /// observations suggest per minute. Changes `metric_report::period` only.
    per tokens_unit = per::second;
    /// The unit of the request limit headers.
    per requests_unit = per::minute;

    /// Reads one response. `error_code` is unused (kept for a uniform signature).
    /// \code
    /// auto fb = fw.read(429, lookup, now); // fb.kind == outcome::over_limit
    /// \endcode
    template <header_lookup L>
    [[nodiscard]] constexpr response_feedback<Metrics::size>
    read(int status, const L& headers, wall_time now,
         std::string_view error_code = {}) const noexcept {
        static_cast<void>(error_code);
        response_feedback<Metrics::size> fb;
        fb.kind = classify_status(status);
        if (auto* m = profile_detail::report_of<Metrics, metric::requests>(fb))
            profile_detail::read_counts(*m, headers, "x-ratelimit-limit-requests",
                                        "x-ratelimit-remaining-requests", requests_unit);
        if (auto* m = profile_detail::report_of<Metrics, metric::total_prompt>(fb))
            profile_detail::read_counts(*m, headers, "x-ratelimit-limit-tokens-prompt",
                                        "x-ratelimit-remaining-tokens-prompt", tokens_unit);
        if (auto* m = profile_detail::report_of<Metrics, metric::uncached_prompt>(fb))
            profile_detail::read_counts(
                *m, headers, "x-ratelimit-limit-tokens-cache-adjusted-prompt",
                "x-ratelimit-remaining-tokens-cache-adjusted-prompt", tokens_unit);
        if (auto* m = profile_detail::report_of<Metrics, metric::generated>(fb))
            profile_detail::read_counts(*m, headers, "x-ratelimit-limit-tokens-generated",
                                        "x-ratelimit-remaining-tokens-generated", tokens_unit);
        if (fb.kind != outcome::fatal &&
            profile_detail::flag_set(profile_detail::header(headers, "x-ratelimit-over-limit")))
            fb.kind = outcome::over_limit;
        fb.retry_after = profile_detail::retry_after(profile_detail::header(headers, "retry-after"),
                                                     now, max_retry_after);
        return fb;
    }
};

/// OpenAI-style responses: `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`, retry
/// hints, `x-should-retry`, and the `insufficient_quota` error.
///
/// Requests map to `metric::requests`, tokens to `TokensTag` (OpenAI counts prompt and
/// completion tokens together, so `metric::total_prompt` by default); limits are per minute;
/// resets are Go durations (`"6m0s"`, `"12ms"`), clamped to `max_reset`. `retry-after-ms`
/// (decimal milliseconds, rounded up) takes precedence over `retry-after` (seconds or
/// HTTP-date); both clamp to `max_retry_after`. `x-should-retry: true|false` is reported as
/// `should_retry` (the outcome still follows the status). `error_code ==
/// "insufficient_quota"` gives `quota_exhausted` and `should_retry == false` whatever the
/// status and headers.
/// \code
/// rategov::feedback::openai_profile<llm> oa;
/// auto fb = oa.read(429, lookup, now, body_error_code);
/// if (fb.kind == rategov::feedback::outcome::quota_exhausted) stop();
/// \endcode
template <class Metrics, class TokensTag = metric::total_prompt>
class openai_profile : public profile_bounds {
public:
    /// Reads one response; `error_code` is the body's `error.code` if you parsed it.
    /// \code
    /// auto fb = oa.read(200, rategov::feedback::header_list(pairs), now);
    /// \endcode
    template <header_lookup L>
    [[nodiscard]] constexpr response_feedback<Metrics::size>
    read(int status, const L& headers, wall_time now,
         std::string_view error_code = {}) const noexcept {
        response_feedback<Metrics::size> fb;
        fb.kind = classify_status(status);
        if (auto* m = profile_detail::report_of<Metrics, metric::requests>(fb))
            read_metric(*m, headers, "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests",
                        "x-ratelimit-reset-requests");
        if (auto* m = profile_detail::report_of<Metrics, TokensTag>(fb))
            read_metric(*m, headers, "x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens",
                        "x-ratelimit-reset-tokens");
        profile_detail::read_sdk_retry_hints(fb, headers, now, max_retry_after);
        if (error_code == "insufficient_quota") {
            fb.kind = outcome::quota_exhausted;
            fb.should_retry = false;
        }
        return fb;
    }

private:
    template <header_lookup L>
    constexpr void read_metric(metric_report& m, const L& headers, std::string_view limit_name,
                               std::string_view remaining_name,
                               std::string_view reset_name) const noexcept {
        profile_detail::read_counts(m, headers, limit_name, remaining_name, per::minute);
        if (auto v = profile_detail::header(headers, reset_name))
            if (auto d = parse_go_duration(*v))
                m.reset = profile_detail::clamp(*d, max_reset);
    }
};

/// Anthropic-style responses:
/// `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}`
/// and `retry-after`.
///
/// `requests` → `metric::requests`, `input-tokens` → `metric::uncached_prompt` (cache reads
/// do not count toward it), `output-tokens` → `metric::generated`, `tokens` →
/// `metric::total_prompt`; limits per minute. Resets are RFC 3339 instants, reported as the
/// time from `now` (a past reset is 0), clamped to `max_reset`. 529 (overloaded) is
/// `load_shed`. Retry hints as the SDK reads them: `retry-after-ms`, else `retry-after`,
/// clamped to `max_retry_after`; `x-should-retry` into `should_retry`.
/// \code
/// rategov::feedback::anthropic_profile<llm> an;
/// auto fb = an.read(529, lookup, now); // fb.kind == outcome::load_shed
/// \endcode
template <class Metrics>
class anthropic_profile : public profile_bounds {
public:
    /// Reads one response. `error_code` is unused (kept for a uniform signature).
    /// \code
    /// auto fb = an.read(200, rategov::feedback::header_list(pairs), now);
    /// \endcode
    template <header_lookup L>
    [[nodiscard]] constexpr response_feedback<Metrics::size>
    read(int status, const L& headers, wall_time now,
         std::string_view error_code = {}) const noexcept {
        static_cast<void>(error_code);
        response_feedback<Metrics::size> fb;
        fb.kind = classify_status(status);
        if (auto* m = profile_detail::report_of<Metrics, metric::requests>(fb))
            read_metric(*m, headers, now, "anthropic-ratelimit-requests-limit",
                        "anthropic-ratelimit-requests-remaining",
                        "anthropic-ratelimit-requests-reset");
        if (auto* m = profile_detail::report_of<Metrics, metric::total_prompt>(fb))
            read_metric(*m, headers, now, "anthropic-ratelimit-tokens-limit",
                        "anthropic-ratelimit-tokens-remaining", "anthropic-ratelimit-tokens-reset");
        if (auto* m = profile_detail::report_of<Metrics, metric::uncached_prompt>(fb))
            read_metric(*m, headers, now, "anthropic-ratelimit-input-tokens-limit",
                        "anthropic-ratelimit-input-tokens-remaining",
                        "anthropic-ratelimit-input-tokens-reset");
        if (auto* m = profile_detail::report_of<Metrics, metric::generated>(fb))
            read_metric(*m, headers, now, "anthropic-ratelimit-output-tokens-limit",
                        "anthropic-ratelimit-output-tokens-remaining",
                        "anthropic-ratelimit-output-tokens-reset");
        profile_detail::read_sdk_retry_hints(fb, headers, now, max_retry_after);
        return fb;
    }

private:
    template <header_lookup L>
    constexpr void read_metric(metric_report& m, const L& headers, wall_time now,
                               std::string_view limit_name, std::string_view remaining_name,
                               std::string_view reset_name) const noexcept {
        profile_detail::read_counts(m, headers, limit_name, remaining_name, per::minute);
        if (auto v = profile_detail::header(headers, reset_name))
            if (auto t = parse_rfc3339(*v))
                m.reset = profile_detail::until(*t, now, max_reset);
    }
};

/// Any provider: the outcome of the status code and the `Retry-After` hint, nothing else.
/// \code
/// rategov::feedback::retry_after_profile<llm> ra;
/// auto fb = ra.read(503, lookup, now); // load_shed, retry_after from the header if sent
/// \endcode
template <class Metrics>
class retry_after_profile : public profile_bounds {
public:
    /// Reads one response: `kind` from the status, `retry_after` from `Retry-After`
    /// (delay-seconds or HTTP-date relative to `now`). `error_code` is unused.
    /// \code
    /// auto fb = ra.read(429, lookup, now);
    /// \endcode
    template <header_lookup L>
    [[nodiscard]] constexpr response_feedback<Metrics::size>
    read(int status, const L& headers, wall_time now,
         std::string_view error_code = {}) const noexcept {
        static_cast<void>(error_code);
        response_feedback<Metrics::size> fb;
        fb.kind = classify_status(status);
        fb.retry_after = profile_detail::retry_after(profile_detail::header(headers, "retry-after"),
                                                     now, max_retry_after);
        return fb;
    }
};

/// Which field of a `metric_report` a custom header fills.
enum class field : std::uint8_t {
    limit,     ///< the limit per period (a decimal count)
    remaining, ///< what is left in the window (a decimal count)
    reset,     ///< time until the window refills (read per `value_format`)
};

/// How a custom header's value is written. Limits and remaining counts are always decimal
/// counts (the format matters for `field::reset` only).
enum class value_format : std::uint8_t {
    integer,      ///< a decimal count; for a reset, seconds (like `seconds`)
    go_duration,  ///< a Go duration: `"1s"`, `"6m0s"`, `"12ms"`
    seconds,      ///< decimal seconds, fraction allowed: `"1.5"`
    milliseconds, ///< decimal milliseconds, fraction allowed: `"250"`
    rfc3339,      ///< an RFC 3339 instant: `"2026-11-24T10:00:05Z"` (time from `now`)
    unix_seconds, ///< a Unix timestamp in seconds (GitHub style; time from `now`)
};

/// One header of a custom profile: header `name` fills field `what` of the report of the
/// `metric`-th metric (index in the governor's `metrics<...>`), counted `per unit`, written
/// in `format`. Build one with `custom_profile<M>::rule<Tag>(...)`.
/// \code
/// rategov::feedback::header_rule r{"x-gen-limit", 3, field::limit, per::minute,
///                                  value_format::integer};
/// \endcode
struct header_rule {
    std::string_view name;                       ///< header name (case-insensitive lookup)
    std::size_t metric = 0;                      ///< index of the metric in `metrics<...>`
    field what = field::limit;                   ///< which field the value fills
    per unit = per::minute;                      ///< unit of a limit / remaining count
    value_format format = value_format::integer; ///< how the value is written
};

/// A profile from a table of `header_rule`s, for any provider: map header names to metrics
/// in a few lines, and choose which retry headers to honour.
///
/// Rules are applied in order; the first rule that yields a field wins (later rules for the
/// same metric and field are fallbacks). A rule whose metric index is out of range, whose
/// header is absent, or whose value does not parse gives no update. Counts that saturate
/// (10^30) give no update; resets clamp to `max_reset`; retry hints to `max_retry_after`.
/// The profile holds a view: the rule table must outlive it.
/// \code
/// using profile = rategov::feedback::custom_profile<llm>;
/// using rategov::feedback::field; using rategov::feedback::per;
/// static constexpr rategov::feedback::header_rule rules[] = {
///     profile::rule<rategov::metric::generated>("x-my-gen-limit", field::limit, per::minute),
///     profile::rule<rategov::metric::generated>("x-my-gen-left", field::remaining),
///     profile::rule<rategov::metric::generated>("x-my-gen-reset", field::reset, per::minute,
///                                               rategov::feedback::value_format::seconds),
/// };
/// profile p{rules};
/// p.retry_after_ms_header = "x-amz-retry-after";
/// auto fb = p.read(status, lookup, now);
/// \endcode
template <class Metrics>
class custom_profile : public profile_bounds {
public:
    /// The header rules, applied in order.
    std::span<const header_rule> rules{};
    /// Header read as `Retry-After` (delay-seconds or HTTP-date); empty: none.
    std::string_view retry_after_header = "retry-after";
    /// Header read as decimal milliseconds, preferred to `retry_after_header` when it
    /// parses (e.g. `"retry-after-ms"`, `"x-amz-retry-after"`); empty: none.
    std::string_view retry_after_ms_header{};
    /// Header read as `true` / `false` into `should_retry` (e.g. `"x-should-retry"`); empty:
    /// none.
    std::string_view should_retry_header{};
    /// Header whose value `yes` / `true` / `1` makes the outcome `over_limit` (unless the
    /// status is a fatal 4xx), e.g. `"x-ratelimit-over-limit"`; empty: none.
    std::string_view over_limit_header{};
    /// Error code (as passed to `read`) meaning the account is out of credit: outcome
    /// `quota_exhausted`, `should_retry == false`; empty: none.
    std::string_view quota_error_code{};

    /// No rules: status and `Retry-After` only until `rules` is set.
    constexpr custom_profile() = default;
    /// A profile over `r`, which must outlive it.
    /// \code
    /// rategov::feedback::custom_profile<llm> p{rules};
    /// \endcode
    constexpr explicit custom_profile(std::span<const header_rule> r) noexcept
        : rules(r) {}

    /// A rule for metric `Tag` of `Metrics` (a compile error if the governor lacks it).
    /// The format defaults to `integer` for counts and `seconds` for a reset.
    /// \code
    /// auto r = custom_profile<llm>::rule<rategov::metric::generated>(
    ///     "x-my-gen-limit", field::limit, per::minute);
    /// \endcode
    template <class Tag>
    [[nodiscard]] static constexpr header_rule rule(std::string_view name, field what,
                                                    per unit = per::minute) noexcept {
        return rule<Tag>(name, what, unit,
                         what == field::reset ? value_format::seconds : value_format::integer);
    }
    /// A rule for metric `Tag` with an explicit value format.
    /// \code
    /// auto r = custom_profile<llm>::rule<rategov::metric::requests>(
    ///     "x-req-reset", field::reset, per::minute, value_format::go_duration);
    /// \endcode
    template <class Tag>
    [[nodiscard]] static constexpr header_rule rule(std::string_view name, field what, per unit,
                                                    value_format format) noexcept {
        static_assert(Metrics::template contains<Tag>,
                      "rategov: custom_profile::rule names a metric the governor does not "
                      "have; add the tag to rategov::metrics<...> or drop the rule.");
        return header_rule{name, Metrics::template index_of<Tag>, what, unit, format};
    }

    /// Reads one response through the rules and retry settings; `error_code` is compared
    /// with `quota_error_code`.
    /// \code
    /// auto fb = p.read(429, rategov::feedback::header_list(pairs), now);
    /// \endcode
    template <header_lookup L>
    [[nodiscard]] constexpr response_feedback<Metrics::size>
    read(int status, const L& headers, wall_time now,
         std::string_view error_code = {}) const noexcept {
        response_feedback<Metrics::size> fb;
        fb.kind = classify_status(status);
        for (const header_rule& r : rules) {
            if (r.metric >= Metrics::size)
                continue;
            metric_report& m = fb.metrics[r.metric];
            switch (r.what) {
            case field::limit:
                if (!m.limit)
                    if (auto n = profile_detail::count(profile_detail::header(headers, r.name))) {
                        m.limit = n;
                        m.period = profile_detail::period_of(r.unit);
                    }
                break;
            case field::remaining:
                if (!m.remaining)
                    if (auto n = profile_detail::count(profile_detail::header(headers, r.name))) {
                        m.remaining = n;
                        if (!m.limit)
                            m.period = profile_detail::period_of(r.unit);
                    }
                break;
            case field::reset:
                if (!m.reset)
                    if (auto v = profile_detail::header(headers, r.name))
                        m.reset = reset_value(*v, r.format, now);
                break;
            }
        }
        if (!over_limit_header.empty() && fb.kind != outcome::fatal &&
            profile_detail::flag_set(profile_detail::header(headers, over_limit_header)))
            fb.kind = outcome::over_limit;
        if (!retry_after_ms_header.empty())
            fb.retry_after = profile_detail::retry_after_ms(
                profile_detail::header(headers, retry_after_ms_header), max_retry_after);
        if (!fb.retry_after && !retry_after_header.empty())
            fb.retry_after = profile_detail::retry_after(
                profile_detail::header(headers, retry_after_header), now, max_retry_after);
        if (!should_retry_header.empty())
            fb.should_retry =
                profile_detail::boolean(profile_detail::header(headers, should_retry_header));
        if (!quota_error_code.empty() && error_code == quota_error_code) {
            fb.kind = outcome::quota_exhausted;
            fb.should_retry = false;
        }
        return fb;
    }

private:
    [[nodiscard]] constexpr std::optional<std::chrono::nanoseconds>
    reset_value(std::string_view v, value_format format, wall_time now) const noexcept {
        constexpr std::uint64_t ns_per_ms = 1'000'000;
        constexpr std::uint64_t ns_per_s = 1'000'000'000;
        switch (format) {
        case value_format::integer:
        case value_format::seconds:
            return profile_detail::decimal_duration(v, ns_per_s, max_reset);
        case value_format::milliseconds:
            return profile_detail::decimal_duration(v, ns_per_ms, max_reset);
        case value_format::go_duration:
            if (auto d = parse_go_duration(v))
                return profile_detail::clamp(*d, max_reset);
            return std::nullopt;
        case value_format::rfc3339:
            if (auto t = parse_rfc3339(v))
                return profile_detail::until(*t, now, max_reset);
            return std::nullopt;
        case value_format::unix_seconds: {
            // Seconds since the epoch, as milliseconds; bounded so the time point cannot
            // overflow (anything that large is a reset far in the future: clamped).
            constexpr std::uint64_t ms_per_s = 1000;
            constexpr auto max_ms =
                static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max() / 4);
            if (auto ms = parse_decimal(v, ms_per_s, max_ms))
                return profile_detail::until(
                    wall_time(std::chrono::milliseconds(static_cast<std::int64_t>(*ms))), now,
                    max_reset);
            return std::nullopt;
        }
        }
        return std::nullopt;
    }
};

/// A profile whose classification the user overrides: reads with `Profile`, then lets
/// `classify(status, the profile's outcome, error_code)` decide the outcome. Everything
/// else (limits, remaining, hints) is the profile's.
/// \code
/// auto profile = rategov::feedback::with_classifier(
///     rategov::feedback::fireworks_profile<llm>{},
///     [](int status, outcome o, std::string_view) {
///         return status == 400 ? outcome::retryable : o; // a gateway's transient 400s
///     });
/// \endcode
template <class Profile, class Classify>
class with_classifier {
public:
    /// Reads with `profile` and classifies with `classify`, both held by value.
    constexpr with_classifier(Profile profile, Classify classify)
        : m_profile(std::move(profile))
        , m_classify(std::move(classify)) {}

    /// The wrapped profile's `read`, with `kind` replaced by
    /// `classify(status, kind, error_code)`. Not `noexcept`: it throws what `classify` throws.
    template <header_lookup L>
    [[nodiscard]] constexpr auto read(int status, const L& headers, wall_time now,
                                      std::string_view error_code = {}) const {
        auto fb = m_profile.read(status, headers, now, error_code);
        fb.kind = m_classify(status, fb.kind, error_code);
        return fb;
    }
    /// The wrapped profile (to adjust its settings).
    [[nodiscard]] Profile& profile() noexcept { return m_profile; }

private:
    Profile m_profile;
    Classify m_classify;
};

} // namespace feedback
RATEGOV_NAMESPACE_END
