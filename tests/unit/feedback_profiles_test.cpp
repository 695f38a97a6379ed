// Feedback profiles: realistic header sets per provider, hostile values, outcomes, retry
// hints and the custom profile. Table-driven: each table row is one response.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <rategov/feedback/profiles.hpp>

#include <gtest/gtest.h>

namespace {

using namespace std::chrono_literals;
namespace fb = rategov::feedback;
namespace metric = rategov::metric;

using fb::header_list;
using fb::outcome;
using fb::per;
using fb::wall_time;

using llm = rategov::metrics<metric::requests, metric::total_prompt, metric::uncached_prompt,
                             metric::generated>;
using gen_only = rategov::metrics<metric::generated>;
using gen_req = rategov::metrics<metric::generated, metric::requests>; // another order

constexpr std::size_t i_req = llm::index_of<metric::requests>;
constexpr std::size_t i_total = llm::index_of<metric::total_prompt>;
constexpr std::size_t i_uncached = llm::index_of<metric::uncached_prompt>;
constexpr std::size_t i_gen = llm::index_of<metric::generated>;

using entries = std::vector<header_list::entry>;
using opt_u64 = std::optional<std::uint64_t>;
using opt_ns = std::optional<std::chrono::nanoseconds>;
using opt_ms = std::optional<std::chrono::milliseconds>;
using opt_sv = std::optional<std::string_view>;

// 2026-11-24T10:00:00Z, a Tuesday.
constexpr wall_time now{std::chrono::sys_days{std::chrono::year{2026} / 11 / 24} + 10h};

constexpr std::chrono::nanoseconds sec = 1s;
constexpr std::chrono::nanoseconds minute = 1min;

header_list list(const entries& e) {
    return header_list(std::span<const header_list::entry>(e.data(), e.size()));
}

/// Checks every field of one report.
void expect_report(const fb::metric_report& m, opt_u64 limit, std::chrono::nanoseconds period,
                   opt_u64 remaining, opt_ns reset) {
    EXPECT_EQ(m.limit, limit);
    EXPECT_EQ(m.period, period);
    EXPECT_EQ(m.remaining, remaining);
    EXPECT_EQ(m.reset, reset);
}

void expect_empty(const fb::metric_report& m) {
    expect_report(m, std::nullopt, 0ns, std::nullopt, std::nullopt);
}

/// A header set with one header possibly absent.
entries with(entries base, std::string_view name, opt_sv value) {
    if (value)
        base.emplace_back(name, *value);
    return base;
}

// --- header_list ---------------------------------------------------------------------------

TEST(FeedbackHeaderList, CaseInsensitiveTrimmedNamesFirstDuplicateWins) {
    const entries e{{" Retry-After ", "1"}, {"retry-after", "2"}, {"X-A", " v "}};
    const auto h = list(e);
    EXPECT_EQ(h("retry-after"), opt_sv("1"));
    EXPECT_EQ(h("RETRY-AFTER"), opt_sv("1"));
    EXPECT_EQ(h("x-a"), opt_sv(" v ")); // values are returned as sent; profiles trim them
    EXPECT_EQ(h("x-b"), std::nullopt);
    EXPECT_EQ(header_list{}("x-a"), std::nullopt);
}

TEST(FeedbackProfiles, ReadIsNoexceptAndConstexpr) {
    constexpr header_list::entry e[] = {{"x-ratelimit-limit-tokens-generated", "600"},
                                        {"x-ratelimit-over-limit", "yes"}};
    constexpr auto r = fb::fireworks_profile<llm>{}.read(200, header_list(e), now);
    static_assert(r.kind == outcome::over_limit);
    static_assert(r.metrics[i_gen].limit == 600u);
    const header_list h;
    static_assert(noexcept(fb::openai_profile<llm>{}.read(200, h, now)));
    static_assert(noexcept(fb::custom_profile<llm>{}.read(200, h, now, "x")));
    static_assert(fb::header_lookup<header_list>);
}

TEST(FeedbackProfiles, AnyLookupWorks) {
    const std::map<std::string, std::string> headers{{"x-ratelimit-limit-requests", "5000"},
                                                     {"retry-after", "3"}};
    const auto lookup = [&](std::string_view name) -> std::optional<std::string_view> {
        if (auto it = headers.find(std::string(name)); it != headers.end())
            return std::string_view(it->second);
        return std::nullopt;
    };
    const auto r = fb::openai_profile<llm>{}.read(429, lookup, now);
    EXPECT_EQ(r.kind, outcome::over_limit);
    EXPECT_EQ(r.metrics[i_req].limit, 5000u);
    EXPECT_EQ(r.retry_after, opt_ms(3s));
}

// --- fireworks -----------------------------------------------------------------------------

const entries fireworks_ok{
    {"content-type", "application/json"},
    {"x-ratelimit-limit-requests", "6000"},
    {"x-ratelimit-remaining-requests", "5999"},
    {"x-ratelimit-limit-tokens-prompt", "60000"},
    {"x-ratelimit-remaining-tokens-prompt", "59000"},
    {"x-ratelimit-limit-tokens-cache-adjusted-prompt", "15000"},
    {"x-ratelimit-limit-tokens-generated", "600"},
    {"x-ratelimit-remaining-tokens-generated", "512"},
    {"x-ratelimit-over-limit", "no"},
    {"fireworks-prompt-tokens", "1000"},
    {"fireworks-cached-prompt-tokens", "200"},
};

TEST(FeedbackFireworks, RealisticResponse) {
    const auto r = fb::fireworks_profile<llm>{}.read(200, list(fireworks_ok), now);
    EXPECT_EQ(r.kind, outcome::success);
    expect_report(r.metrics[i_req], 6000u, minute, 5999u, std::nullopt);
    expect_report(r.metrics[i_total], 60000u, sec, 59000u, std::nullopt);
    expect_report(r.metrics[i_uncached], 15000u, sec, std::nullopt, std::nullopt);
    expect_report(r.metrics[i_gen], 600u, sec, 512u, std::nullopt);
    EXPECT_EQ(r.retry_after, std::nullopt);
    EXPECT_EQ(r.should_retry, std::nullopt);
}

TEST(FeedbackFireworks, DocumentedMixedCaseNames) {
    const entries e{{"X-Ratelimit-Limit-Tokens-Prompt", "60000"},
                    {"X-Ratelimit-Limit-Tokens-Cache-Adjusted-Prompt", "15000"},
                    {"X-RATELIMIT-LIMIT-TOKENS-GENERATED", " 600 "},
                    {"  x-ratelimit-remaining-tokens-generated\t", "\t12"},
                    {"X-Ratelimit-Over-Limit", "Yes"}};
    const auto r = fb::fireworks_profile<llm>{}.read(200, list(e), now);
    EXPECT_EQ(r.kind, outcome::over_limit);
    EXPECT_EQ(r.metrics[i_total].limit, 60000u);
    EXPECT_EQ(r.metrics[i_uncached].limit, 15000u);
    EXPECT_EQ(r.metrics[i_gen].limit, 600u);
    EXPECT_EQ(r.metrics[i_gen].remaining, 12u);
    expect_empty(r.metrics[i_req]);
}

TEST(FeedbackFireworks, UnitSettingChangesPeriodOnly) {
    struct row {
        per tokens;
        per requests;
        std::chrono::nanoseconds token_period;
        std::chrono::nanoseconds request_period;
    };
    const row rows[] = {{per::second, per::minute, sec, minute},
                        {per::minute, per::minute, minute, minute},
                        {per::minute, per::second, minute, sec},
                        {per::second, per::second, sec, sec}};
    for (const auto& [tokens, requests, token_period, request_period] : rows) {
        fb::fireworks_profile<llm> p;
        p.tokens_unit = tokens;
        p.requests_unit = requests;
        const auto r = p.read(200, list(fireworks_ok), now);
        expect_report(r.metrics[i_req], 6000u, request_period, 5999u, std::nullopt);
        expect_report(r.metrics[i_total], 60000u, token_period, 59000u, std::nullopt);
        expect_report(r.metrics[i_uncached], 15000u, token_period, std::nullopt, std::nullopt);
        expect_report(r.metrics[i_gen], 600u, token_period, 512u, std::nullopt);
        EXPECT_EQ(r.kind, outcome::success);
    }
}

TEST(FeedbackFireworks, Outcomes) {
    struct row {
        int status;
        opt_sv over_limit;
        outcome expected;
    };
    const row rows[] = {
        {200, std::nullopt, outcome::success}, {200, "no", outcome::success},
        {200, "", outcome::success},           {200, "yess", outcome::success},
        {200, "yes", outcome::over_limit},     {200, "YES", outcome::over_limit},
        {204, " yes ", outcome::over_limit},   {429, std::nullopt, outcome::over_limit},
        {429, "no", outcome::over_limit},      {503, std::nullopt, outcome::load_shed},
        {503, "yes", outcome::over_limit},     {500, std::nullopt, outcome::retryable},
        {400, std::nullopt, outcome::fatal},   {400, "yes", outcome::fatal},
        {401, std::nullopt, outcome::fatal},   {529, std::nullopt, outcome::load_shed},
    };
    for (const auto& [status, flag, expected] : rows) {
        const auto e =
            with({{"x-ratelimit-limit-requests", "6000"}}, "x-ratelimit-over-limit", flag);
        const auto r = fb::fireworks_profile<llm>{}.read(status, list(e), now);
        EXPECT_EQ(r.kind, expected) << status << " " << flag.value_or("(absent)");
        EXPECT_EQ(r.metrics[i_req].limit, 6000u);
    }
}

// Values that are not a count give no update, for the limit and the remaining alike.
TEST(FeedbackFireworks, BadValuesGiveNoUpdate) {
    const std::string_view bad[] = {"",
                                    "   ",
                                    "abc",
                                    "-5",
                                    "+5",
                                    "1e3",
                                    "12abc",
                                    "1.",
                                    ".5",
                                    "1.2.3",
                                    "0x10",
                                    "5 6",
                                    "1,000",
                                    "∞",
                                    "100000000000000000000000000000",
                                    "18446744073709551616"};
    for (const auto v : bad) {
        const entries e{{"x-ratelimit-limit-tokens-generated", v},
                        {"x-ratelimit-remaining-tokens-generated", v},
                        {"x-ratelimit-limit-requests", v}};
        const auto r = fb::fireworks_profile<llm>{}.read(200, list(e), now);
        expect_empty(r.metrics[i_gen]);
        expect_empty(r.metrics[i_req]);
        EXPECT_EQ(r.kind, outcome::success) << v;
    }
}

TEST(FeedbackFireworks, GoodValueEdgeCases) {
    struct row {
        std::string_view value;
        std::uint64_t expected;
    };
    const row rows[] = {{"0", 0},        {"600", 600},
                        {" 600\t", 600}, {"600.9", 600}, // a fraction is truncated
                        {"000042", 42},  {"18446744073709551614", 18446744073709551614u}};
    for (const auto& [v, expected] : rows) {
        const entries e{{"x-ratelimit-limit-tokens-generated", v}};
        const auto r = fb::fireworks_profile<llm>{}.read(200, list(e), now);
        EXPECT_EQ(r.metrics[i_gen].limit, expected) << v;
        EXPECT_EQ(r.metrics[i_gen].period, sec);
    }
}

TEST(FeedbackFireworks, DuplicatesFirstWins) {
    const entries e{{"x-ratelimit-limit-tokens-generated", "600"},
                    {"X-Ratelimit-Limit-Tokens-Generated", "36000"},
                    {"x-ratelimit-over-limit", "no"},
                    {"x-ratelimit-over-limit", "yes"}};
    const auto r = fb::fireworks_profile<llm>{}.read(200, list(e), now);
    EXPECT_EQ(r.metrics[i_gen].limit, 600u);
    EXPECT_EQ(r.kind, outcome::success);
}

TEST(FeedbackFireworks, RetryAfter) {
    struct row {
        opt_sv value;
        std::chrono::milliseconds max;
        opt_ms expected;
    };
    const row rows[] = {
        {std::nullopt, 60s, std::nullopt},
        {"5", 60s, 5s},
        {" 5 ", 60s, 5s},
        {"0", 60s, 0ms},
        {"120", 60s, 60s}, // clamped to max_retry_after
        {"120", 300s, 120s},
        {"100000000000000000000000000000", 60s, 60s},
        {"Tue, 24 Nov 2026 10:00:30 GMT", 60s, 30s}, // HTTP-date relative to now
        {"Tue, 24 Nov 2026 09:00:00 GMT", 60s, 0ms}, // in the past
        {"Tue, 24 Nov 2026 12:00:00 GMT", 60s, 60s}, // far future: clamped
        {"-5", 60s, std::nullopt},
        {"1.5", 60s, std::nullopt},
        {"soon", 60s, std::nullopt},
        {"", 60s, std::nullopt},
        {"5", -1s, 0ms}, // a negative bound is 0
    };
    for (const auto& [value, max, expected] : rows) {
        fb::fireworks_profile<llm> p;
        p.max_retry_after = max;
        const auto r = p.read(429, list(with({}, "Retry-After", value)), now);
        EXPECT_EQ(r.retry_after, expected) << value.value_or("(absent)");
        EXPECT_EQ(r.kind, outcome::over_limit);
    }
}

TEST(FeedbackFireworks, MissingMetricsAreSkipped) {
    const auto r1 = fb::fireworks_profile<gen_only>{}.read(200, list(fireworks_ok), now);
    static_assert(decltype(r1.metrics){}.size() == 1);
    expect_report(r1.metrics[0], 600u, sec, 512u, std::nullopt);

    const auto r2 = fb::fireworks_profile<gen_req>{}.read(200, list(fireworks_ok), now);
    expect_report(r2.metrics[gen_req::index_of<metric::generated>], 600u, sec, 512u, std::nullopt);
    expect_report(r2.metrics[gen_req::index_of<metric::requests>], 6000u, minute, 5999u,
                  std::nullopt);
}

// --- openai --------------------------------------------------------------------------------

const entries openai_ok{
    {"date", "Tue, 24 Nov 2026 10:00:00 GMT"},
    {"content-type", "application/json"},
    {"openai-processing-ms", "412"},
    {"x-request-id", "req_0123456789abcdef"},
    {"x-ratelimit-limit-requests", "10000"},
    {"x-ratelimit-limit-tokens", "2000000"},
    {"x-ratelimit-remaining-requests", "9999"},
    {"x-ratelimit-remaining-tokens", "1998500"},
    {"x-ratelimit-reset-requests", "6ms"},
    {"x-ratelimit-reset-tokens", "45ms"},
};

TEST(FeedbackOpenAI, RealisticResponse) {
    const auto r = fb::openai_profile<llm>{}.read(200, list(openai_ok), now);
    EXPECT_EQ(r.kind, outcome::success);
    expect_report(r.metrics[i_req], 10000u, minute, 9999u, 6ms);
    expect_report(r.metrics[i_total], 2000000u, minute, 1998500u, 45ms);
    expect_empty(r.metrics[i_uncached]);
    expect_empty(r.metrics[i_gen]);
    EXPECT_EQ(r.retry_after, std::nullopt);
    EXPECT_EQ(r.should_retry, std::nullopt);
}

TEST(FeedbackOpenAI, TokensTagAndMissingMetrics) {
    const auto r = fb::openai_profile<llm, metric::generated>{}.read(200, list(openai_ok), now);
    expect_report(r.metrics[i_gen], 2000000u, minute, 1998500u, 45ms);
    expect_empty(r.metrics[i_total]);

    const auto r1 = fb::openai_profile<gen_only>{}.read(200, list(openai_ok), now);
    expect_empty(r1.metrics[0]); // neither requests nor total_prompt: nothing to fill

    const auto r2 =
        fb::openai_profile<gen_req, metric::generated>{}.read(200, list(openai_ok), now);
    expect_report(r2.metrics[gen_req::index_of<metric::requests>], 10000u, minute, 9999u, 6ms);
    expect_report(r2.metrics[gen_req::index_of<metric::generated>], 2000000u, minute, 1998500u,
                  45ms);
}

TEST(FeedbackOpenAI, ResetDurations) {
    struct row {
        std::string_view value;
        std::chrono::nanoseconds max;
        opt_ns expected;
    };
    const row rows[] = {
        {"1s", 24h, 1s},
        {"6m0s", 24h, 6min},
        {"12ms", 24h, 12ms},
        {"1h2m3.5s", 24h, 1h + 2min + 3500ms},
        {" 0 ", 24h, 0ns},
        {"20ms", 10ms, 10ms},  // clamped to max_reset
        {"100000h", 24h, 24h}, // clamped
        {"100000000000000000000000000000s", 24h, 24h},
        {"", 24h, std::nullopt},
        {"-1s", 24h, std::nullopt},
        {"5", 24h, std::nullopt}, // no unit
        {"5d", 24h, std::nullopt},
        {"soon", 24h, std::nullopt},
    };
    for (const auto& [value, max, expected] : rows) {
        fb::openai_profile<llm> p;
        p.max_reset = max;
        const entries e{{"x-ratelimit-reset-tokens", value}, {"x-ratelimit-limit-tokens", "100"}};
        const auto r = p.read(200, list(e), now);
        EXPECT_EQ(r.metrics[i_total].reset, expected) << value;
        EXPECT_EQ(r.metrics[i_total].limit, 100u);
    }
}

TEST(FeedbackOpenAI, RetryHintPrecedence) {
    struct row {
        opt_sv ms;
        opt_sv seconds;
        opt_ms expected;
    };
    const row rows[] = {
        {std::nullopt, std::nullopt, std::nullopt},
        {"1500", "30", 1500ms}, // retry-after-ms wins
        {"1500", std::nullopt, 1500ms},
        {std::nullopt, "7", 7s},
        {"1.2", std::nullopt, 2ms}, // fractional milliseconds round up
        {"0.0001", std::nullopt, 1ms},
        {"0.0000000001", std::nullopt, 0ms}, // beyond nanoseconds: dropped
        {"0", "30", 0ms},
        {" 250 ", std::nullopt, 250ms},
        {"garbage", "7", 7s}, // an unreadable retry-after-ms falls back
        {"-5", "3", 3s},
        {"", "3", 3s},
        {"90000", std::nullopt, 60s}, // clamped
        {"100000000000000000000000000000", "1", 60s},
        {std::nullopt, "100000000000000000000000000000", 60s},
        {std::nullopt, "Tue, 24 Nov 2026 10:00:20 GMT", 20s},
        {std::nullopt, "Tuesday, 24-Nov-26 10:00:20 GMT", 20s},
        {std::nullopt, "Tue Nov 24 10:00:20 2026", 20s},
        {std::nullopt, "Mon, 23 Nov 2026 10:00:20 GMT", 0ms},
        {std::nullopt, "Tue, 24 Nov 2026 10:00:20 +0000", std::nullopt},
        {"garbage", "garbage", std::nullopt},
    };
    for (const auto& [ms, seconds, expected] : rows) {
        const auto e = with(with({}, "retry-after-ms", ms), "Retry-After", seconds);
        const auto r = fb::openai_profile<llm>{}.read(429, list(e), now);
        EXPECT_EQ(r.retry_after, expected)
            << ms.value_or("(absent)") << " / " << seconds.value_or("(absent)");
    }
}

TEST(FeedbackOpenAI, ShouldRetryAndOutcomes) {
    struct row {
        int status;
        std::string_view error_code;
        opt_sv should_retry_header;
        outcome kind;
        std::optional<bool> should_retry;
    };
    const row rows[] = {
        {200, "", std::nullopt, outcome::success, std::nullopt},
        {200, "", "true", outcome::success, true},
        {429, "", std::nullopt, outcome::over_limit, std::nullopt},
        {429, "", "false", outcome::over_limit, false},
        {429, "rate_limit_exceeded", "true", outcome::over_limit, true},
        {429, "insufficient_quota", std::nullopt, outcome::quota_exhausted, false},
        {429, "insufficient_quota", "true", outcome::quota_exhausted, false}, // never retried
        {200, "insufficient_quota", std::nullopt, outcome::quota_exhausted, false},
        {400, "insufficient_quota", std::nullopt, outcome::quota_exhausted, false},
        {429, "INSUFFICIENT_QUOTA", std::nullopt, outcome::over_limit, std::nullopt},
        {400, "", std::nullopt, outcome::fatal, std::nullopt},
        {400, "", "true", outcome::fatal, true}, // reported; the caller decides
        {409, "", "TRUE", outcome::retryable, true},
        {500, "", " false ", outcome::retryable, false},
        {503, "", "maybe", outcome::load_shed, std::nullopt},
        {503, "", "", outcome::load_shed, std::nullopt},
        {529, "", "1", outcome::load_shed, std::nullopt},
    };
    for (const auto& [status, code, header, kind, should_retry] : rows) {
        const auto e = with(openai_ok, "x-should-retry", header);
        const auto r = fb::openai_profile<llm>{}.read(status, list(e), now, code);
        EXPECT_EQ(r.kind, kind) << status << " " << code;
        EXPECT_EQ(r.should_retry, should_retry) << status << " " << code;
        EXPECT_EQ(r.metrics[i_req].limit, 10000u); // headers still read
    }
}

// --- anthropic -----------------------------------------------------------------------------

const entries anthropic_ok{
    {"request-id", "req_0123456789"},
    {"anthropic-ratelimit-requests-limit", "4000"},
    {"anthropic-ratelimit-requests-remaining", "3999"},
    {"anthropic-ratelimit-requests-reset", "2026-11-24T10:00:00.015Z"},
    {"anthropic-ratelimit-tokens-limit", "480000"},
    {"anthropic-ratelimit-tokens-remaining", "479000"},
    {"anthropic-ratelimit-tokens-reset", "2026-11-24T10:00:05Z"},
    {"anthropic-ratelimit-input-tokens-limit", "400000"},
    {"anthropic-ratelimit-input-tokens-remaining", "399000"},
    {"anthropic-ratelimit-input-tokens-reset", "2026-11-24T10:00:01Z"},
    {"anthropic-ratelimit-output-tokens-limit", "80000"},
    {"anthropic-ratelimit-output-tokens-remaining", "80000"},
    {"anthropic-ratelimit-output-tokens-reset", "2026-11-24T09:59:59Z"}, // past: 0
};

TEST(FeedbackAnthropic, RealisticResponse) {
    const auto r = fb::anthropic_profile<llm>{}.read(200, list(anthropic_ok), now);
    EXPECT_EQ(r.kind, outcome::success);
    expect_report(r.metrics[i_req], 4000u, minute, 3999u, 15ms);
    expect_report(r.metrics[i_total], 480000u, minute, 479000u, 5s);
    expect_report(r.metrics[i_uncached], 400000u, minute, 399000u, 1s);
    expect_report(r.metrics[i_gen], 80000u, minute, 80000u, 0ns);
    EXPECT_EQ(r.retry_after, std::nullopt);
    EXPECT_EQ(r.should_retry, std::nullopt);
}

TEST(FeedbackAnthropic, MissingMetricsAreSkipped) {
    const auto r = fb::anthropic_profile<gen_req>{}.read(200, list(anthropic_ok), now);
    expect_report(r.metrics[gen_req::index_of<metric::generated>], 80000u, minute, 80000u, 0ns);
    expect_report(r.metrics[gen_req::index_of<metric::requests>], 4000u, minute, 3999u, 15ms);
    const auto r1 = fb::anthropic_profile<gen_only>{}.read(200, list(anthropic_ok), now);
    expect_report(r1.metrics[0], 80000u, minute, 80000u, 0ns);
}

TEST(FeedbackAnthropic, ResetTimestamps) {
    struct row {
        std::string_view value;
        std::chrono::nanoseconds max;
        opt_ns expected;
    };
    const row rows[] = {
        {"2026-11-24T10:00:05Z", 24h, 5s},
        {" 2026-11-24T10:00:05Z ", 24h, 5s},
        {"2026-11-24t10:00:05z", 24h, 5s},
        {"2026-11-24T10:00:05.5Z", 24h, 5500ms},
        {"2026-11-24T11:00:05+01:00", 24h, 5s},
        {"2026-11-24T05:00:05-05:00", 24h, 5s},
        {"2026-11-24T10:00:00Z", 24h, 0ns},
        {"2020-01-01T00:00:00Z", 24h, 0ns}, // past
        {"2026-11-24T10:01:00Z", 30s, 30s}, // clamped to max_reset
        {"9999-12-31T23:59:59Z", 24h, 24h}, // absurd: clamped
        {"9999-12-31T23:59:59Z", std::chrono::nanoseconds::max(), std::chrono::nanoseconds::max()},
        {"2026-13-01T00:00:00Z", 24h, std::nullopt},
        {"2026-11-24T10:00:05", 24h, std::nullopt}, // no offset
        {"1732442405", 24h, std::nullopt},
        {"", 24h, std::nullopt},
        {"soon", 24h, std::nullopt},
    };
    for (const auto& [value, max, expected] : rows) {
        fb::anthropic_profile<llm> p;
        p.max_reset = max;
        const entries e{{"anthropic-ratelimit-output-tokens-reset", value}};
        const auto r = p.read(200, list(e), now);
        EXPECT_EQ(r.metrics[i_gen].reset, expected) << value;
        EXPECT_EQ(r.metrics[i_gen].limit, std::nullopt);
    }
}

TEST(FeedbackAnthropic, Outcomes) {
    struct row {
        int status;
        opt_sv retry_after;
        outcome kind;
        opt_ms retry;
    };
    const row rows[] = {
        {200, std::nullopt, outcome::success, std::nullopt},
        {429, "10", outcome::over_limit, 10s},
        {429, "Tue, 24 Nov 2026 10:00:42 GMT", outcome::over_limit, 42s},
        {529, std::nullopt, outcome::load_shed, std::nullopt},
        {529, "3", outcome::load_shed, 3s},
        {503, std::nullopt, outcome::load_shed, std::nullopt},
        {500, std::nullopt, outcome::retryable, std::nullopt},
        {400, std::nullopt, outcome::fatal, std::nullopt},
        {413, std::nullopt, outcome::fatal, std::nullopt},
        {429, "100000000000000000000000000000", outcome::over_limit, 60s},
        {429, "-1", outcome::over_limit, std::nullopt},
    };
    for (const auto& [status, retry_after, kind, retry] : rows) {
        const auto e = with(anthropic_ok, "retry-after", retry_after);
        const auto r = fb::anthropic_profile<llm>{}.read(status, list(e), now, "overloaded");
        EXPECT_EQ(r.kind, kind) << status;
        EXPECT_EQ(r.retry_after, retry) << status;
        EXPECT_EQ(r.should_retry, std::nullopt);
    }
}

// --- retry_after ---------------------------------------------------------------------------

TEST(FeedbackRetryAfter, StatusAndRetryAfterOnly) {
    struct row {
        int status;
        opt_sv retry_after;
        outcome kind;
        opt_ms retry;
    };
    const row rows[] = {
        {200, std::nullopt, outcome::success, std::nullopt},
        {429, "2", outcome::over_limit, 2s},
        {503, "Tue, 24 Nov 2026 10:00:09 GMT", outcome::load_shed, 9s},
        {529, "Sun, 06 Nov 1994 08:49:37 GMT", outcome::load_shed, 0ms},
        {502, "61", outcome::retryable, 60s},
        {404, std::nullopt, outcome::fatal, std::nullopt},
        {429, "garbage", outcome::over_limit, std::nullopt},
        {0, std::nullopt, outcome::retryable, std::nullopt}, // transport error
        {302, std::nullopt, outcome::retryable, std::nullopt},
    };
    for (const auto& [status, retry_after, kind, retry] : rows) {
        // Rate-limit headers of any provider are ignored.
        const auto e = with(openai_ok, "RETRY-AFTER", retry_after);
        const auto r =
            fb::retry_after_profile<llm>{}.read(status, list(e), now, "insufficient_quota");
        EXPECT_EQ(r.kind, kind) << status;
        EXPECT_EQ(r.retry_after, retry) << status;
        EXPECT_EQ(r.should_retry, std::nullopt);
        for (const auto& m : r.metrics)
            expect_empty(m);
    }
    fb::retry_after_profile<gen_only> p;
    p.max_retry_after = 5s;
    EXPECT_EQ(p.read(429, list({{"retry-after", "10"}}), now).retry_after, opt_ms(5s));
}

// --- custom --------------------------------------------------------------------------------

using custom = fb::custom_profile<llm>;
using fb::field;
using fb::value_format;

constexpr fb::header_rule custom_rules[] = {
    custom::rule<metric::generated>("x-my-gen-limit", field::limit, per::minute),
    custom::rule<metric::generated>("x-my-gen-left", field::remaining),
    custom::rule<metric::generated>("x-my-gen-reset", field::reset),
    custom::rule<metric::requests>("x-req-limit", field::limit, per::second),
    custom::rule<metric::requests>("x-req-limit-fallback", field::limit, per::minute),
    custom::rule<metric::requests>("x-req-reset", field::reset, per::second,
                                   value_format::go_duration),
    custom::rule<metric::uncached_prompt>("x-in-reset", field::reset, per::minute,
                                          value_format::milliseconds),
    custom::rule<metric::uncached_prompt>("x-in-reset-at", field::reset, per::minute,
                                          value_format::rfc3339),
    custom::rule<metric::total_prompt>("x-total-left", field::remaining, per::second),
    custom::rule<metric::total_prompt>("x-total-reset-at", field::reset, per::minute,
                                       value_format::unix_seconds),
    fb::header_rule{"x-out-of-range", 99, field::limit, per::minute, value_format::integer},
};

static_assert(custom_rules[0].metric == i_gen && custom_rules[0].what == field::limit &&
              custom_rules[0].unit == per::minute &&
              custom_rules[0].format == value_format::integer);
static_assert(custom_rules[2].format == value_format::seconds); // a reset defaults to seconds
static_assert(custom_rules[3].metric == i_req && custom_rules[3].unit == per::second);

TEST(FeedbackCustom, RulesMapHeadersToMetrics) {
    const std::int64_t now_s =
        std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
    const std::string reset_at = std::to_string(now_s + 90);
    const entries e{
        {"X-My-Gen-Limit", "36000"},
        {"x-my-gen-left", " 35000 "},
        {"x-my-gen-reset", "1.5"},
        {"x-req-limit", "junk"}, // does not parse: the fallback rule fills the limit
        {"x-req-limit-fallback", "6000"},
        {"x-req-reset", "2s"},
        {"x-in-reset", "250.5"},
        {"x-in-reset-at", "2026-11-24T10:00:07Z"}, // a later rule: the first one won
        {"x-total-left", "77"},
        {"x-total-reset-at", reset_at},
        {"x-out-of-range", "5"},
    };
    const custom p{custom_rules};
    const auto r = p.read(200, list(e), now);
    EXPECT_EQ(r.kind, outcome::success);
    expect_report(r.metrics[i_gen], 36000u, minute, 35000u, 1500ms);
    expect_report(r.metrics[i_req], 6000u, minute, std::nullopt, 2s);
    expect_report(r.metrics[i_uncached], std::nullopt, 0ns, std::nullopt, 250500us);
    expect_report(r.metrics[i_total], std::nullopt, sec, 77u, 90s);
    EXPECT_EQ(r.retry_after, std::nullopt); // no retry-after sent
    EXPECT_EQ(r.should_retry, std::nullopt);
}

TEST(FeedbackCustom, ResetFormats) {
    struct row {
        value_format format;
        std::string_view value;
        opt_ns expected;
    };
    const row rows[] = {
        {value_format::integer, "30", 30s},
        {value_format::seconds, "0.25", 250ms},
        {value_format::seconds, "100000000000000000000000000000", 24h},
        {value_format::milliseconds, "1500", 1500ms},
        {value_format::milliseconds, "-1", std::nullopt},
        {value_format::go_duration, "1m30s", 90s},
        {value_format::go_duration, "30", std::nullopt},
        {value_format::rfc3339, "2026-11-24T10:00:30Z", 30s},
        {value_format::rfc3339, "30", std::nullopt},
        {value_format::unix_seconds, "1000", 0ns}, // 1970: past
        {value_format::unix_seconds, "100000000000000000000000000000", 24h},
        {value_format::unix_seconds, "2026-11-24T10:00:30Z", std::nullopt},
        {value_format::seconds, "", std::nullopt},
    };
    for (const auto& [format, value, expected] : rows) {
        const fb::header_rule rules[] = {
            custom::rule<metric::generated>("x-reset", field::reset, per::minute, format)};
        const auto r = custom{rules}.read(200, list({{"x-reset", value}}), now);
        EXPECT_EQ(r.metrics[i_gen].reset, expected) << value;
    }
}

TEST(FeedbackCustom, CountsIgnoreFormatAndRejectGarbage) {
    struct row {
        std::string_view value;
        opt_u64 expected;
    };
    const row rows[] = {{"10", 10u},
                        {"10.7", 10u},
                        {"", std::nullopt},
                        {"-1", std::nullopt},
                        {"x", std::nullopt},
                        {"1e9", std::nullopt},
                        {"100000000000000000000000000000", std::nullopt}};
    for (const auto& [value, expected] : rows) {
        const fb::header_rule rules[] = {custom::rule<metric::generated>(
            "x-n", field::limit, per::second, value_format::go_duration)};
        const auto r = custom{rules}.read(200, list({{"x-n", value}}), now);
        EXPECT_EQ(r.metrics[i_gen].limit, expected) << value;
        EXPECT_EQ(r.metrics[i_gen].period, expected ? sec : 0ns) << value;
    }
}

TEST(FeedbackCustom, RetrySettings) {
    struct row {
        opt_sv ms;
        opt_sv seconds;
        opt_sv should_retry;
        opt_sv over_limit;
        int status;
        std::string_view code;
        outcome kind;
        opt_ms retry;
        std::optional<bool> retry_verdict;
    };
    const row rows[] = {
        {std::nullopt, std::nullopt, std::nullopt, std::nullopt, 200, "", outcome::success,
         std::nullopt, std::nullopt},
        {"1500", "9", std::nullopt, std::nullopt, 429, "", outcome::over_limit, 1500ms,
         std::nullopt},
        {"x", "9", std::nullopt, std::nullopt, 429, "", outcome::over_limit, 9s, std::nullopt},
        {std::nullopt, "Tue, 24 Nov 2026 10:00:04 GMT", std::nullopt, std::nullopt, 503, "",
         outcome::load_shed, 4s, std::nullopt},
        {"70000", std::nullopt, std::nullopt, std::nullopt, 429, "", outcome::over_limit, 30s,
         std::nullopt},
        {std::nullopt, std::nullopt, "false", std::nullopt, 500, "", outcome::retryable,
         std::nullopt, false},
        {std::nullopt, std::nullopt, std::nullopt, "yes", 200, "", outcome::over_limit,
         std::nullopt, std::nullopt},
        {std::nullopt, std::nullopt, std::nullopt, "TRUE", 200, "", outcome::over_limit,
         std::nullopt, std::nullopt},
        {std::nullopt, std::nullopt, std::nullopt, "no", 200, "", outcome::success, std::nullopt,
         std::nullopt},
        {std::nullopt, std::nullopt, std::nullopt, "yes", 403, "", outcome::fatal, std::nullopt,
         std::nullopt},
        {std::nullopt, std::nullopt, "true", std::nullopt, 402, "billing", outcome::quota_exhausted,
         std::nullopt, false},
    };
    for (const auto& [ms, seconds, should_retry, over_limit, status, code, kind, retry, verdict] :
         rows) {
        custom p{custom_rules};
        p.retry_after_ms_header = "x-amz-retry-after";
        p.retry_after_header = "retry-after";
        p.should_retry_header = "x-should-retry";
        p.over_limit_header = "x-ratelimit-over-limit";
        p.quota_error_code = "billing";
        p.max_retry_after = 30s;
        entries e = with({{"x-my-gen-limit", "5"}}, "x-amz-retry-after", ms);
        e = with(e, "retry-after", seconds);
        e = with(e, "x-should-retry", should_retry);
        e = with(e, "x-ratelimit-over-limit", over_limit);
        const auto r = p.read(status, list(e), now, code);
        EXPECT_EQ(r.kind, kind) << status;
        EXPECT_EQ(r.retry_after, retry) << status;
        EXPECT_EQ(r.should_retry, verdict) << status;
        EXPECT_EQ(r.metrics[i_gen].limit, 5u);
    }
}

TEST(FeedbackCustom, DefaultsAndDisabledHeaders) {
    const entries e{{"retry-after", "4"},
                    {"retry-after-ms", "100"},
                    {"x-should-retry", "true"},
                    {"x-ratelimit-over-limit", "yes"}};
    // Default: Retry-After only; the other headers are not configured.
    const auto r = custom{}.read(200, list(e), now, "insufficient_quota");
    EXPECT_EQ(r.kind, outcome::success);
    EXPECT_EQ(r.retry_after, opt_ms(4s));
    EXPECT_EQ(r.should_retry, std::nullopt);
    for (const auto& m : r.metrics)
        expect_empty(m);
    custom none;
    none.retry_after_header = {};
    EXPECT_EQ(none.read(429, list(e), now).retry_after, std::nullopt);
    // A smaller governor: rules are built for its own indices.
    using small = fb::custom_profile<gen_only>;
    const fb::header_rule rules[] = {small::rule<metric::generated>("x-g", field::limit)};
    const auto r1 = small{rules}.read(200, list({{"x-g", "7"}}), now);
    expect_report(r1.metrics[0], 7u, minute, std::nullopt, std::nullopt);
}

} // namespace

namespace {

TEST(AnthropicProfile, ReadsTheRetryHintsItsSdkHonours) {
    const entries e{
        {"retry-after-ms", "1500.5"}, {"retry-after", "30"}, {"x-should-retry", "false"}};
    const auto r = fb::anthropic_profile<llm>{}.read(429, header_list(e), now);
    EXPECT_EQ(r.retry_after, opt_ms(1501ms)); // milliseconds preferred, rounded up
    EXPECT_EQ(r.should_retry, std::optional<bool>(false));
    const entries only_seconds{{"Retry-After", "30"}};
    EXPECT_EQ(fb::anthropic_profile<llm>{}.read(429, header_list(only_seconds), now).retry_after,
              opt_ms(30s));
}

} // namespace
