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
///    `adaptive_bounds::carry` says (`keep` by default). `remaining` caps the local bucket
///    when the server has fewer tokens left than it (never loosens it; idempotent, so many
///    responses reporting the same `remaining` do not add up).
/// 2. **Outcomes, when the server reports nothing** for a metric:
///    - a **429** (over limit) multiplies the limit by `decrease` (0.7) and empties the local
///      bucket (the server has no tokens for us now) — also at the lower bound;
///    - a **success while demand is at the limit** (the metric's bucket holds less than a
///      tenth of its burst) adds up to `increase_per_second` (2 %) of the start limit per
///      second of such demand (each stretch of time counted once, at most 5 s per success: a
///      quiet spell is no evidence), at least 1;
///    - a **503/529** (load shed) and every other outcome leave the limit alone: shedding is
///      the provider's load, not the account's limit — that goes to backoff.
///
/// **Stale feedback never undoes a newer update.** A decrease records when it was made, a
/// server report when its request started; feedback from a request that started before
/// that is ignored — the 429s of requests sent at the old rate cut the limit once, not once
/// each (as TCP cuts its window once per round trip), and a slow response cannot restore a
/// limit the server has since lowered. Growth records nothing of the kind: a 429 of a
/// request sent before a growth still counts.
///
/// **The shape of growth: CUBIC-like.** Growth runs at full speed far from the limit at the
/// last 429, slows to a twentieth of it near that level (distance / (0.3 · that limit)),
/// and speeds up again beyond it: back quickly to where the trouble was, careful around it,
/// then probing — the shape of CUBIC (the AWS SDK's adaptive mode), with linear pieces. Plain
/// additive increase was measured first and collected three times the 429s when the
/// server's limit sat below the start (virtual time, `AdaptiveSimulation` in
/// `tests/unit/adaptive_test.cpp`: 15.6 % against 4.9 %, at the same utilisation), while
/// reaching a grown limit about as fast. When the provider reports its limit, the shape is
/// moot: the report wins.
///
/// Lock-free: each metric's adaptive state is one 64-bit atomic word `[limit:32 | stamp:32]`
/// (the limit in counts per the bounds' period, the stamp in milliseconds with serial-
/// number arithmetic, refreshed so that it never falls more than 12 days behind), updated by
/// CAS. The governor's limit is then set from the newest state and re-checked after each set,
/// so that the last writer leaves the newest value — except growth of under 1 %, which
/// waits until it adds up: a reservation's refund is carried across at most two changes of
/// the governor's limit (kept, not returned, beyond), so changes should not come in a stream.
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
    /// The lowest the limit may fall (429s stop cutting here; reports are clamped to it).
    quota lower;
    /// The limit `adaptive_limits::bound` sets; its burst-to-count ratio shapes every limit
    /// in force, and growth is a fraction of its count.
    quota start;
    /// The highest the limit may grow (count at most 2^32 − 1; reports are clamped to it).
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
    }

    /// The quota in force for `count` per period: `start`'s burst ratio, at least 1, and no
    /// more than a quota of that rate accepts (so it never throws for a count in bounds).
    [[nodiscard]] quota quota_for(std::uint64_t count) const noexcept {
        const auto period = static_cast<std::uint64_t>(start.period().count());
        const std::uint64_t ns_per_token = (period + count - 1) / count;
        const auto burst = static_cast<std::uint64_t>(static_cast<long double>(count) *
                                                      static_cast<long double>(start.burst()) /
                                                      static_cast<long double>(start.count()));
        return quota(count, start.period())
            .with_burst(std::clamp<std::uint64_t>(burst, 1, quota::max_burst / ns_per_token));
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

    /// What an update did.
    enum class verdict { stale, unchanged, changed };

    /// Applies `f(limit) -> new limit` if feedback stamped `start` is not older than the state.
    /// A change stamps the state with `stamp` when `restamp` (decreases and reports: feedback
    /// from requests sent before them is stale) and keeps the stamp otherwise (growth: it must
    /// not hide the 429s of requests in flight). Nothing is written when nothing changes.
    template <class F>
    verdict update(std::uint32_t start, std::uint32_t stamp, bool restamp, F f) noexcept {
        std::uint64_t w = m_word.load(std::memory_order_acquire);
        for (;;) {
            const auto cur_stamp = static_cast<std::uint32_t>(w);
            if (serial_less(start, cur_stamp))
                return verdict::stale; // the request started before the newer state
            const std::uint64_t cur = w >> 32;
            const std::uint64_t next = f(cur);
            if (next == cur)
                return verdict::unchanged;
            // acq_rel: the stamp and limit are published together; readers of limit() see them.
            if (m_word.compare_exchange_weak(w, pack(next, restamp ? stamp : cur_stamp),
                                             std::memory_order_acq_rel, std::memory_order_acquire))
                return verdict::changed;
        }
    }

    /// Keeps the stamp within 2^30 ms (12 days) of `now`, so that 32-bit serial comparisons
    /// stay meaningful however long the state goes unchanged: a stamp older than that is
    /// moved forward to now − 2^30 (feedback from requests sent earlier still counts as stale,
    /// and no real request is that old).
    void refresh(std::uint32_t now) noexcept {
        constexpr std::uint32_t horizon = std::uint32_t{1} << 30;
        std::uint64_t w = m_word.load(std::memory_order_acquire);
        while (static_cast<std::uint32_t>(now - static_cast<std::uint32_t>(w)) > horizon) {
            if (m_word.compare_exchange_weak(w, pack(w >> 32, now - horizon),
                                             std::memory_order_acq_rel, std::memory_order_acquire))
                return;
        }
    }

    /// Claims the time since the last growth, in ms (at most `cap`): exactly one of several
    /// concurrent successes gets each stretch of time, so growth is not counted twice.
    std::uint32_t claim_growth_time(std::uint32_t now, std::uint32_t cap) noexcept {
        const std::uint32_t last = m_last_growth.exchange(now, std::memory_order_relaxed);
        const auto ms = static_cast<std::uint32_t>(now - last);
        return ms > 0x8000'0000u ? 0 : std::min(ms, cap); // a late success: no time to claim
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
    std::atomic<std::uint32_t> m_last_growth{0};
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
    /// The governor whose limits this adapts.
    using governor_type = Governor;
    /// A time point of the governor's clock (`on_response`'s `started`).
    using time_point = typename Governor::time_point;
    /// A response as a feedback profile reads it, for the governor's metrics.
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
    ///
    /// `given_back`: what settling the response's reservation gave back per metric (the
    /// surplus of its estimate), when it was settled before this call: whether demand is at
    /// the limit is judged as before that refund — a refund of the very request that reports
    /// its success is no sign of spare capacity.
    std::size_t on_response(const feedback_type& fb, time_point started,
                            const std::array<std::uint64_t, N>& given_back = {}) noexcept {
        using verdict = detail::adaptive_state::verdict;
        const std::uint32_t start = stamp_of(started);
        const std::uint32_t now = stamp_of(m_gov->now());
        std::size_t changed = 0;
        for (std::size_t i = 0; i < N; ++i) {
            if (!m_state[i])
                continue;
            detail::adaptive_state& st = *m_state[i];
            st.refresh(now);
            const adaptive_bounds& b = *m_bounds[i];
            const feedback::metric_report& r = fb.metrics[i];
            verdict v = verdict::unchanged;
            if (r.limit && r.period.count() > 0) {
                const std::uint64_t reported = clamp(b, in_bounds_period(b, *r.limit, r.period));
                v = st.update(start, start, true, [&](std::uint64_t) { return reported; });
                // A 429 that reports the limit: the limit may be right, and the server still
                // has no tokens for us now (see below).
                if (fb.kind == feedback::outcome::over_limit && v != verdict::stale)
                    cap_available(i, 0);
            } else if (fb.kind == feedback::outcome::over_limit) {
                v = st.update(start, now, true, [&](std::uint64_t cur) {
                    st.set_last_max(cur);
                    return clamp(b,
                                 static_cast<std::uint64_t>(static_cast<double>(cur) * b.decrease));
                });
                // A fresh 429 says the server has no tokens for us now, whatever our bucket
                // believes (also at the lower bound, where the limit cannot fall): empty it,
                // so that we pace instead of bursting into more 429s.
                if (v != verdict::stale)
                    cap_available(i, 0);
            } else if (fb.kind == feedback::outcome::success && saturated(i, given_back[i])) {
                // Evidence of saturated demand: the time since the last growth, at most
                // `max_growth_step_ms` (after an idle spell, demand has only just caught up).
                const std::uint32_t ms = st.claim_growth_time(now, b.max_growth_step_ms);
                if (ms > 0)
                    v = st.update(start, now, false, [&](std::uint64_t cur) {
                        const double add = b.increase_per_second * (ms / 1000.0) *
                                           static_cast<double>(b.start.count()) *
                                           growth_factor(cur, st.last_max());
                        // At least one: small limits would otherwise never grow.
                        return clamp(
                            b, cur + std::max<std::uint64_t>(1, static_cast<std::uint64_t>(add)));
                    });
            }
            if (v == verdict::changed) {
                ++changed;
                apply(i);
            }
            if (r.remaining && v != verdict::stale)
                cap_available(i, *r.remaining);
        }
        return changed;
    }

    /// Whether metric i adapts (has bounds).
    [[nodiscard]] bool bounded(std::size_t i) const noexcept { return i < N && m_state[i]; }

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
    [[nodiscard]] bool saturated(std::size_t i, std::uint64_t given_back) const noexcept {
        const std::uint64_t a = m_gov->available(i);
        return (a - std::min(a, given_back)) * 10 < m_gov->limit(i).burst();
    }

    /// Sets the governor's limit from the newest state; re-checks after setting, so that when
    /// two threads race, the one that finishes last leaves the newest value.
    void apply(std::size_t i) noexcept {
        const adaptive_bounds& b = *m_bounds[i];
        for (;;) {
            const std::uint64_t want = m_state[i]->limit();
            const std::uint64_t have = m_gov->limit(i).count();
            // Growth of under 1 % waits until it adds up: reservations' refunds are carried
            // across at most two changes of the governor's limit (kept beyond).
            if (want == have || (want > have && want - have < have / 100 && want < b.upper.count()))
                return;
            m_gov->set_limit(i, b.quota_for(want), b.carry); // then re-check: newest wins
        }
    }

    /// The server has `remaining` tokens left: the local bucket holds no more than that
    /// (tightens, never loosens; atomic, so concurrent reports cannot add up to debt).
    void cap_available(std::size_t i, std::uint64_t remaining) noexcept {
        m_gov->cap_available(i, remaining);
    }

    Governor* m_gov;
    time_point m_epoch;
    std::array<std::optional<adaptive_bounds>, N> m_bounds{};
    std::array<std::optional<detail::adaptive_state>, N> m_state{};
};

RATEGOV_NAMESPACE_END
