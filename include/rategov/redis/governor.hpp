/// \file
/// `redis::governor`: the interface of `rategov::governor`, with the state of every metric
/// kept in one Redis hash so that many hosts share one account's limits. One round trip per
/// operation; see `redis::leased_governor` for the hot-path variant.
///
/// Optional part of rategov: it needs hiredis; `rategov/rategov.hpp` does not include it.
#pragma once

#include <array>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <rategov/bucket/result.hpp>
#include <rategov/clock/clock.hpp>
#include <rategov/config.hpp>
#include <rategov/governor/governor.hpp>
#include <rategov/governor/metrics.hpp>
#include <rategov/quota/quota.hpp>
#include <rategov/redis/store.hpp>

RATEGOV_NAMESPACE_BEGIN
namespace redis {
namespace detail {

/// Marks a receipt whose tokens came from the local share (failure policy `local_share`).
inline constexpr std::uint64_t from_local = 0x5245'4449'5321'0003ULL;

/// `q` divided among `processes`: count and burst / processes, at least 1 each.
inline quota share_of(const quota& q, unsigned processes) {
    const std::uint64_t c = q.count() / processes;
    const std::uint64_t b = q.burst() / processes;
    return quota(c > 0 ? c : 1, q.period()).with_burst(b > 0 ? b : 1);
}

/// Where the tokens of a grant came from, read from its receipts (0 when nothing was taken).
template <class Receipts>
[[nodiscard]] std::uint64_t source_of(const Receipts& r) noexcept {
    for (const auto& x : r)
        if (x.tokens != 0)
            return x.version;
    return 0;
}

/// What both Redis governors share: the clock, the store, the local share and the
/// fallback answers.
template <class Metrics, class Clock>
class remote_base {
protected:
    static constexpr std::size_t N = Metrics::size;
    using time_point = typename Clock::time_point;
    using duration = typename Clock::duration;
    using cost_type = cost<Metrics>;
    using result = governor_result<time_point>;
    using receipts = std::array<receipt, N>;
    using local_type = rategov::governor<Metrics, Clock>;

public:
    // --- what both Redis governors offer alike (made public by using-declarations) ---

    /// Gives `c` back (never above a metric's burst). Never throws: what cannot be given
    /// back (Redis down, no memory for the round trip) stays taken, which is safe for the
    /// limit; with a local share, that share gets it back.
    void refund(const cost_type& c) noexcept {
        try {
            if (!adjust(deltas(c, -1)) && m_local)
                m_local->refund(c);
        } catch (...) {
        }
    }
    /// Takes `c` unconditionally (usage that already happened), into debt if need be; in
    /// the local share when Redis cannot take it. Never throws.
    void charge(const cost_type& c) noexcept { charge_noexcept(c); }

    /// Changes metric `Tag`'s limit for every process on the key.
    template <class Tag>
    bool set_limit(const quota& q, inheritance how = inheritance::keep) {
        return set_limit(rategov::detail::checked_index<Metrics, Tag>(), q, how);
    }
    /// The same by index. Returns false, changing nothing in Redis, when i ≥ size or the
    /// quota does not fit the store's units (see the constructor); false also when Redis
    /// could not be reached (the new limit is then used when this process next creates the
    /// key, and by its local share).
    bool set_limit(std::size_t i, const quota& q, inheritance how = inheritance::keep) {
        return this->set_limit_raw(i, q, how);
    }
    /// Metric `Tag`'s limit as of the last round trip.
    template <class Tag>
    [[nodiscard]] quota limit() const {
        return limit(rategov::detail::checked_index<Metrics, Tag>());
    }
    /// Metric i's limit as of the last round trip (i < size).
    [[nodiscard]] quota limit(std::size_t i) const { return this->m_store.limit(i); }
    /// Every metric's limit as of the last round trip.
    [[nodiscard]] std::array<quota, N> limits() const { return this->m_store.limits(); }

    /// Every metric's debt now (one round trip).
    [[nodiscard]] std::array<std::uint64_t, N> debts() {
        return this->per_metric([](const detail::state<N>& s) { return s.debt; }, true);
    }
    /// The clock.
    [[nodiscard]] const Clock& clock() const noexcept { return this->m_clock; }
    /// The clock's now().
    [[nodiscard]] time_point now() const noexcept { return this->m_clock.now(); }
    /// Health of the store: round trips, failures, fallbacks, script loads, last error.
    [[nodiscard]] store_status status() const { return this->m_store.status(); }
    /// The Redis key of the hash (`options::key_prefix` + `{key}`).
    [[nodiscard]] const std::string& redis_key() const noexcept { return this->m_store.key(); }

protected:
    remote_base(const Clock& time_source, const options& opt, const std::string& key,
                const std::array<quota, N>& quotas)
        : m_clock(time_source)
        , m_store(opt, key, quotas) {
        if (opt.on_failure == failure_policy::local_share)
            m_local = make_local(time_source, quotas, opt.expected_processes,
                                 std::make_index_sequence<N>{});
    }

    template <std::size_t... I>
    static std::unique_ptr<local_type> make_local(const Clock& time_source,
                                                  const std::array<quota, N>& quotas,
                                                  unsigned processes, std::index_sequence<I...>) {
        return std::make_unique<local_type>(time_source, share_of(quotas[I], processes)...);
    }

    [[nodiscard]] std::int64_t us_of(time_point at) const noexcept { return detail::micros_of(at); }

    static std::vector<std::string> args_of(const cost_type& c) {
        std::vector<std::string> a;
        a.reserve(N + 1);
        for (std::size_t i = 0; i < N; ++i)
            a.push_back(std::to_string(c[i]));
        return a;
    }

    std::optional<state<N>> take(const cost_type& c, time_point at) {
        return m_store.run("take", us_of(at), args_of(c));
    }
    std::optional<state<N>> lease(const cost_type& least, const cost_type& most, time_point at) {
        auto a = args_of(least);
        for (std::size_t i = 0; i < N; ++i)
            a.push_back(std::to_string(most[i]));
        return m_store.run("lease", us_of(at), a);
    }
    std::optional<state<N>> reserve_raw(const cost_type& c, time_point at, duration max_wait) {
        auto a = args_of(c);
        a.push_back(std::to_string(wait_micros(max_wait)));
        return m_store.run("reserve", us_of(at), a);
    }
    /// level += delta per metric (charge > 0, refund < 0).
    bool adjust(const std::array<std::int64_t, N>& delta) {
        bool any = false;
        for (auto d : delta)
            any = any || d != 0;
        if (!any)
            return true;
        return m_store.run("adjust", us_of(m_clock.now()), to_args(delta)).has_value();
    }
    std::optional<state<N>> peek() { return m_store.run("peek", us_of(m_clock.now()), {}); }

    /// A cost as signed deltas (sign +1 charge, −1 refund), saturated below 2^52.
    static std::array<std::int64_t, N> deltas(const cost_type& c, int sign) noexcept {
        std::array<std::int64_t, N> d{};
        for (std::size_t i = 0; i < N; ++i) {
            const std::uint64_t v = c[i] < level_max ? c[i] : level_max;
            d[i] = sign * static_cast<std::int64_t>(v);
        }
        return d;
    }

    /// The governor's answer from the script's.
    [[nodiscard]] result answer(const state<N>& s, time_point at) const noexcept {
        switch (s.status) {
        case acquire_status::granted:
            return {acquire_status::granted, at, N};
        case acquire_status::denied:
            return {acquire_status::denied, after(at, s.wait_us), s.metric};
        default:
            return {acquire_status::exceeds_capacity, time_point::max(), s.metric};
        }
    }

    /// The failure policy's answer to a `try_acquire`.
    [[nodiscard]] result fallback_try(const cost_type& c, time_point at, traffic_class who) {
        switch (m_store.opts().on_failure) {
        case failure_policy::fail_open:
            return {acquire_status::granted, at, N};
        case failure_policy::local_share:
            return m_local->try_acquire_at(c, at, who);
        default:
            return {acquire_status::denied, retry_at(at), N};
        }
    }

    [[nodiscard]] time_point retry_at(time_point at) const noexcept {
        return after(at, wait_micros(m_store.opts().retry_interval));
    }

    /// The failure policy's answer to a `reserve`: status, ready time, metric, receipts.
    /// The local share grants only what it has now (it does not queue).
    struct fallback_grant {
        acquire_status status;
        time_point ready_at;
        std::size_t metric;
        receipts taken;
    };
    [[nodiscard]] fallback_grant fallback_reserve(const cost_type& c, time_point at,
                                                  traffic_class who) {
        const result r = fallback_try(c, at, who);
        receipts t{};
        if (r.granted() && m_store.opts().on_failure == failure_policy::local_share)
            for (std::size_t i = 0; i < N; ++i)
                t[i] = {0, 0, c[i], from_local};
        return {r.status, r.ready_at, r.metric, t};
    }

    /// Settles through the local share (surplus refunded, deficit charged).
    void settle_local(const cost_type& estimate, const cost_type& actual) noexcept {
        if (!m_local)
            return;
        cost_type surplus{}, deficit{};
        for (std::size_t i = 0; i < N; ++i) {
            if (actual[i] > estimate[i])
                deficit[i] = actual[i] - estimate[i];
            else
                surplus[i] = estimate[i] - actual[i];
        }
        m_local->refund(surplus);
        m_local->charge(deficit);
    }

    /// charge_anywhere that never throws: on an exception the usage goes to the local share.
    void charge_noexcept(const cost_type& c) noexcept {
        try {
            charge_anywhere(c);
        } catch (...) {
            if (m_local)
                m_local->charge(c);
        }
    }
    /// Redis first; while it cannot answer, the local share (if any).
    void charge_anywhere(const cost_type& c) {
        if (!adjust(deltas(c, +1)) && m_local)
            m_local->charge(c);
    }

    bool set_limit_raw(std::size_t i, const quota& q, inheritance how) {
        if (i >= N)
            return false;
        const auto u = units_of(q);
        if (!u)
            return false;
        m_store.remember_limit(i, q, *u);
        if (m_local) {
#if RATEGOV_HAS_EXCEPTIONS
            try {
                m_local->set_limit(i, share_of(q, m_store.opts().expected_processes), how);
            } catch (const config_error&) { // the share is not a valid quota: keep the old one
            }
#else
            m_local->set_limit(i, share_of(q, m_store.opts().expected_processes), how);
#endif
        }
        const std::vector<std::string> a{std::to_string(i),
                                         std::to_string(q.count()),
                                         std::to_string(q.period().count()),
                                         std::to_string(q.burst()),
                                         std::to_string(u->per_token),
                                         std::to_string(u->per_us),
                                         std::to_string(static_cast<int>(how))};
        return m_store.run("set", us_of(m_clock.now()), a).has_value();
    }

    void cap_raw(std::size_t i, std::uint64_t n) {
        if (i >= N)
            return;
        if (m_local)
            m_local->cap_available(i, n);
        const std::uint64_t v = n < level_max ? n : level_max;
        static_cast<void>(
            m_store.run("cap", us_of(m_clock.now()), {std::to_string(i), std::to_string(v)}));
    }

    /// Per metric: from Redis, else the failure policy's view.
    template <class F>
    [[nodiscard]] std::array<std::uint64_t, N> per_metric(F from_state, bool debt) {
        if (auto s = peek())
            return from_state(*s);
        std::array<std::uint64_t, N> out{};
        if (m_store.opts().on_failure == failure_policy::local_share)
            return debt ? m_local->debts() : m_local->availability();
        if (m_store.opts().on_failure == failure_policy::fail_open && !debt)
            for (std::size_t i = 0; i < N; ++i)
                out[i] = m_store.limit(i).burst();
        return out;
    }

    Clock m_clock;
    store<N> m_store;
    std::unique_ptr<local_type> m_local; // only with failure_policy::local_share
};

} // namespace detail

/// Limits `Metrics` at once for every process that uses the same `key` on the same Redis:
/// the interface of `rategov::governor` (so `rategov::call`, `call_machine` and
/// `adaptive_limits` work with it), one Redis round trip per operation.
///
/// - **Atomic in Redis.** All metrics of a key live in one hash; each operation is one Lua
///   script run, all-or-nothing over the metrics (see `redis/scripts.hpp`).
/// - **Time.** By default the scripts read the server's `TIME`; waits come back as offsets
///   that are added to this governor's clock (`ready_at = at + wait`), so hosts need no
///   clock agreement, and `at` in the `*_at` functions only anchors the answer.
///   `options::time = time_source::client` uses `at` itself (µs since the clock's epoch).
/// - **Limits live in Redis.** The first process to touch the key creates it with its
///   limits; later processes adopt the limits found there (`limit()` reports the limits as
///   of the last round trip); `set_limit` from any host changes them for all. An idle key
///   expires once its bucket would be full again (plus `options::expiry_margin`); the next
///   process then creates it afresh with the limits it knows.
/// - **Failures.** A failed round trip (Redis down, a stall past `command_timeout`) is
///   answered by `options::on_failure` (default `local_share`) and opens a circuit breaker:
///   Redis is tried again at most once per `options::retry_interval`. Nothing throws and
///   nothing waits longer than the endpoint's timeouts. `store_status()` reports health.
/// - **Priority.** `traffic_class` is not enforced in Redis (every request may use the
///   whole limit); it is passed on to the local share while Redis is down.
/// - **Settling** (`reconcile`, `give_back`, `refund`) adjusts the Redis levels (a refund
///   never fills a metric above its burst); while Redis is down, settlement of Redis grants
///   is dropped (the tokens stay taken: safe for the limit).
///
/// Thread-safe; blocking (one round trip per call).
///
/// \code
/// using llm = rategov::metrics<rategov::metric::requests, rategov::metric::generated>;
/// rategov::redis::options opt;
/// opt.endpoint.host = "10.0.0.5";
/// rategov::redis::governor<llm> gov(opt, "acct-42/gpt-x", rategov::per_minute(600),
///                                   rategov::per_minute(90'000));
/// auto r = gov.reserve(estimate, std::chrono::seconds(5));
/// \endcode
template <class Metrics, class Clock = steady_clock, class DropPolicy = refund_on_drop>
class governor : private detail::remote_base<Metrics, Clock> {
    static_assert(check_clock<Clock>());
    using base = detail::remote_base<Metrics, Clock>;
    static constexpr std::size_t N = Metrics::size;

public:
    /// The metrics limited, as `metrics<...>`.
    using metrics_type = Metrics;
    /// The clock that anchors every answer.
    using clock_type = Clock;
    /// A time point of `Clock`.
    using time_point = typename Clock::time_point;
    /// A duration of `Clock`.
    using duration = typename Clock::duration;
    /// A request's cost: one amount per metric.
    using cost_type = cost<Metrics>;
    /// What `try_acquire` returns (`metric` is the number of metrics when a denial comes
    /// from `failure_policy::fail_closed`).
    using result = governor_result<time_point>;
    /// What `reserve` returns.
    using reservation_type = reservation<governor, DropPolicy>;
    /// Where a grant's tokens came from (opaque; kept by a reservation).
    using receipts = std::array<receipt, Metrics::size>;

    static_assert(drop_policy<DropPolicy, reservation_type>,
                  "rategov: DropPolicy must provide `static void on_drop(reservation&) "
                  "noexcept`; use rategov::refund_on_drop or rategov::keep_on_drop.");

    using base::charge;
    using base::clock;
    using base::debts;
    using base::limit;
    using base::limits;
    using base::now;
    using base::redis_key;
    using base::refund;
    using base::set_limit;
    using base::status;

    /// One quota per metric, in `metrics<...>` order, for `key` on `opt.endpoint`, over a
    /// default-constructed clock. Does not contact Redis.
    /// \throws config_error for bad options (see `options`), an empty key, or a quota whose
    /// burst × period passes the store's 2^52 units.
    template <class... Q>
    requires(sizeof...(Q) == N && (std::same_as<Q, quota> && ...))
        governor(const options& opt, const std::string& key, const Q&... quotas)
        : governor(Clock{}, opt, key, quotas...) {}

    /// The same over `clock` (copied: a handle).
    template <class... Q>
    requires(sizeof...(Q) == N && (std::same_as<Q, quota> && ...))
        governor(const Clock& time_source, const options& opt, const std::string& key,
                 const Q&... quotas)
        : base(time_source, opt, key, std::array<quota, N>{quotas...}) {}

    governor(const governor&) = delete;
    governor& operator=(const governor&) = delete;

    /// Takes `c` if every metric can grant its part, else nothing (one round trip).
    /// `who` is not enforced in Redis (see the class comment).
    [[nodiscard]] result try_acquire(const cost_type& c,
                                     traffic_class who = traffic_class::priority) {
        return try_acquire_at(c, now(), who);
    }
    /// The same, anchored at `at` (see the class comment on time).
    [[nodiscard]] result try_acquire_at(const cost_type& c, time_point at,
                                        traffic_class who = traffic_class::priority) {
        if (auto s = this->take(c, at))
            return this->answer(*s, at);
        return this->fallback_try(c, at, who);
    }

    /// Pays forward: takes `c` now, ready when every metric has its part, unless that is
    /// more than `max_wait` away (then refused, nothing taken). See `rategov::governor`.
    [[nodiscard]] reservation_type reserve(const cost_type& c, duration max_wait = duration::max(),
                                           traffic_class who = traffic_class::priority) {
        return reserve_at(c, now(), max_wait, who);
    }
    /// The same, anchored at `at`.
    [[nodiscard]] reservation_type reserve_at(const cost_type& c, time_point at,
                                              duration max_wait = duration::max(),
                                              traffic_class who = traffic_class::priority) {
        if (auto s = this->reserve_raw(c, at, max_wait)) {
            if (s->status != acquire_status::granted) {
                const result r = this->answer(*s, at);
                return reservation_type(*this, c, r.status, r.ready_at, r.metric, {});
            }
            receipts t{};
            for (std::size_t i = 0; i < N; ++i)
                t[i] = {0, 0, c[i], detail::from_redis};
            return reservation_type(*this, c, acquire_status::granted,
                                    detail::after(at, s->wait_us), N, t);
        }
        auto f = this->fallback_reserve(c, at, who);
        return reservation_type(*this, c, f.status, f.ready_at, f.metric, f.taken);
    }

    /// Makes metric i hold at most `n` tokens now (tightens only; i ≥ size is ignored).
    void cap_available(std::size_t i, std::uint64_t n) { this->cap_raw(i, n); }

    /// Settles an estimate taken with `taken` with the actual usage: surplus refunded,
    /// deficit charged, where the tokens came from. What `reservation::commit` does.
    /// Never throws (`reservation::commit` is noexcept): a deficit that cannot be sent is
    /// charged to the local share, a surplus kept.
    void reconcile(const cost_type& estimate, const cost_type& actual,
                   const receipts& taken) noexcept {
        const std::uint64_t from = detail::source_of(taken);
        if (from == detail::from_local) {
            this->settle_local(estimate, actual);
            return;
        }
        std::array<std::int64_t, N> d{};
        for (std::size_t i = 0; i < N; ++i) {
            const std::uint64_t a = actual[i] < detail::level_max ? actual[i] : detail::level_max;
            const std::uint64_t e =
                estimate[i] < detail::level_max ? estimate[i] : detail::level_max;
            // Nothing recorded (fail_open): only a deficit is charged.
            if (from != detail::from_redis && a <= e)
                continue;
            d[i] = static_cast<std::int64_t>(a) - static_cast<std::int64_t>(e);
        }
        bool sent = false;
        try {
            sent = this->adjust(d);
        } catch (...) {
        }
        if (!sent && this->m_local) {
            cost_type deficit{};
            for (std::size_t i = 0; i < N; ++i)
                deficit[i] = d[i] > 0 ? static_cast<std::uint64_t>(d[i]) : 0;
            this->m_local->charge(deficit);
        }
    }
    /// Gives back what a grant with `taken` took of `c` (a cancelled reservation).
    /// Never throws (`reservation::cancel` is noexcept): what cannot be sent stays taken.
    void give_back(const cost_type& c, const receipts& taken) noexcept {
        const std::uint64_t from = detail::source_of(taken);
        if (from == detail::from_redis) {
            try {
                static_cast<void>(this->adjust(base::deltas(c, -1)));
            } catch (...) {
            }
        } else if (from == detail::from_local && this->m_local)
            this->m_local->refund(c);
    }

    /// Metric `Tag`'s available tokens now (one round trip).
    template <class Tag>
    [[nodiscard]] std::uint64_t available() {
        return available(rategov::detail::checked_index<Metrics, Tag>());
    }
    /// Metric i's available tokens now (one round trip; i < size). While Redis is down: the
    /// local share's, the burst (fail_open) or 0 (fail_closed).
    [[nodiscard]] std::uint64_t available(std::size_t i) { return availability()[i]; }
    /// Every metric's available tokens now (one round trip).
    [[nodiscard]] std::array<std::uint64_t, N> availability() {
        return this->per_metric([](const detail::state<N>& s) { return s.available; }, false);
    }
};

} // namespace redis
RATEGOV_NAMESPACE_END
