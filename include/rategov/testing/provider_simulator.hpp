/// \file
/// `testing::provider_simulator`: a deterministic model of an LLM provider's rate limits in
/// virtual time, to test clients against (yours, or the library's) without a network.
///
/// It models the seed provider (see the README's "Testing against a simulated provider"):
/// per account and model, limits on requests and three token metrics — total prompt (cached
/// + uncached), uncached prompt, generated — enforced by a sliding window or by token
/// buckets; limits that grow toward an upper bound while the account uses them and shrink
/// toward a lower bound when it does not; time to first token plus time per generated
/// token; a prompt cache; 429 over the limit, 503 load shedding (never for priority traffic
/// by default); and the headers the seed provider sends, optionally OpenAI- or
/// Anthropic-style ones.
///
/// It is driven by the caller's clock (a `testing::manual_clock` in virtual time): `submit`
/// a request now, `collect` its response once the clock has reached the ticket's
/// `ready_at`. Nothing happens between calls; every call first brings the model up to the
/// clock's time (tokens generated, limits adapted) in exact time order, so the result does
/// not depend on how often it is called. Deterministic: the same calls at the same times
/// with the same `seed` give the same responses (except Anthropic-style reset instants,
/// which are wall-clock times).
///
/// \code
/// rategov::testing::manual_clock clock;
/// rategov::testing::provider_simulator sim(clock);              // the seed's limits
/// auto t = sim.submit({.prompt_tokens = 1200, .max_tokens = 400, .output_tokens = 250});
/// clock.set(t.ready_at);
/// rategov::testing::llm_response r = sim.collect(t);            // 200, usage, headers
/// \endcode
///
/// Not thread-safe: one thread drives a simulator (a discrete-event loop, or a test).
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <queue>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <rategov/backoff/backoff.hpp>
#include <rategov/client/transport.hpp>
#include <rategov/clock/clock.hpp>
#include <rategov/config.hpp>
#include <rategov/detail/uint128.hpp>
#include <rategov/feedback/profiles.hpp>
#include <rategov/governor/metrics.hpp>
#include <rategov/testing/manual_clock.hpp>

RATEGOV_NAMESPACE_BEGIN
namespace testing {

/// The four metrics the seed provider limits, in this order.
using llm_metrics =
    metrics<metric::requests, metric::total_prompt, metric::uncached_prompt, metric::generated>;
/// What the simulator answers.
using llm_response = response<llm_metrics, owned_headers>;

/// Per-minute counts of the four metrics (the seed provider's starting limits by default:
/// 6000 requests, 3.6M total prompt, 900k uncached prompt and 36k generated tokens).
struct llm_limits {
    /// Requests per minute.
    std::uint64_t requests = 6'000;
    /// Prompt tokens per minute, cached and uncached.
    std::uint64_t total_prompt = 3'600'000;
    /// Prompt tokens not served from the cache, per minute.
    std::uint64_t uncached_prompt = 900'000;
    /// Generated (output) tokens per minute.
    std::uint64_t generated = 36'000;

    /// The i-th count, in `llm_metrics` order.
    [[nodiscard]] std::uint64_t& operator[](std::size_t i) noexcept {
        return i == 0 ? requests : i == 1 ? total_prompt : i == 2 ? uncached_prompt : generated;
    }
    /// The i-th count, in `llm_metrics` order (an i above 3 reads `generated`).
    [[nodiscard]] std::uint64_t operator[](std::size_t i) const noexcept {
        return const_cast<llm_limits&>(*this)[i];
    }
    /// Every count multiplied by `f` (rounded, at least 1); requests too when `requests_too`.
    [[nodiscard]] llm_limits scaled(double f, bool requests_too = false) const noexcept {
        llm_limits r = *this;
        for (std::size_t i = requests_too ? 0 : 1; i < 4; ++i)
            r[i] = std::max<std::uint64_t>(
                1, static_cast<std::uint64_t>(std::llround(static_cast<double>(r[i]) * f)));
        return r;
    }
    /// Whether all four counts are equal.
    friend bool operator==(const llm_limits&, const llm_limits&) = default;
};

/// How the server counts against a limit.
enum class enforcement : std::uint8_t {
    /// Usage in the last `window` (60 s) may not exceed the per-minute limit (the seed
    /// provider: "enforcement uses TPM").
    window,
    /// A token bucket per metric refilled at the limit's rate, holding `bucket_burst` worth
    /// of it (e.g. one second's): bursts are refused even under the per-minute limit.
    bucket,
};

/// When generated tokens count against the generated limit.
enum class generated_counting : std::uint8_t {
    streamed,      ///< each token when it is generated
    at_completion, ///< all of them when the response completes
};

/// Header styles to send (combine with `|`).
enum class header_style : unsigned {
    none = 0,
    /// `x-ratelimit-limit-tokens-{prompt,cache-adjusted-prompt,generated}` (per
    /// `tokens_unit`), and with `send_remaining` the `x-ratelimit-remaining-*` and request
    /// headers; `x-ratelimit-over-limit: yes` on 429; `fireworks-prompt-tokens` and
    /// `fireworks-cached-prompt-tokens` on 200.
    fireworks = 1,
    /// `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` (tokens: total prompt, per
    /// minute, reset as a Go duration); `retry-after-ms` on 429.
    openai = 2,
    /// `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,
    /// reset}` (tokens: total prompt; input: uncached prompt; output: generated; reset as an
    /// RFC 3339 instant of the wall clock).
    anthropic = 4,
};
/// The styles of `a` and of `b` together.
[[nodiscard]] constexpr header_style operator|(header_style a, header_style b) noexcept {
    return static_cast<header_style>(static_cast<unsigned>(a) | static_cast<unsigned>(b));
}
/// Whether `set` and `s` share a style (for one style `s`: whether `set` includes it).
[[nodiscard]] constexpr bool has(header_style set, header_style s) noexcept {
    return (static_cast<unsigned>(set) & static_cast<unsigned>(s)) != 0;
}

/// A stretch of time, from the simulator's start, in which regular requests are shed (503)
/// with probability `rate`.
struct shed_window {
    /// Start of the window (included), from the simulator's construction.
    std::chrono::nanoseconds from{0};
    /// End of the window (excluded), from the simulator's construction; ≥ `from`.
    std::chrono::nanoseconds to{0};
    /// Shedding probability in the window, in [0, 1] (the higher of it and
    /// `simulator_config::shed_rate` applies; priority requests: times `priority_shed_factor`).
    double rate = 1.0;
};

/// How the simulated provider behaves. The defaults model the seed provider's document
/// where it says something, and are chosen (and said) where it does not.
struct simulator_config {
    /// An account's limits when it is first used.
    llm_limits start{};
    /// The bounds the token limits adapt within (requests stay fixed). Unset: `start` (the
    /// limits do not move).
    std::optional<llm_limits> lower{};
    /// The upper bound the token limits grow toward. Unset: `start`.
    std::optional<llm_limits> upper{};

    /// How usage is counted against the limits: sliding window or token buckets.
    enforcement mode = enforcement::window;
    /// The sliding window of `enforcement::window`, and of the usage that adaptation looks
    /// at in both modes (`remaining` headers report the room under the enforcement in force:
    /// the window's, or the bucket's).
    std::chrono::nanoseconds window = std::chrono::seconds(60);
    /// The bucket of `enforcement::bucket` holds this much of each limit's rate.
    std::chrono::nanoseconds bucket_burst = std::chrono::seconds(1);

    /// Adaptation, applied to the three token limits together (their ratio stays), every
    /// `adapt_every` once the account is one `window` old: when the busiest token metric used
    /// at least `grow_above` of its limit over the last `window`, the limits grow by
    /// `grow_per_minute` (compounded, 50 %/min: a saturated account doubles in about 100 s — the
    /// document promises growth with use and speaks of waiting for "the adaptive ramp", so minutes,
    /// not hours); below `shrink_below` they shrink by `shrink_per_minute` (20 %/min: slower than
    /// growth, so that a lull of a few seconds costs an account little).
    std::chrono::nanoseconds adapt_every = std::chrono::seconds(1);
    /// Growth when the busiest token metric used at least this share of its limit, in [0, 1].
    double grow_above = 0.8;
    /// Growth rate per minute, compounded (0.5: +50 %/min), in [0, 100].
    double grow_per_minute = 0.5;
    /// Shrinking when the busiest token metric used less than this share, in
    /// [0, `grow_above`].
    double shrink_below = 0.5;
    /// Shrink rate per minute, compounded (0.2: −20 %/min), in [0, 1).
    double shrink_per_minute = 0.2;

    /// Time from arrival to the first generated token (also for requests that generate
    /// none), then this per generated token.
    std::chrono::nanoseconds time_to_first_token = std::chrono::milliseconds(200);
    /// Time per generated token, after `time_to_first_token` (at most 10 s).
    std::chrono::nanoseconds per_output_token = std::chrono::milliseconds(10);
    /// How long a rejection (429, 503, 400) takes to arrive.
    std::chrono::nanoseconds reject_latency = std::chrono::milliseconds(5);
    /// When generated tokens count against the generated limit.
    generated_counting counting = generated_counting::streamed;
    /// How an arriving request's generated tokens, unknown yet, are judged against the
    /// generated limit. `true` (default): its `max_tokens` is held against the limit from
    /// arrival and released as tokens are generated (window) or when it completes (bucket:
    /// held at arrival, the unused part given back) — as OpenAI counts `max_tokens` up
    /// front, and so that no account can exceed its limit. `false`: a request is admitted
    /// while the generated usage is below the limit — lenient: an account with many
    /// requests in flight overshoots by what they generate.
    bool hold_max_tokens = true;

    /// The share of each prompt served from the cache (counts to total prompt only).
    double cache_hit = 0.0;

    /// Probability that a regular request is shed (503) outside the `shed_windows`.
    double shed_rate = 0.0;
    /// Stretches of time with their own shedding probability.
    std::vector<shed_window> shed_windows{};
    /// A priority request is shed with the regular probability times this (0: never).
    double priority_shed_factor = 0.0;
    /// The share of each limit only priority requests may use (0: none set apart).
    double priority_reserve = 0.0;

    /// The header styles responses carry (combine with `|`).
    header_style headers = header_style::fireworks;
    /// The unit of the fireworks token limit headers (the document says per second).
    feedback::per tokens_unit = feedback::per::second;
    /// Whether the fireworks style also sends the remaining-token and request headers.
    bool send_remaining = true;
    /// Seed of the shedding draws.
    std::uint64_t seed = 1;

    /// Throws `config_error` naming the first bad value.
    void validate() const {
        auto bad = [](const std::string& what) {
            rategov::detail::throw_config_error("simulator_config: " + what);
        };
        const llm_limits lo = lower.value_or(start), hi = upper.value_or(start);
        for (std::size_t i = 0; i < 4; ++i) {
            if (start[i] == 0 || lo[i] == 0)
                bad((start[i] == 0 ? "start" : "lower") + std::string(" limit of metric ") +
                    std::to_string(i) + " is 0");
            if (!(lo[i] <= start[i] && start[i] <= hi[i]))
                bad("need lower ≤ start ≤ upper for metric " + std::to_string(i) + ", got " +
                    std::to_string(lo[i]) + ", " + std::to_string(start[i]) + ", " +
                    std::to_string(hi[i]));
            if (hi[i] > (std::uint64_t{1} << 40))
                bad("limit " + std::to_string(hi[i]) + " of metric " + std::to_string(i) +
                    " exceeds 2^40 per minute");
        }
        if (window < std::chrono::milliseconds(1) || window > std::chrono::hours(24))
            bad("window " + std::to_string(window.count()) + " ns must lie in [1 ms, 24 h]");
        if (bucket_burst < std::chrono::milliseconds(1) || bucket_burst > std::chrono::hours(24))
            bad("bucket_burst " + std::to_string(bucket_burst.count()) +
                " ns must lie in [1 ms, 24 h]");
        if (adapt_every < std::chrono::milliseconds(1) || adapt_every > std::chrono::hours(24))
            bad("adapt_every " + std::to_string(adapt_every.count()) +
                " ns must lie in [1 ms, 24 h]");
        auto share = [&](double v, const char* name) {
            if (!(v >= 0.0 && v <= 1.0))
                bad(std::string(name) + " " + std::to_string(v) + " must lie in [0, 1]");
        };
        share(grow_above, "grow_above");
        share(shrink_below, "shrink_below");
        share(cache_hit, "cache_hit");
        share(shed_rate, "shed_rate");
        share(priority_shed_factor, "priority_shed_factor");
        share(priority_reserve, "priority_reserve");
        if (!(grow_per_minute >= 0.0 && grow_per_minute <= 100.0))
            bad("grow_per_minute " + std::to_string(grow_per_minute) + " must lie in [0, 100]");
        if (!(shrink_per_minute >= 0.0 && shrink_per_minute < 1.0))
            bad("shrink_per_minute " + std::to_string(shrink_per_minute) + " must lie in [0, 1)");
        if (shrink_below > grow_above)
            bad("shrink_below " + std::to_string(shrink_below) + " exceeds grow_above " +
                std::to_string(grow_above));
        if (time_to_first_token.count() < 0 || per_output_token.count() < 0 ||
            reject_latency.count() < 0)
            bad("latencies must not be negative");
        if (time_to_first_token > std::chrono::hours(1) || reject_latency > std::chrono::hours(1) ||
            per_output_token > std::chrono::seconds(10))
            bad("latencies must be at most 1 h (per output token: 10 s)");
        for (const shed_window& w : shed_windows) {
            share(w.rate, "shed_windows rate");
            if (w.to < w.from)
                bad("shed window ends (" + std::to_string(w.to.count()) +
                    " ns) before it begins (" + std::to_string(w.from.count()) + " ns)");
        }
    }
};

/// One request to the simulator.
struct llm_request {
    /// Prompt tokens, cached and uncached (`simulator_config::cache_hit` of them, rounded
    /// down, count as cached).
    std::uint64_t prompt_tokens = 0;
    /// The most it may generate.
    std::uint64_t max_tokens = 0;
    /// What the model will generate (a real model decides; here the caller does, so that a
    /// run is reproducible). Clamped to `max_tokens`.
    std::uint64_t output_tokens = 0;
    /// The priority class (`service_tier: "priority"`).
    bool priority = false;
    /// The account; each (account, model) pair has its own limits and counters.
    std::string account = "account";
    /// The model; each (account, model) pair has its own limits and counters.
    std::string model = "model";
};

/// What the simulator has counted for one account and model since its first request.
struct llm_counters {
    /// Requests submitted, whatever their outcome.
    std::uint64_t submitted = 0;
    std::uint64_t ok = 0;          ///< admitted (answered 200 when collected)
    std::uint64_t over_limit = 0;  ///< 429
    std::uint64_t shed = 0;        ///< 503
    std::uint64_t too_large = 0;   ///< 400: more than a limit can ever admit
    llm_limits served{0, 0, 0, 0}; ///< what was counted against each limit
};

namespace sim_detail {

/// Usage in a sliding window: (time, amount) entries in time order.
class window_meter {
public:
    void prune(std::int64_t now, std::int64_t window) {
        while (!m_entries.empty() && m_entries.front().first <= now - window) {
            m_sum -= m_entries.front().second;
            m_entries.pop_front();
        }
    }
    void add(std::int64_t t, std::uint64_t n) {
        if (n == 0)
            return;
        if (!m_entries.empty() && m_entries.back().first == t)
            m_entries.back().second += n;
        else
            m_entries.emplace_back(t, n);
        m_sum += n;
    }
    [[nodiscard]] std::uint64_t sum() const noexcept { return m_sum; }
    [[nodiscard]] const auto& entries() const noexcept { return m_entries; }
    /// Nanoseconds from `now` until the usage is at most `target` (entries leave at t + window).
    [[nodiscard]] std::int64_t until_at_most(std::int64_t now, std::int64_t window,
                                             std::uint64_t target) const noexcept {
        std::uint64_t s = m_sum;
        if (s <= target)
            return 0;
        for (const auto& [t, n] : m_entries) {
            s -= n;
            if (s <= target)
                return t + window - now;
        }
        return window;
    }

private:
    std::deque<std::pair<std::int64_t, std::uint64_t>> m_entries;
    std::uint64_t m_sum = 0;
};

/// A token bucket as the tokens in use, `level + frac / period` exactly, draining at
/// `limit` per `period` and holding `burst`.
class bucket_meter {
public:
    void configure(std::uint64_t limit, std::int64_t period, std::int64_t burst_ns) {
        m_limit = limit;
        m_period = static_cast<std::uint64_t>(period);
        m_burst = std::max<std::uint64_t>(
            1,
            rategov::detail::divmod(
                rategov::detail::mul_64x64(limit, static_cast<std::uint64_t>(burst_ns)), m_period)
                .quot);
    }
    void drain(std::int64_t now) {
        if (now <= m_at)
            return;
        const auto [q, r] = rategov::detail::divmod(
            rategov::detail::mul_64x64(static_cast<std::uint64_t>(now - m_at), m_limit), m_period);
        m_at = now;
        if (q > m_level || (q == m_level && r >= m_frac)) {
            m_level = 0;
            m_frac = 0;
            return;
        }
        m_level -= q;
        if (r > m_frac) {
            m_level -= 1;
            m_frac += m_period - r;
        } else {
            m_frac -= r;
        }
    }
    void add(std::uint64_t n) noexcept { m_level = n > ~m_level ? ~std::uint64_t{0} : m_level + n; }
    /// Takes n tokens out of use again (not below empty).
    void give_back(std::uint64_t n) noexcept {
        if (n > m_level || (n == m_level && m_frac == 0)) {
            m_level = 0;
            m_frac = 0;
        } else {
            m_level -= n;
        }
    }
    /// Tokens in use, rounded up.
    [[nodiscard]] std::uint64_t in_use() const noexcept { return m_level + (m_frac > 0 ? 1 : 0); }
    [[nodiscard]] std::uint64_t burst() const noexcept { return m_burst; }
    [[nodiscard]] std::uint64_t room() const noexcept {
        return in_use() >= m_burst ? 0 : m_burst - in_use();
    }
    /// Nanoseconds until `need` more tokens fit (at most `need` ≤ burst is asked for).
    [[nodiscard]] std::int64_t until_room(std::uint64_t need) const noexcept {
        if (m_level + need < m_burst || (m_level + need == m_burst && m_frac == 0))
            return 0;
        // excess = level + frac/period + need − burst tokens; drains at limit/period per ns.
        const std::uint64_t whole = m_level + need - m_burst;
        const rategov::detail::u128 units =
            rategov::detail::add(rategov::detail::mul_64x64(whole, m_period), m_frac);
        return static_cast<std::int64_t>(rategov::detail::div_ceil(units, m_limit));
    }

private:
    std::uint64_t m_limit = 1;
    std::uint64_t m_period = 1;
    std::uint64_t m_burst = 1;
    std::uint64_t m_level = 0;
    std::uint64_t m_frac = 0;
    std::int64_t m_at = 0;
};

/// A Go-style duration ("1.5s", "250ms", "0s").
[[nodiscard]] inline std::string go_duration(std::int64_t ns) {
    char buf[48];
    if (ns <= 0)
        return "0s";
    const long long ms = (ns + 999'999) / 1'000'000; // rounded up
    if (ms < 1000)
        std::snprintf(buf, sizeof buf, "%lldms", ms);
    else
        std::snprintf(buf, sizeof buf, "%lld.%03llds", ms / 1000, ms % 1000);
    return buf;
}

/// An RFC 3339 instant in UTC, whole seconds ("2026-11-24T10:00:05Z").
[[nodiscard]] inline std::string rfc3339(std::chrono::system_clock::time_point tp) {
    const auto secs = std::chrono::floor<std::chrono::seconds>(tp);
    const auto days = std::chrono::floor<std::chrono::days>(secs);
    const std::chrono::year_month_day ymd{days};
    const std::chrono::hh_mm_ss hms{secs - days};
    char buf[40];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02lld:%02lld:%02lldZ",
                  static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                  static_cast<unsigned>(ymd.day()), static_cast<long long>(hms.hours().count()),
                  static_cast<long long>(hms.minutes().count()),
                  static_cast<long long>(hms.seconds().count()));
    return buf;
}

} // namespace sim_detail

/// The simulated provider. See the file's documentation.
template <Clock C = manual_clock>
class provider_simulator {
public:
    /// The clock the simulator is driven by.
    using clock_type = C;
    /// A time point of `C` (`ticket::ready_at`).
    using time_point = typename C::time_point;
    /// The number of metrics limited (those of `llm_metrics`).
    static constexpr std::size_t metric_count = 4;

    /// A submitted request: collect its response at `ready_at` or later.
    struct ticket {
        /// Identifies the request to `collect` (from 1, in submission order).
        std::uint64_t id = 0;
        /// When the response is complete (rounded up to the clock's tick).
        time_point ready_at{};
    };

    /// \throws config_error if `config` is invalid (see `simulator_config::validate`).
    explicit provider_simulator(const C& clk, simulator_config config = {})
        : m_clock(clk)
        , m_config(std::move(config))
        , m_epoch(clk.now())
        , m_random(m_config.seed) {
        m_config.validate();
    }

    /// Submits `req` now: decides at once whether it is shed (503), too large (400), over
    /// a limit (429) or admitted; an admitted request counts its prompt now and its
    /// generated tokens as they are generated.
    ticket submit(const llm_request& req) {
        const std::int64_t now = ns_now();
        advance(now);
        account& a = account_of(req.account, req.model);
        ++a.counters.submitted;
        pending p;
        p.key = &a;
        p.priority = req.priority;
        const std::uint64_t cached = static_cast<std::uint64_t>(
            std::floor(static_cast<double>(req.prompt_tokens) * m_config.cache_hit));
        // The generated "cost" on arrival: what is held (max_tokens, or 0).
        p.cost = {1, req.prompt_tokens, req.prompt_tokens - cached, hold_of(req)};
        p.output = std::min(req.output_tokens, req.max_tokens);
        const auto per_token = static_cast<std::uint64_t>(m_config.per_output_token.count());
        if (per_token != 0 && p.output > std::uint64_t{86'400'000'000'000} / per_token)
            rategov::detail::throw_config_error("provider_simulator::submit: output_tokens " +
                                                std::to_string(p.output) +
                                                " would take more than 24 h to generate");
        p.arrival = now;
        const std::uint64_t id = ++m_next_id;
        if (shed(now, req.priority)) {
            p.status = 503;
            ++a.counters.shed;
        } else if (const int s = admit(a, p.cost, req.priority); s != 200) {
            p.status = s;
            ++(s == 429 ? a.counters.over_limit : a.counters.too_large);
        } else {
            p.status = 200;
            ++a.counters.ok;
            for (std::size_t i = 0; i < 3; ++i)
                count(a, i, now, p.cost[i]);
            p.hold = p.cost[3];
            if (m_config.mode == enforcement::window) {
                a.held += p.hold;
            } else {
                a.bucket[3].drain(now);
                a.bucket[3].add(p.hold);
            }
            p.gen_start = now + m_config.time_to_first_token.count();
            p.done_at = p.gen_start +
                        static_cast<std::int64_t>(p.output) * m_config.per_output_token.count();
            m_events.push({next_token_time(p), id});
        }
        const std::int64_t ready =
            p.status == 200 ? p.done_at : now + m_config.reject_latency.count();
        p.ready = ready;
        m_pending.emplace(id, std::move(p));
        // Rounded up to the clock's tick: never before the response is complete.
        return {id,
                m_epoch + std::chrono::ceil<typename C::duration>(std::chrono::nanoseconds(ready))};
    }

    /// The response of `t`, once the clock has reached `t.ready_at`; headers as of now.
    /// \throws config_error for an unknown (or already collected) ticket, or one not ready.
    llm_response collect(const ticket& t) {
        const std::int64_t now = ns_now();
        advance(now);
        auto it = m_pending.find(t.id);
        if (it == m_pending.end())
            rategov::detail::throw_config_error(
                "provider_simulator::collect: unknown or collected ticket " + std::to_string(t.id));
        if (now < it->second.ready)
            rategov::detail::throw_config_error("provider_simulator::collect: ticket " +
                                                std::to_string(t.id) + " is not ready yet");
        const pending p = std::move(it->second);
        m_pending.erase(it);
        account& a = *p.key;
        llm_response r;
        r.status = p.status;
        if (p.status == 200) {
            r.usage = cost<llm_metrics>{
                amount<metric::requests>{1}, amount<metric::total_prompt>{p.cost[1]},
                amount<metric::uncached_prompt>{p.cost[2]}, amount<metric::generated>{p.output}};
        }
        if (p.status == 400)
            r.error_code = "request_too_large";
        write_headers(r, a, now, p);
        return r;
    }

    /// `submit`, wait on the clock until the response is ready (`rategov::sleep_until`:
    /// a manual clock in `wait_mode::advance` moves there), `collect`: a synchronous
    /// transport for `rategov::call`.
    llm_response answer(const llm_request& req) {
        const ticket t = submit(req);
        sleep_until(m_clock, t.ready_at);
        return collect(t);
    }

    /// The limits in force now for an account and model (per minute).
    [[nodiscard]] llm_limits limits(const std::string& acct = "account",
                                    const std::string& model = "model") {
        advance(ns_now());
        return account_of(acct, model).limit;
    }
    /// Sets the limits in force now (the bounds widen to include them).
    void set_limits(const llm_limits& l, const std::string& acct = "account",
                    const std::string& model = "model") {
        advance(ns_now());
        for (std::size_t i = 0; i < metric_count; ++i)
            if (l[i] == 0)
                rategov::detail::throw_config_error(
                    "provider_simulator::set_limits: limit of metric " + std::to_string(i) +
                    " is 0");
        account& a = account_of(acct, model);
        for (std::size_t i = 0; i < metric_count; ++i) {
            a.lower[i] = std::min(a.lower[i], l[i]);
            a.upper[i] = std::max(a.upper[i], l[i]);
        }
        a.limit = l;
        configure_buckets(a, ns_now());
    }
    /// Sets the adaptation bounds; the limits in force are clamped into them.
    void set_bounds(const llm_limits& lower, const llm_limits& upper,
                    const std::string& acct = "account", const std::string& model = "model") {
        advance(ns_now());
        account& a = account_of(acct, model);
        for (std::size_t i = 0; i < metric_count; ++i)
            if (lower[i] == 0 || lower[i] > upper[i])
                rategov::detail::throw_config_error(
                    "provider_simulator::set_bounds: need 0 < lower ≤ "
                    "upper for metric " +
                    std::to_string(i));
        a.lower = lower;
        a.upper = upper;
        for (std::size_t i = 0; i < metric_count; ++i)
            a.limit[i] = std::clamp(a.limit[i], lower[i], upper[i]);
        configure_buckets(a, ns_now());
    }
    /// The adaptation bounds now.
    [[nodiscard]] std::pair<llm_limits, llm_limits> bounds(const std::string& acct = "account",
                                                           const std::string& model = "model") {
        account& a = account_of(acct, model);
        return {a.lower, a.upper};
    }
    /// Usage counted in the last `window` (as of now).
    [[nodiscard]] llm_limits used(const std::string& acct = "account",
                                  const std::string& model = "model") {
        const std::int64_t now = ns_now();
        advance(now);
        account& a = account_of(acct, model);
        llm_limits u{0, 0, 0, 0};
        for (std::size_t i = 0; i < metric_count; ++i) {
            a.usage[i].prune(now, window_ns());
            u[i] = a.usage[i].sum();
        }
        return u;
    }
    /// What was counted since the account's first request.
    [[nodiscard]] llm_counters counters(const std::string& acct = "account",
                                        const std::string& model = "model") {
        advance(ns_now());
        return account_of(acct, model).counters;
    }
    /// Requests submitted and not yet collected.
    [[nodiscard]] std::size_t outstanding() const noexcept { return m_pending.size(); }
    /// The configuration the simulator runs with.
    [[nodiscard]] const simulator_config& config() const noexcept { return m_config; }

private:
    struct account {
        llm_limits limit, lower, upper;
        std::array<sim_detail::window_meter, metric_count> usage{};
        std::array<sim_detail::bucket_meter, metric_count> bucket{};
        llm_counters counters{};
        std::int64_t next_adapt = 0;
        std::int64_t born = 0;
        std::uint64_t held = 0; ///< window mode: held generated tokens not yet generated
    };
    struct pending {
        account* key = nullptr;
        int status = 0;
        bool priority = false;
        llm_limits cost{0, 0, 0, 0};
        std::uint64_t output = 0;
        std::uint64_t produced = 0;
        std::uint64_t hold = 0; ///< max_tokens held against the generated limit (or 0)
        std::int64_t arrival = 0;
        std::int64_t gen_start = 0;
        std::int64_t done_at = 0;
        std::int64_t ready = 0; ///< when the response is complete (ns since the epoch)
    };
    /// The next generation event: a token (streamed) or all of them (at completion).
    struct event {
        std::int64_t at;
        std::uint64_t id;
        friend bool operator>(const event& a, const event& b) noexcept {
            return a.at != b.at ? a.at > b.at : a.id > b.id;
        }
    };

    [[nodiscard]] std::int64_t ns_now() const {
        return std::chrono::duration_cast<std::chrono::nanoseconds>(m_clock.now() - m_epoch)
            .count();
    }
    [[nodiscard]] std::int64_t window_ns() const noexcept { return m_config.window.count(); }
    [[nodiscard]] static constexpr std::int64_t minute_ns() noexcept { return 60'000'000'000LL; }

    account& account_of(const std::string& acct, const std::string& model) {
        auto key = std::make_pair(acct, model);
        auto it = m_accounts.find(key);
        if (it != m_accounts.end())
            return it->second;
        account& a = m_accounts[key];
        a.limit = m_config.start;
        a.lower = m_config.lower.value_or(m_config.start);
        a.upper = m_config.upper.value_or(m_config.start);
        const std::int64_t now = ns_now();
        a.born = now;
        a.next_adapt = now + m_config.adapt_every.count();
        configure_buckets(a, now);
        return a;
    }

    /// Sets each bucket to the limit in force from `now` on (drained at the old rate first).
    void configure_buckets(account& a, std::int64_t now) {
        for (std::size_t i = 0; i < metric_count; ++i) {
            a.bucket[i].drain(now);
            a.bucket[i].configure(a.limit[i], minute_ns(), m_config.bucket_burst.count());
        }
    }

    /// Counts n generated tokens of p at time t (its hold, if any, shrinks by as many).
    void generated(account& a, pending& p, std::int64_t t, std::uint64_t n) {
        a.usage[3].prune(t, window_ns());
        a.usage[3].add(t, n);
        a.counters.served[3] += n;
        const std::uint64_t from_hold = std::min(n, p.hold);
        p.hold -= from_hold;
        if (m_config.mode == enforcement::window) {
            a.held -= from_hold;
        } else {
            a.bucket[3].drain(t);
            a.bucket[3].add(n - from_hold); // beyond the hold (none when max_tokens is held)
        }
    }
    /// At completion: what is left of the hold is given back.
    void release(account& a, pending& p, std::int64_t t) {
        if (p.hold == 0)
            return;
        if (m_config.mode == enforcement::window) {
            a.held -= p.hold;
        } else {
            a.bucket[3].drain(t);
            a.bucket[3].give_back(p.hold);
        }
        p.hold = 0;
    }

    /// Counts n of metric i at time t, in the usage window and (bucket mode) the bucket.
    void count(account& a, std::size_t i, std::int64_t t, std::uint64_t n) {
        a.usage[i].prune(t, window_ns());
        a.usage[i].add(t, n);
        a.bucket[i].drain(t);
        a.bucket[i].add(n);
        a.counters.served[i] += n;
    }

    [[nodiscard]] std::uint64_t hold_of(const llm_request& r) const noexcept {
        return m_config.hold_max_tokens ? r.max_tokens : 0;
    }

    [[nodiscard]] std::int64_t next_token_time(const pending& p) const noexcept {
        if (m_config.counting == generated_counting::at_completion || p.output == 0)
            return p.done_at;
        return p.gen_start +
               static_cast<std::int64_t>(p.produced + 1) * m_config.per_output_token.count();
    }

    /// Brings the model to `now`: generated tokens and adaptation, in time order.
    void advance(std::int64_t now) {
        for (;;) {
            std::int64_t next_adapt = std::numeric_limits<std::int64_t>::max();
            account* adapting = nullptr;
            for (auto& [k, a] : m_accounts)
                if (a.next_adapt < next_adapt) {
                    next_adapt = a.next_adapt;
                    adapting = &a;
                }
            const bool token = !m_events.empty() && m_events.top().at <= now;
            if (token && (adapting == nullptr || m_events.top().at <= next_adapt)) {
                const event e = m_events.top();
                m_events.pop();
                pending& p = m_pending.at(e.id);
                const std::uint64_t n = m_config.counting == generated_counting::at_completion
                                            ? p.output
                                            : std::min<std::uint64_t>(1, p.output);
                p.produced += n;
                generated(*p.key, p, e.at, n);
                if (p.produced < p.output)
                    m_events.push({next_token_time(p), e.id});
                else
                    release(*p.key, p, e.at);
                continue;
            }
            if (adapting != nullptr && next_adapt <= now) {
                adapt(*adapting, next_adapt);
                continue;
            }
            break;
        }
    }

    void adapt(account& a, std::int64_t t) {
        a.next_adapt = t + m_config.adapt_every.count();
        if (t - a.born < window_ns())
            return; // a new account is judged on a full window of use
        double busiest = 0.0;
        for (std::size_t i = 1; i < metric_count; ++i) {
            a.usage[i].prune(t, window_ns());
            // Held tokens are in use too: an account refused for its holds is not idle.
            const std::uint64_t use = a.usage[i].sum() + (i == 3 ? a.held : 0);
            busiest = std::max(busiest, static_cast<double>(use) / static_cast<double>(a.limit[i]));
        }
        const double minutes = static_cast<double>(m_config.adapt_every.count()) / 6e10;
        double f = 1.0;
        if (busiest >= m_config.grow_above)
            f = std::pow(1.0 + m_config.grow_per_minute, minutes);
        else if (busiest < m_config.shrink_below)
            f = std::pow(1.0 - m_config.shrink_per_minute, minutes);
        if (f == 1.0)
            return;
        bool changed = false;
        for (std::size_t i = 1; i < metric_count; ++i) {
            const double want = static_cast<double>(a.limit[i]) * f;
            std::uint64_t next = static_cast<std::uint64_t>(std::llround(want));
            if (f > 1.0 && next == a.limit[i])
                ++next; // small limits grow too
            next = std::clamp(next, a.lower[i], a.upper[i]);
            if (next != a.limit[i]) {
                if (!changed)
                    for (auto& b : a.bucket)
                        b.drain(t); // at the old rates up to now
                changed = true;
                a.limit[i] = next;
            }
        }
        if (changed)
            configure_buckets(a, t);
    }

    [[nodiscard]] bool shed(std::int64_t now, bool priority) {
        double rate = m_config.shed_rate;
        for (const shed_window& w : m_config.shed_windows)
            if (now >= w.from.count() && now < w.to.count())
                rate = std::max(rate, w.rate);
        if (priority)
            rate *= m_config.priority_shed_factor;
        if (rate <= 0.0)
            return false;
        const double u = static_cast<double>(m_random() >> 11) * 0x1.0p-53;
        return u < rate;
    }

    /// The part of limit i a request of this class may fill (window mode) or the bucket
    /// part (bucket mode).
    [[nodiscard]] std::uint64_t capacity(const account& a, std::size_t i, bool priority) const {
        const std::uint64_t full =
            m_config.mode == enforcement::window ? a.limit[i] : a.bucket[i].burst();
        if (priority || m_config.priority_reserve == 0.0)
            return full;
        return static_cast<std::uint64_t>(static_cast<double>(full) *
                                          (1.0 - m_config.priority_reserve));
    }
    [[nodiscard]] std::uint64_t in_use(account& a, std::size_t i, std::int64_t now) {
        if (m_config.mode == enforcement::window) {
            a.usage[i].prune(now, window_ns());
            return a.usage[i].sum() + (i == 3 ? a.held : 0);
        }
        a.bucket[i].drain(now);
        return a.bucket[i].in_use();
    }

    /// What a request needs of metric i on arrival: its cost, or for generated tokens its
    /// hold — without a hold, one token of room (the usage must be below the limit).
    [[nodiscard]] std::uint64_t need(const llm_limits& c, std::size_t i) const noexcept {
        return i == 3 && !m_config.hold_max_tokens ? 1 : c[i];
    }

    /// 200 (admitted), 429, or 400 (more than its class may ever use at once).
    int admit(account& a, const llm_limits& c, bool priority) {
        const std::int64_t now = ns_now();
        for (std::size_t i = 0; i < metric_count; ++i)
            if (need(c, i) > capacity(a, i, priority))
                return 400;
        for (std::size_t i = 0; i < metric_count; ++i)
            if (in_use(a, i, now) + need(c, i) > capacity(a, i, priority))
                return 429;
        return 200;
    }

    /// Nanoseconds until `c` would be admitted (0 if it would be now).
    [[nodiscard]] std::int64_t until_admitted(account& a, const llm_limits& c, bool priority,
                                              std::int64_t now) {
        std::int64_t wait = 0;
        for (std::size_t i = 0; i < metric_count; ++i) {
            const std::uint64_t cap = capacity(a, i, priority), n = need(c, i);
            if (n > cap || n == 0)
                continue;
            if (m_config.mode == enforcement::window && i == 3) {
                wait = std::max(wait, until_generated_at_most(a, now, cap - n));
            } else if (m_config.mode == enforcement::window) {
                a.usage[i].prune(now, window_ns());
                wait = std::max(wait, a.usage[i].until_at_most(now, window_ns(), cap - n));
            } else {
                a.bucket[i].drain(now);
                const std::uint64_t full = a.bucket[i].burst();
                // Without holds, generated tokens still to come are added as they come: take
                // them as added now (an upper bound of the level at any later time).
                const std::uint64_t to_come =
                    i == 3 && !m_config.hold_max_tokens ? tokens_to_come(flying(a)) : 0;
                wait = std::max(wait, a.bucket[i].until_room(n + (full - cap) + to_come));
            }
        }
        return wait;
    }

    /// The admitted requests of account `a` still in flight.
    [[nodiscard]] std::vector<const pending*> flying(const account& a) const {
        std::vector<const pending*> out;
        for (const auto& [id, p] : m_pending)
            if (p.key == &a && p.status == 200)
                out.push_back(&p);
        return out;
    }
    /// The tokens they have still to generate.
    [[nodiscard]] static std::uint64_t
    tokens_to_come(const std::vector<const pending*>& in_flight) {
        std::uint64_t n = 0;
        for (const pending* p : in_flight)
            n += p->output - p->produced;
        return n;
    }

    /// Window mode: nanoseconds until the generated usage plus holds is at most `target`,
    /// if nothing else is admitted: window entries leave; a request in flight releases the
    /// unused part of its hold when it completes, and each token it generates leaves one
    /// window after it was generated.
    [[nodiscard]] std::int64_t until_generated_at_most(account& a, std::int64_t now,
                                                       std::uint64_t target) {
        a.usage[3].prune(now, window_ns());
        const std::vector<const pending*> flying = this->flying(a);
        // Without holds, the tokens to come will count too: take them as counted now (an
        // upper bound of the usage at any later time, and one that only falls).
        const std::uint64_t use =
            a.usage[3].sum() + a.held + (m_config.hold_max_tokens ? 0 : tokens_to_come(flying));
        if (use <= target)
            return 0;
        const std::uint64_t excess = use - target;
        // What leaves, in time order: the window's entries (by now + window); the unused part
        // of each hold, when its request completes; each token to come, one window after it
        // is generated (all after now + window).
        std::vector<std::pair<std::int64_t, std::uint64_t>> releases;
        std::int64_t first_token_leaves = std::numeric_limits<std::int64_t>::max();
        for (const pending* p : flying) {
            if (p->hold > p->output - p->produced)
                releases.emplace_back(p->done_at, p->hold - (p->output - p->produced));
            if (p->produced < p->output)
                first_token_leaves =
                    std::min(first_token_leaves, next_token_time(*p) + window_ns());
        }
        std::sort(releases.begin(), releases.end());
        std::uint64_t freed = 0;
        auto rel = releases.begin();
        for (const auto& [t, n] : a.usage[3].entries()) {
            for (; rel != releases.end() && rel->first <= t + window_ns(); ++rel)
                if ((freed += rel->second) >= excess)
                    return std::max<std::int64_t>(0, rel->first - now);
            if ((freed += n) >= excess)
                return std::max<std::int64_t>(0, t + window_ns() - now);
        }
        for (; rel != releases.end() && rel->first <= first_token_leaves; ++rel)
            if ((freed += rel->second) >= excess)
                return std::max<std::int64_t>(0, rel->first - now);
        // Then the later releases and the tokens to come together: the first time by which
        // enough has left (a search over time: what has left only grows).
        const auto later = rel;
        auto left_by = [&](std::int64_t when) {
            std::uint64_t k = freed;
            for (auto r = later; r != releases.end() && r->first <= when; ++r)
                k += r->second;
            const std::int64_t generated_by = when - window_ns();
            for (const pending* p : flying) {
                std::int64_t by = 0; // tokens of p generated by `generated_by`
                if (m_config.counting == generated_counting::at_completion || p->output == 0)
                    by = p->done_at <= generated_by ? static_cast<std::int64_t>(p->output) : 0;
                else if (generated_by >= p->gen_start)
                    by =
                        std::min(static_cast<std::int64_t>(p->output),
                                 (generated_by - p->gen_start) / m_config.per_output_token.count());
                k += static_cast<std::uint64_t>(
                    std::max<std::int64_t>(0, by - static_cast<std::int64_t>(p->produced)));
            }
            return k;
        };
        std::int64_t lo = now, hi = now + window_ns();
        for (const pending* p : flying)
            hi = std::max(hi, p->done_at + window_ns());
        if (left_by(hi) < excess)
            return hi - now; // (not reached: by then everything has left)
        while (lo < hi) {
            const std::int64_t mid = lo + (hi - lo) / 2;
            if (left_by(mid) >= excess)
                hi = mid;
            else
                lo = mid + 1;
        }
        return lo - now;
    }

    /// Room left of metric i now (for `remaining` headers).
    [[nodiscard]] std::uint64_t remaining(account& a, std::size_t i, std::int64_t now) {
        const std::uint64_t use = in_use(a, i, now), cap = capacity(a, i, true);
        return use >= cap ? 0 : cap - use;
    }
    /// Nanoseconds until metric i is entirely free.
    [[nodiscard]] std::int64_t until_reset(account& a, std::size_t i, std::int64_t now) {
        if (m_config.mode == enforcement::window) {
            a.usage[i].prune(now, window_ns());
            return a.usage[i].until_at_most(now, window_ns(), 0);
        }
        a.bucket[i].drain(now);
        return a.bucket[i].until_room(a.bucket[i].burst());
    }

    void write_headers(llm_response& r, account& a, std::int64_t now, const pending& p) {
        auto num = [](std::uint64_t v) { return std::to_string(v); };
        const bool over = p.status == 429;
        const std::int64_t retry_ns = over ? until_admitted(a, p.cost, p.priority, now) : 0;
        if (has(m_config.headers, header_style::fireworks)) {
            const std::uint64_t div = m_config.tokens_unit == feedback::per::second ? 60 : 1;
            auto per_unit = [&](std::uint64_t v) {
                return num(std::max<std::uint64_t>(1, v / div));
            };
            r.headers.add("x-ratelimit-limit-tokens-prompt", per_unit(a.limit[1]));
            r.headers.add("x-ratelimit-limit-tokens-cache-adjusted-prompt", per_unit(a.limit[2]));
            r.headers.add("x-ratelimit-limit-tokens-generated", per_unit(a.limit[3]));
            if (m_config.send_remaining) {
                r.headers.add("x-ratelimit-limit-requests", num(a.limit[0]));
                r.headers.add("x-ratelimit-remaining-requests", num(remaining(a, 0, now)));
                r.headers.add("x-ratelimit-remaining-tokens-prompt", num(remaining(a, 1, now)));
                r.headers.add("x-ratelimit-remaining-tokens-cache-adjusted-prompt",
                              num(remaining(a, 2, now)));
                r.headers.add("x-ratelimit-remaining-tokens-generated", num(remaining(a, 3, now)));
            }
            if (over)
                r.headers.add("x-ratelimit-over-limit", "yes");
            if (p.status == 200) {
                r.headers.add("fireworks-prompt-tokens", num(p.cost[1]));
                r.headers.add("fireworks-cached-prompt-tokens", num(p.cost[1] - p.cost[2]));
            }
        }
        if (has(m_config.headers, header_style::openai)) {
            if (!(has(m_config.headers, header_style::fireworks) && m_config.send_remaining)) {
                r.headers.add("x-ratelimit-limit-requests", num(a.limit[0]));
                r.headers.add("x-ratelimit-remaining-requests", num(remaining(a, 0, now)));
            }
            r.headers.add("x-ratelimit-limit-tokens", num(a.limit[1]));
            r.headers.add("x-ratelimit-remaining-tokens", num(remaining(a, 1, now)));
            r.headers.add("x-ratelimit-reset-requests",
                          sim_detail::go_duration(until_reset(a, 0, now)));
            r.headers.add("x-ratelimit-reset-tokens",
                          sim_detail::go_duration(until_reset(a, 1, now)));
            if (over)
                r.headers.add("retry-after-ms",
                              num(static_cast<std::uint64_t>((retry_ns + 999'999) / 1'000'000)));
        }
        if (has(m_config.headers, header_style::anthropic)) {
            const auto wall = std::chrono::system_clock::now();
            static constexpr std::size_t map[4] = {0, 1, 2, 3};
            static constexpr const char* names[4] = {"requests", "tokens", "input-tokens",
                                                     "output-tokens"};
            for (std::size_t k = 0; k < 4; ++k) {
                const std::size_t i = map[k];
                const std::string base = std::string("anthropic-ratelimit-") + names[k];
                r.headers.add(base + "-limit", num(a.limit[i]));
                r.headers.add(base + "-remaining", num(remaining(a, i, now)));
                r.headers.add(base + "-reset",
                              sim_detail::rfc3339(
                                  wall + std::chrono::ceil<std::chrono::seconds>(
                                             std::chrono::nanoseconds(until_reset(a, i, now)))));
            }
        }
        if (over) // whole seconds, rounded up, at least 1
            r.headers.add(
                "retry-after",
                num(std::max<std::uint64_t>(
                    1, static_cast<std::uint64_t>((retry_ns + 999'999'999) / 1'000'000'000))));
    }

    [[no_unique_address]] C m_clock;
    simulator_config m_config;
    time_point m_epoch;
    backoff::splitmix64 m_random; // the shedding draws
    std::uint64_t m_next_id = 0;
    std::map<std::pair<std::string, std::string>, account> m_accounts;
    std::unordered_map<std::uint64_t, pending> m_pending;
    std::priority_queue<event, std::vector<event>, std::greater<>> m_events;
};

} // namespace testing
RATEGOV_NAMESPACE_END
