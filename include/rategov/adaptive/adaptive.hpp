/// \file
/// Adaptive limits: a metric's local limit that follows the provider's, within bounds.
///
/// LLM providers do not have one fixed limit: an account's limit grows with its usage and
/// shrinks, between a lower and an upper bound, and the effective limit comes back on each
/// response. A client that keeps a fixed local limit either wastes capacity or collects
/// 429s. `adaptive_limits` keeps a governor's limits right from two sources:
///
/// 1. **What the server reports** (a feedback profile's `metric_report::limit`): the local
///    limit becomes that value, clamped to the bounds, the tokens carried over as
///    `adaptive_bounds::carry` says (`keep` by default). `remaining` tightens the local
///    bucket when the server has fewer tokens left than it (never loosens it); `remaining`
///    0 with a `reset` holds the bucket until then.
/// 2. **Outcomes, when the server reports nothing** for a metric — AIMD:
///    - a **429** (over limit) multiplies the limit by `decrease` (0.7) and empties the local
///      bucket (the server has no tokens for us now);
///    - a **success while demand is at the limit** (the metric's bucket holds less than a
///      tenth of its burst) adds `increase_per_second` (2 %) of the start limit per second
///      since the last change (at most 5 s per success: a quiet spell is no evidence);
///    - a **503/529** (load shed) and every other outcome leave the limit alone: shedding is
///      the provider's load, not the account's limit — that goes to backoff.
///
/// **Stale feedback never undoes a newer update.** Each change records a stamp: for a
/// server report, when the request that carried it started; for a decrease or an increase,
/// when it was made. Feedback from a request that started before the stamp is ignored — the
/// 429s of requests sent at the old rate cut the limit once, not once each (as TCP cuts its
/// window once per round trip), and a slow response cannot restore a limit the server has
/// since lowered.
///
/// **Why additive increase, not a CUBIC curve.** CUBIC (the AWS SDK's adaptive mode) climbs
/// back fast to the rate of the last throttle and then probes beyond it ever faster, which
/// suits a fixed hidden capacity. An LLM provider's limit is not fixed: it grows with the
/// account's own usage, and it is usually *reported* — then we follow the report and the
/// curve is moot. When it is not reported, a steady linear probe of 2 % of the start limit
/// per saturated second (from 70 % back to 100 % in 15 s) keeps 429s rare while reaching a
/// grown limit within minutes; the virtual-time measurement in
/// `tests/unit/adaptive_test.cpp` (`AdaptiveSimulation`) reports utilisation and 429 rate.
///
/// Lock-free: each metric's adaptive state is one 64-bit atomic word `[limit:32 | stamp:32]`
/// (the limit in counts per the bounds' period, the stamp in milliseconds with serial-
/// number arithmetic, valid for feedback up to 24 days late), updated by CAS; the governor's
/// limit is then set from the newest state, re-checked after each set so that the last
/// writer always leaves the newest value.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include <rategov/bucket/result.hpp>
#include <rategov/config.hpp>
#include <rategov/feedback/profiles.hpp>
#include <rategov/governor/governor.hpp>
#include <rategov/quota/quota.hpp>

RATEGOV_NAMESPACE_BEGIN

/// The bounds and constants of one metric's adaptive limit. `lower`, `start` and `upper`
/// share one period (e.g. all per minute); the burst of each limit in force keeps `start`'s
/// ratio of burst to count.
///
/// \code
/// rategov::adaptive_bounds gen{rategov::per_minute(12'000), rategov::per_minute(36'000),
///                              rategov::per_minute(360'000)};
/// \endcode
struct adaptive_bounds {
    quota lower;
    quota start;
    quota upper;
    /// 429: the limit is multiplied by this (0 < decrease < 1).
    double decrease = 0.7;
    /// Saturated success: this fraction of `start`'s count is added per second (> 0).
    double increase_per_second = 0.02;
    /// The most seconds one success may credit, in milliseconds (≥ 1): growth counts time
    /// spent at the limit, and a long quiet spell before a success is not such time.
    std::uint32_t max_growth_step_ms = 5'000;
    /// How the bucket's tokens carry over when the limit changes (see `inheritance`).
    inheritance carry = inheritance::keep;

    /// Throws `config_error` naming the bad value: periods differ, lower ≤ start ≤ upper does
    /// not hold, a count above 2^32 − 1, or a constant out of range.
    void validate() const {
        if (lower.period() != start.period() || upper.period() != start.period())
            detail::throw_config_error("adaptive_bounds: lower (" + lower.to_string() +
                                       "), start (" + start.to_string() + ") and upper (" +
                                       upper.to_string() + ") must share one period");
        if (!(lower.count() <= start.count() && start.count() <= upper.count()))
            detail::throw_config_error("adaptive_bounds: need lower ≤ start ≤ upper, got " +
                                       std::to_string(lower.count()) + ", " +
                                       std::to_string(start.count()) + ", " +
                                       std::to_string(upper.count()));
        if (upper.count() > 0xffff'ffffu)
            detail::throw_config_error("adaptive_bounds: upper count " +
                                       std::to_string(upper.count()) +
                                       " exceeds 2^32 − 1; use a shorter period");
        if (!(decrease > 0.0 && decrease < 1.0))
            detail::throw_config_error("adaptive_bounds: decrease " + std::to_string(decrease) +
                                       " must lie in (0, 1)");
        if (max_growth_step_ms == 0)
            detail::throw_config_error("adaptive_bounds: max_growth_step_ms 0 must be ≥ 1");
        if (!(increase_per_second > 0.0 && increase_per_second <= 1.0))
            detail::throw_config_error("adaptive_bounds: increase_per_second " +
                                       std::to_string(increase_per_second) + " must lie in (0, 1]");
        (void)quota_for(lower.count()); // the burst ratio must give valid quotas at the bounds
        (void)quota_for(upper.count());
    }

    /// The quota in force for `count` per period: `start`'s burst ratio, at least 1.
    [[nodiscard]] quota quota_for(std::uint64_t count) const {
        const auto burst = static_cast<std::uint64_t>(static_cast<long double>(count) *
                                                      static_cast<long double>(start.burst()) /
                                                      static_cast<long double>(start.count()));
        return quota(count, start.period()).with_burst(std::max<std::uint64_t>(burst, 1));
    }
};

namespace detail {

/// One metric's adaptive state: `[limit:32 | stamp:32]` in one atomic word.
class adaptive_state {
public:
    explicit adaptive_state(const adaptive_bounds& b) noexcept
        : m_word(pack(b.start.count(), 0)) {}

    [[nodiscard]] std::uint64_t limit() const noexcept {
        return m_word.load(std::memory_order_acquire) >> 32;
    }

    /// The limit at the last 429 (0 before any): shapes growth only, so a value from a
    /// slightly older decrease is harmless; relaxed.
    [[nodiscard]] std::uint64_t last_max() const noexcept {
        return m_last_max.load(std::memory_order_relaxed);
    }
    void set_last_max(std::uint64_t v) noexcept { m_last_max.store(v, std::memory_order_relaxed); }

    /// Applies `f(limit) -> new limit` if feedback stamped `start` is not older than the state,
    /// and stamps the state with `stamp`. Returns whether the limit changed.
    template <class F>
    bool update(std::uint32_t start, std::uint32_t stamp, F f) noexcept {
        std::uint64_t w = m_word.load(std::memory_order_acquire);
        for (;;) {
            const auto cur_stamp = static_cast<std::uint32_t>(w);
            if (serial_less(start, cur_stamp))
                return false; // the request started before the newer state: stale
            const std::uint64_t cur = w >> 32;
            const std::uint64_t next = f(cur, cur_stamp);
            if (next == cur && stamp == cur_stamp)
                return false;
            // acq_rel: the stamp and limit are published together; readers of limit() see them.
            if (m_word.compare_exchange_weak(w, pack(next, stamp), std::memory_order_acq_rel,
                                             std::memory_order_acquire))
                return next != cur;
        }
    }

    /// a < b in serial-number arithmetic (RFC 1982) on 32 bits.
    [[nodiscard]] static constexpr bool serial_less(std::uint32_t a, std::uint32_t b) noexcept {
        return a != b && static_cast<std::uint32_t>(b - a) < 0x8000'0000u;
    }

private:
    [[nodiscard]] static constexpr std::uint64_t pack(std::uint64_t limit,
                                                      std::uint32_t stamp) noexcept {
        return (limit << 32) | stamp;
    }
    std::atomic<std::uint64_t> m_word;
    std::atomic<std::uint64_t> m_last_max{0};
};

} // namespace detail

/// Keeps a governor's limits right from the responses it sees: server-reported limits,
/// 429s and saturated successes, within per-metric bounds (see the file comment for the
/// algorithm). Metrics without bounds keep their fixed limit. Thread-safe and lock-free;
/// several threads may report responses concurrently and out of order.
///
/// \code
/// rategov::governor<llm> gov(...);
/// rategov::adaptive_limits<rategov::governor<llm>> adapt(gov);
/// adapt.bound<m::generated>({per_minute(12'000), per_minute(36'000), per_minute(360'000)});
/// // for each response:
/// auto fb = rategov::feedback::fireworks_profile<llm>{}.read(status, headers, wall_now);
/// adapt.on_response(fb, request_started_at);
/// \endcode
template <class Governor>
class adaptive_limits {
    static constexpr std::size_t N = Governor::metrics_type::size;

public:
    using governor_type = Governor;
    using time_point = typename Governor::time_point;
    using feedback_type = feedback::response_feedback<N>;

    /// Adapts `gov`'s limits; every metric starts fixed (no bounds). `gov` must outlive this.
    explicit adaptive_limits(Governor& gov) noexcept
        : m_gov(&gov)
        , m_epoch(gov.now()) {}

    adaptive_limits(const adaptive_limits&) = delete;
    adaptive_limits& operator=(const adaptive_limits&) = delete;

    /// Makes metric `Tag` adaptive within `b` (validated: throws `config_error`), and sets
    /// its limit to `b.start` now. Call before feedback flows (not thread-safe with
    /// `on_response`).
    template <class Tag>
    void bound(const adaptive_bounds& b) {
        bound(detail::checked_index<typename Governor::metrics_type, Tag>(), b);
    }
    /// The same by metric index (i < number of metrics, else `config_error`).
    void bound(std::size_t i, const adaptive_bounds& b) {
        if (i >= N)
            detail::throw_config_error("adaptive_limits::bound: metric index " + std::to_string(i) +
                                       " out of range");
        b.validate();
        m_bounds[i] = b;
        m_state[i].emplace(b);
        m_gov->set_limit(i, b.start, b.carry);
    }

    /// Feeds one response: `fb` as read by a feedback profile, `started` when the request
    /// was sent (by the governor's clock). Returns how many metrics changed their limit.
    std::size_t on_response(const feedback_type& fb, time_point started) noexcept {
        const std::uint32_t start = stamp_of(started);
        const std::uint32_t now = stamp_of(m_gov->now());
        std::size_t changed = 0;
        for (std::size_t i = 0; i < N; ++i) {
            if (!m_state[i])
                continue;
            const adaptive_bounds& b = *m_bounds[i];
            const feedback::metric_report& r = fb.metrics[i];
            bool did = false;
            if (r.limit && r.period.count() > 0) {
                const std::uint64_t reported = clamp(b, in_bounds_period(b, *r.limit, r.period));
                did = m_state[i]->update(start, start,
                                         [&](std::uint64_t, std::uint32_t) { return reported; });
            } else if (fb.kind == feedback::outcome::over_limit) {
                did = m_state[i]->update(start, now, [&](std::uint64_t cur, std::uint32_t) {
                    m_state[i]->set_last_max(cur);
                    return clamp(b,
                                 static_cast<std::uint64_t>(static_cast<double>(cur) * b.decrease));
                });
            } else if (fb.kind == feedback::outcome::success && saturated(i)) {
                did = m_state[i]->update(start, now, [&](std::uint64_t cur, std::uint32_t since) {
                    // Evidence of saturated demand: the time since the last change, at most
                    // `max_growth_step` (after an idle spell, demand has only just caught up).
                    const std::uint32_t ms =
                        std::min(static_cast<std::uint32_t>(now - since), b.max_growth_step_ms);
                    const double seconds = ms / 1000.0;
                    const double add = b.increase_per_second * seconds *
                                       static_cast<double>(b.start.count()) *
                                       growth_factor(cur, m_state[i]->last_max());
                    return clamp(b, cur + static_cast<std::uint64_t>(add));
                });
            }
            if (did) {
                ++changed;
                apply(i);
                // A 429 says the server has no tokens for us now, whatever our bucket
                // believes: empty it, so that we pace at the new rate instead of bursting
                // into more 429s.
                if (fb.kind == feedback::outcome::over_limit && !r.limit)
                    tighten(i, 0);
            }
            if (r.remaining)
                tighten(i, *r.remaining);
            if (r.remaining && *r.remaining == 0 && r.reset)
                hold_until(i, *r.reset);
        }
        return changed;
    }

    /// The adaptive limit of metric i now (its fixed limit if it has no bounds).
    [[nodiscard]] quota current(std::size_t i) const {
        if (i < N && m_state[i])
            return m_bounds[i]->quota_for(m_state[i]->limit());
        return m_gov->limit(i);
    }

private:
    /// Milliseconds since construction, on 32 bits (serial arithmetic).
    [[nodiscard]] std::uint32_t stamp_of(time_point t) const noexcept {
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t - m_epoch).count();
        return static_cast<std::uint32_t>(static_cast<std::uint64_t>(ms));
    }

    [[nodiscard]] static std::uint64_t clamp(const adaptive_bounds& b, std::uint64_t n) noexcept {
        return std::clamp(n, b.lower.count(), b.upper.count());
    }

    /// A reported `limit` per `period` as a count per the bounds' period (saturating).
    [[nodiscard]] static std::uint64_t in_bounds_period(const adaptive_bounds& b,
                                                        std::uint64_t limit,
                                                        std::chrono::nanoseconds period) noexcept {
        const long double v = static_cast<long double>(limit) *
                              static_cast<long double>(b.start.period().count()) /
                              static_cast<long double>(period.count());
        return v >= 1.8e19L ? ~std::uint64_t{0} : static_cast<std::uint64_t>(v);
    }

    /// The CUBIC-like shape of growth: full speed far from the limit of the last 429
    /// (`last_max`), slowing to a twentieth of it near that level, then speeding up again
    /// beyond it — back quickly to where the trouble was, careful around it, then probing.
    [[nodiscard]] static double growth_factor(std::uint64_t cur, std::uint64_t last_max) noexcept {
        if (last_max == 0)
            return 1.0; // no 429 yet: nothing to be careful about
        const double distance = cur > last_max ? static_cast<double>(cur - last_max)
                                               : static_cast<double>(last_max - cur);
        return std::clamp(distance / (0.3 * static_cast<double>(last_max)), 0.05, 1.0);
    }

    /// Demand is at the limit: the bucket holds less than a tenth of its burst.
    [[nodiscard]] bool saturated(std::size_t i) const noexcept {
        return m_gov->available(i) * 10 < m_gov->limit(i).burst();
    }

    /// Sets the governor's limit from the newest state; re-checks after setting, so that when
    /// two threads race, the one that finishes last leaves the newest value.
    void apply(std::size_t i) noexcept {
        std::uint64_t applied = 0;
        for (std::uint64_t want = m_state[i]->limit(); want != applied;
             want = m_state[i]->limit()) {
            m_gov->set_limit(i, m_bounds[i]->quota_for(want), m_bounds[i]->carry);
            applied = want;
        }
    }

    /// The server has `remaining` tokens left: if the local bucket holds more, take the
    /// difference (tightens, never loosens).
    void tighten(std::size_t i, std::uint64_t remaining) noexcept {
        const std::uint64_t local = m_gov->available(i);
        if (local > remaining) {
            typename Governor::cost_type c;
            c[i] = local - remaining;
            m_gov->charge(c);
        }
    }

    /// The server has nothing left until its window resets in `reset`: put the local bucket
    /// in debt for that long at its own rate, so that nothing is sent before then.
    void hold_until(std::size_t i, std::chrono::nanoseconds reset) noexcept {
        const quota q = m_gov->limit(i);
        const long double tokens = static_cast<long double>(q.count()) *
                                   static_cast<long double>(reset.count()) /
                                   static_cast<long double>(q.period().count());
        const std::uint64_t owed = m_gov->debts()[i];
        const auto want = tokens >= 1e18L ? std::uint64_t{1'000'000'000'000'000'000}
                                          : static_cast<std::uint64_t>(tokens);
        if (want > owed) {
            typename Governor::cost_type c;
            c[i] = want - owed;
            m_gov->charge(c);
        }
    }

    Governor* m_gov;
    time_point m_epoch;
    std::array<std::optional<adaptive_bounds>, N> m_bounds{};
    std::array<std::optional<detail::adaptive_state>, N> m_state{};
};

RATEGOV_NAMESPACE_END
