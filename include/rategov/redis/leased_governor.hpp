/// \file
/// `redis::leased_governor`: a Redis governor whose `try_acquire` is served from a local,
/// lock-free pool of tokens leased from the shared bucket, one round trip per lease.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string>
#include <thread>

#include <rategov/bucket/result.hpp>
#include <rategov/clock/clock.hpp>
#include <rategov/config.hpp>
#include <rategov/governor/governor.hpp>
#include <rategov/governor/metrics.hpp>
#include <rategov/quota/quota.hpp>
#include <rategov/redis/governor.hpp>
#include <rategov/redis/store.hpp>

RATEGOV_NAMESPACE_BEGIN
namespace redis {

/// A Redis governor that leases slices of the shared budget into a local pool, so that
/// most `try_acquire` calls take no round trip. Same interface as `redis::governor` (and
/// `rategov::governor`).
///
/// - **Leases.** When the pool cannot serve a request, one caller takes a slice of every
///   metric the request needs in one atomic `lease` (at least the request's cost; more if
///   the bucket has it), serves the request from it and puts the rest in the pool. Other
///   callers meanwhile wait for that round trip and try the pool again; they do not
///   stampede Redis. A refused lease makes the process answer "denied until ready_at"
///   locally until then.
/// - **Adaptive slices.** A slice is the local rate observed over the last lease times
///   `options::lease_horizon`, at least the request's cost, growing at most fourfold per
///   lease, and at most burst / (2 × `options::expected_processes`) (or the cost if larger).
///   An idle process thus holds little, and a busy one refills rarely.
/// - **The limit holds.** Every leased token was taken from the shared bucket, so the
///   processes together never take more than the limit allows since the key was created.
///   In a window, leasing can shift usage by at most the sum of the slices outstanding:
///   leased tokens older than `lease_horizon` are given back before new ones are taken, so
///   they cannot pile up. The same bound is the most that stays unused: tokens stranded in
///   idle pools. A process that dies loses its unreturned slice; it counts as used and is
///   recovered by time, as any taken token is.
/// - **Returns.** Unused leased tokens go back (`refund`, never above the burst) when they
///   expire, on `return_unused()` and on destruction.
/// - **Settling.** A reservation's surplus goes to the local pool, a deficit is taken from
///   it (the pool may go negative; the debt is settled with Redis when the pool is
///   returned). What goes into the pool serves this process's next requests and
///   reservations, without a round trip, for `lease_horizon`; then it goes back to Redis
///   before Redis is asked again. `charge` and `refund` go to Redis.
/// - **What the server says is left** (`cap_available`) caps the pool and Redis together:
///   the pool keeps at most that much, Redis at most the rest.
/// - **Failures** as for `redis::governor` (`options::on_failure`, circuit breaker).
///
/// \code
/// rategov::redis::options opt;
/// opt.endpoint = {.host = "10.0.0.5", .port = 6379};
/// opt.expected_processes = 8; // slices of at most burst / 16
/// rategov::redis::leased_governor<llm> gov(opt, "acct-42/gpt-x", rategov::per_minute(600),
///                                          rategov::per_minute(90'000));
/// if (gov.try_acquire(cost)) send();      // from the pool: no round trip, mostly
/// auto r = rategov::call(gov, request, estimate, transport, call_options);
/// \endcode
///
/// The pool is one `std::atomic<std::int64_t>` per metric, on a cache line of its own;
/// `try_acquire` from the pool is lock-free and allocation-free. Thread-safe.
template <class Metrics, class Clock = steady_clock, class DropPolicy = refund_on_drop>
class leased_governor : private detail::remote_base<Metrics, Clock> {
    static_assert(check_clock<Clock>());
    using base = detail::remote_base<Metrics, Clock>;
    static constexpr std::size_t N = Metrics::size;

public:
    /// The metrics limited, as `metrics<...>`.
    using metrics_type = Metrics;
    /// The clock that anchors every answer and times the leases.
    using clock_type = Clock;
    /// A time point of `Clock`.
    using time_point = typename Clock::time_point;
    /// A duration of `Clock`.
    using duration = typename Clock::duration;
    /// A request's cost: one amount per metric.
    using cost_type = cost<Metrics>;
    /// What `try_acquire` returns.
    using result = governor_result<time_point>;
    /// What `reserve` returns.
    using reservation_type = reservation<leased_governor, DropPolicy>;
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
    /// \throws config_error as `redis::governor`'s constructor.
    template <class... Q>
    requires(sizeof...(Q) == N && (std::same_as<Q, quota> && ...))
        leased_governor(const options& opt, const std::string& key, const Q&... quotas)
        : leased_governor(Clock{}, opt, key, quotas...) {}

    /// The same over `clock` (copied: a handle).
    template <class... Q>
    requires(sizeof...(Q) == N && (std::same_as<Q, quota> && ...))
        leased_governor(const Clock& time_source, const options& opt, const std::string& key,
                        const Q&... quotas)
        : base(time_source, opt, key, std::array<quota, N>{quotas...}) {}

    leased_governor(const leased_governor&) = delete;
    leased_governor& operator=(const leased_governor&) = delete;

    /// Gives the unused leased tokens back to Redis.
    ~leased_governor() {
        try {
            give_back_pool();
        } catch (...) { // no memory for the round trip: the leased tokens stay taken
        }
    }

    /// Takes `c` from the local pool when it has every part (lock-free, no round trip),
    /// else leases (one round trip, see the class comment). `who` is not enforced in Redis.
    [[nodiscard]] result try_acquire(const cost_type& c,
                                     traffic_class who = traffic_class::priority) {
        return try_acquire_at(c, now(), who);
    }
    /// The same at `at` (which also times the leases).
    [[nodiscard]] result try_acquire_at(const cost_type& c, time_point at,
                                        traffic_class who = traffic_class::priority) {
        // relaxed: the expiry is advisory; a stale read uses a lease a moment late or takes
        // the slow path once more, and the pool's own counts stay exact either way.
        if (rategov::detail::to_ticks(at) <= m_expires.load(std::memory_order_relaxed) &&
            take_local(c))
            return {acquire_status::granted, at, N};
        return slow(c, at, who);
    }

    /// Pays forward: from the pool when it has every part (ready now), else one round trip
    /// to Redis as `redis::governor::reserve`.
    [[nodiscard]] reservation_type reserve(const cost_type& c, duration max_wait = duration::max(),
                                           traffic_class who = traffic_class::priority) {
        return reserve_at(c, now(), max_wait, who);
    }
    /// The same, anchored at `at`.
    [[nodiscard]] reservation_type reserve_at(const cost_type& c, time_point at,
                                              duration max_wait = duration::max(),
                                              traffic_class who = traffic_class::priority) {
        const std::int64_t t = rategov::detail::to_ticks(at);
        if (t <= m_expires.load(std::memory_order_relaxed) && take_local(c))
            return reservation_type(*this, c, acquire_status::granted, at, N,
                                    marked(c, detail::from_pool));
        // Tokens that sat in the pool past the horizon go back before Redis is asked again:
        // other processes may need them.
        if (t > m_expires.load(std::memory_order_relaxed) && pool_holds_tokens())
            static_cast<void>(return_unused());
        if (auto s = this->reserve_raw(c, at, max_wait)) {
            if (s->status != acquire_status::granted) {
                const result r = this->answer(*s, at);
                return reservation_type(*this, c, r.status, r.ready_at, r.metric, {});
            }
            return reservation_type(*this, c, acquire_status::granted,
                                    detail::after(at, s->wait_us), N,
                                    marked(c, detail::from_redis));
        }
        auto f = this->fallback_reserve(c, at, who);
        return reservation_type(*this, c, f.status, f.ready_at, f.metric, f.taken);
    }

    /// Makes metric i hold at most `n` tokens now, the pool's and Redis' together (what the
    /// server says is left): the pool keeps at most `n`, Redis at most the rest.
    void cap_available(std::size_t i, std::uint64_t n) {
        if (i >= N)
            return;
        const std::int64_t most = clamp(n);
        std::int64_t v = m_pool[i].tokens.load(std::memory_order_relaxed);
        while (v > most && !m_pool[i].tokens.compare_exchange_weak(
                               v, most, std::memory_order_relaxed, std::memory_order_relaxed)) {
        }
        const std::uint64_t kept = v <= 0 ? 0 : static_cast<std::uint64_t>(std::min(v, most));
        this->cap_raw(i, n - kept);
    }

    /// Settles an estimate with the actual usage: surplus into the pool, deficit taken from
    /// it (it may go negative); through the local share for its grants.
    void reconcile(const cost_type& estimate, const cost_type& actual,
                   const receipts& taken) noexcept {
        const std::uint64_t from = detail::source_of(taken);
        if (from == detail::from_local) {
            this->settle_local(estimate, actual);
            return;
        }
        const bool recorded = from == detail::from_pool || from == detail::from_redis;
        for (std::size_t i = 0; i < N; ++i) {
            const auto a = clamp(actual[i]);
            const auto e = clamp(estimate[i]);
            if (!recorded && a <= e)
                continue;
            // relaxed: a count, see take_local.
            m_pool[i].tokens.fetch_add(e - a, std::memory_order_relaxed);
        }
        if (recorded)
            keep_pool_for_a_horizon();
    }
    /// Gives back what a grant with `taken` took of `c`: into the pool (its own tokens or
    /// Redis'), or the local share.
    void give_back(const cost_type& c, const receipts& taken) noexcept {
        const std::uint64_t from = detail::source_of(taken);
        if (from == detail::from_pool || from == detail::from_redis) {
            for (std::size_t i = 0; i < N; ++i)
                m_pool[i].tokens.fetch_add(clamp(c[i]), std::memory_order_relaxed);
            keep_pool_for_a_horizon();
        } else if (from == detail::from_local && this->m_local) {
            this->m_local->refund(c);
        }
    }

    /// Returns the pool's unused tokens (and settles its debt) with Redis now. False when a
    /// lease was in progress (nothing done; try again). Thread-safe.
    bool return_unused() {
        bool expected = false;
        // acquire: pairs with the release in finish_refill (the lease bookkeeping).
        if (!m_refilling.compare_exchange_strong(expected, true, std::memory_order_acquire,
                                                 std::memory_order_relaxed))
            return false;
        give_back_pool();
        m_refilling.store(false, std::memory_order_release);
        return true;
    }
    /// Tokens of each metric in the local pool now (negative: debt not yet settled).
    [[nodiscard]] std::array<std::int64_t, N> leased() const noexcept {
        std::array<std::int64_t, N> out{};
        for (std::size_t i = 0; i < N; ++i)
            out[i] = m_pool[i].tokens.load(std::memory_order_relaxed);
        return out;
    }

    /// Metric `Tag`'s available tokens now: Redis' plus the pool's (one round trip).
    template <class Tag>
    [[nodiscard]] std::uint64_t available() {
        return available(rategov::detail::checked_index<Metrics, Tag>());
    }
    /// Metric i's available tokens now: Redis' plus the pool's (one round trip; i < size).
    [[nodiscard]] std::uint64_t available(std::size_t i) { return availability()[i]; }
    /// Every metric's available tokens now: Redis' plus the pool's (one round trip).
    [[nodiscard]] std::array<std::uint64_t, N> availability() {
        auto a = this->per_metric([](const detail::state<N>& s) { return s.available; }, false);
        for (std::size_t i = 0; i < N; ++i) {
            const std::int64_t p = m_pool[i].tokens.load(std::memory_order_relaxed);
            a[i] += p > 0 ? static_cast<std::uint64_t>(p) : 0;
        }
        return a;
    }

private:
    /// Tokens given back into the pool are this process's to use for a horizon from now,
    /// then go back to Redis (see reserve_at and refill).
    void keep_pool_for_a_horizon() noexcept {
        const std::int64_t horizon = horizon_ns();
        const std::int64_t t = rategov::detail::to_ticks(now());
        const std::int64_t until = t > INT64_MAX - horizon ? INT64_MAX : t + horizon;
        // relaxed: advisory, as everywhere m_expires is used.
        std::int64_t e = m_expires.load(std::memory_order_relaxed);
        while (e < until && !m_expires.compare_exchange_weak(e, until, std::memory_order_relaxed,
                                                             std::memory_order_relaxed)) {
        }
    }
    [[nodiscard]] std::int64_t horizon_ns() const noexcept {
        return std::chrono::duration_cast<std::chrono::nanoseconds>(
                   this->m_store.opts().lease_horizon)
            .count();
    }
    [[nodiscard]] bool pool_holds_tokens() const noexcept {
        for (const auto& p : m_pool)
            if (p.tokens.load(std::memory_order_relaxed) > 0)
                return true;
        return false;
    }
    static std::int64_t clamp(std::uint64_t v) noexcept {
        return static_cast<std::int64_t>(v < detail::level_max ? v : detail::level_max);
    }
    static receipts marked(const cost_type& c, std::uint64_t from) noexcept {
        receipts t{};
        for (std::size_t i = 0; i < N; ++i)
            t[i] = {0, 0, c[i], from};
        return t;
    }

    /// Takes every part of `c` from the pool, or nothing.
    bool take_local(const cost_type& c) noexcept {
        for (std::size_t i = 0; i < N; ++i) {
            if (c[i] == 0)
                continue;
            const std::int64_t need = clamp(c[i]);
            // A part beyond the burst is refused by Redis (exceeds_capacity), never served
            // from a pool that happens to hold that much. relaxed: a setting.
            if (c[i] > m_pool[i].burst.load(std::memory_order_relaxed)) {
                for (std::size_t j = 0; j < i; ++j)
                    m_pool[j].tokens.fetch_add(clamp(c[j]), std::memory_order_relaxed);
                return false;
            }
            // relaxed: the pool is a count; no other data is published through it, and the
            // total order of read-modify-writes on one atomic keeps the count exact.
            std::int64_t v = m_pool[i].tokens.load(std::memory_order_relaxed);
            do {
                if (v < need) {
                    for (std::size_t j = 0; j < i; ++j) // give back what was taken
                        m_pool[j].tokens.fetch_add(clamp(c[j]), std::memory_order_relaxed);
                    return false;
                }
            } while (!m_pool[i].tokens.compare_exchange_weak(v, v - need, std::memory_order_relaxed,
                                                             std::memory_order_relaxed));
        }
        return true;
    }

    result slow(const cost_type& c, time_point at, traffic_class who) {
        const std::int64_t t = rategov::detail::to_ticks(at);
        for (int round = 0; round < 3; ++round) {
            // relaxed: advisory, as m_expires.
            const std::int64_t until = m_denied_until.load(std::memory_order_relaxed);
            if (t < until)
                return {acquire_status::denied, rategov::detail::from_ticks<time_point>(until),
                        m_denied_metric.load(std::memory_order_relaxed)};
            bool expected = false;
            // (1) acquire: pairs with the release in (2), so that this refiller sees the
            //     bookkeeping (m_slice, m_last_lease) of the previous one.
            if (m_refilling.compare_exchange_strong(expected, true, std::memory_order_acquire,
                                                    std::memory_order_relaxed)) {
                result r{};
                try {
                    r = refill(c, at, t, who);
                } catch (...) {
                    m_refilling.store(false, std::memory_order_release); // never left set
                    throw;
                }
                m_refilling.store(false, std::memory_order_release); // (2)
                return r;
            }
            // Someone else is leasing: wait for its round trip (bounded by the endpoint's
            // timeouts), then try the pool it filled. (3) acquire: pairs with (2), so that
            // the pool's new tokens are seen.
            while (m_refilling.load(std::memory_order_acquire))
                std::this_thread::yield();
            if (t <= m_expires.load(std::memory_order_relaxed) && take_local(c))
                return {acquire_status::granted, at, N};
        }
        return {acquire_status::denied, at, N}; // contended: ask again
    }

    /// Called with m_refilling held.
    result refill(const cost_type& c, time_point at, std::int64_t t, traffic_class who) {
        if (t > m_expires.load(std::memory_order_relaxed))
            give_back_pool(); // stale leases go back before new ones are taken
        else if (take_local(c))
            return {acquire_status::granted, at, N}; // the pool was refilled meanwhile
        const auto in_force = this->m_store.limits();
        for (std::size_t i = 0; i < N; ++i)
            m_pool[i].burst.store(in_force[i].burst(), std::memory_order_relaxed);
        const std::int64_t horizon = horizon_ns();
        const std::int64_t dt = m_last_lease == INT64_MIN ? 0 : t - m_last_lease;
        cost_type most{};
        for (std::size_t i = 0; i < N; ++i) {
            const std::uint64_t most_i =
                in_force[i].burst() / (2 * std::uint64_t{this->m_store.opts().expected_processes});
            std::uint64_t want = 0;
            if (m_slice[i] > 0) {
                // The rate seen since the last lease, times the horizon (long double: the
                // product may pass 2^64; the result is only a size hint).
                want = dt <= 0 ? most_i
                               : static_cast<std::uint64_t>(std::min<long double>(
                                     static_cast<long double>(m_slice[i]) * horizon / dt,
                                     static_cast<long double>(most_i)));
                want = std::min(want, 4 * m_slice[i] + c[i]);
            }
            most[i] = std::max(std::min(want, most_i), c[i]);
        }
        auto s = this->lease(c, most, at);
        if (!s)
            return this->fallback_try(c, at, who);
        if (s->status == acquire_status::exceeds_capacity)
            return this->answer(*s, at);
        if (s->status == acquire_status::denied) {
            const result r = this->answer(*s, at);
            m_denied_metric.store(r.metric, std::memory_order_relaxed);
            m_denied_until.store(rategov::detail::to_ticks(r.ready_at), std::memory_order_relaxed);
            return r;
        }
        for (std::size_t i = 0; i < N; ++i) {
            m_slice[i] = s->taken[i];
            const std::uint64_t extra = s->taken[i] - std::min(s->taken[i], c[i]);
            if (extra > 0)
                m_pool[i].tokens.fetch_add(clamp(extra), std::memory_order_relaxed);
        }
        m_last_lease = t;
        m_expires.store(t > INT64_MAX - horizon ? INT64_MAX : t + horizon,
                        std::memory_order_relaxed);
        return {acquire_status::granted, at, N};
    }

    /// Empties the pool into Redis (refunds what it holds, charges its debt). Called with
    /// m_refilling held, or from the destructor.
    void give_back_pool() {
        std::array<std::int64_t, N> d{};
        bool any = false;
        for (std::size_t i = 0; i < N; ++i) {
            d[i] = -m_pool[i].tokens.exchange(0, std::memory_order_relaxed);
            any = any || d[i] != 0;
        }
        // Unsent tokens are lost while Redis is down (safe for the limit); an unsent debt
        // goes back into the pool, to be settled by the next return.
        if (any && !this->adjust(d))
            for (std::size_t i = 0; i < N; ++i)
                if (d[i] > 0)
                    m_pool[i].tokens.fetch_sub(d[i], std::memory_order_relaxed);
        m_expires.store(INT64_MIN, std::memory_order_relaxed);
    }

    struct alignas(RATEGOV_CACHE_LINE) padded_count {
        std::atomic<std::int64_t> tokens{0};
        std::atomic<std::uint64_t> burst{UINT64_MAX}; // the limit's burst at the last lease
    };
    static_assert(std::atomic<std::int64_t>::is_always_lock_free);
    std::array<padded_count, N> m_pool{};
    alignas(RATEGOV_CACHE_LINE) std::atomic<std::int64_t> m_expires{INT64_MIN}; // clock ticks
    std::atomic<std::int64_t> m_denied_until{INT64_MIN};                        // clock ticks
    std::atomic<std::size_t> m_denied_metric{N};
    std::atomic<bool> m_refilling{false};
    // Lease bookkeeping, touched only by the caller holding m_refilling.
    std::array<std::uint64_t, N> m_slice{};
    std::int64_t m_last_lease = INT64_MIN;
};

} // namespace redis
RATEGOV_NAMESPACE_END
