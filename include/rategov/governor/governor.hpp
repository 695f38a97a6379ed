/// \file
/// `governor`: several metrics limited at once; a cost vector is taken all-or-nothing, and a
/// `reservation` settles an estimate with the real usage.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>

#include <rategov/bucket/bucket.hpp>
#include <rategov/bucket/gcra.hpp>
#include <rategov/bucket/result.hpp>
#include <rategov/clock/clock.hpp>
#include <rategov/config.hpp>
#include <rategov/governor/metrics.hpp>
#include <rategov/quota/quota.hpp>
#include <rategov/store/store.hpp>

RATEGOV_NAMESPACE_BEGIN

/// Result of a governor's `try_acquire`: as `acquire_result`, plus the metric that decided
/// (`metric`: its index in `metrics<...>`, or `size` when granted). For a denial, `ready_at`
/// is the earliest time at which every metric could grant its part.
template <class TimePoint>
struct governor_result {
    /// Granted, denied or exceeds capacity (see `acquire_result`).
    acquire_status status;
    /// When the tokens were taken (granted) or could be (denied); `TimePoint::max()` for
    /// `exceeds_capacity`.
    TimePoint ready_at;
    /// The index of the metric that refused, or the number of metrics when granted.
    std::size_t metric;

    /// Whether `status` is `acquire_status::granted`.
    [[nodiscard]] constexpr bool granted() const noexcept {
        return status == acquire_status::granted;
    }
    /// `granted()`.
    [[nodiscard]] constexpr explicit operator bool() const noexcept { return granted(); }
};

template <class Governor, class DropPolicy>
class reservation;

template <class... Levels>
class path;

/// Who is asking, when a governor keeps part of its limits for priority traffic (see
/// `governor::set_priority_headroom`).
///
/// - `priority` (the default of every governor call) may use the whole limit, and its
///   reservations queue ahead without bound: it goes first.
/// - `regular` may use only the part of each metric's burst above the headroom, and joins
///   the queue only when nothing is queued beyond that part: a regular `reserve` is refused
///   (nothing taken, `ready_at()` = when to ask again) while priority reservations, or
///   another regular one, are ahead. So regular reservations never stand in front of more
///   than one regular request's worth of tokens, and a priority request waits at most
///   (largest regular cost + its own − headroom) / rate — none when the headroom covers
///   both. Without priority traffic, regular traffic still gets the full rate: only its
///   burst is smaller by the headroom.
enum class traffic_class : std::uint8_t { regular, priority };

namespace detail {
/// A priority headroom share in 1/65536 (rounded down: the regular part is never smaller
/// than the limit × (1 − share)). \throws config_error naming `who` unless 0 ≤ share < 1.
[[nodiscard]] inline std::uint32_t headroom_fixed(double share, const char* who) {
    if (!(share >= 0.0 && share < 1.0))
        throw_config_error(std::string(who) + ": share " + std::to_string(share) +
                           " is not within [0, 1)");
    const auto k = static_cast<std::uint32_t>(share * 65536.0);
    return k < 65535 ? k : 65535;
}
} // namespace detail

/// Drop policy (default): a reservation dropped without `commit` or `cancel` is cancelled —
/// its tokens are refunded, as for a request that was never sent.
struct refund_on_drop {
    /// Cancels `r` (`r.cancel()`).
    template <class Reservation>
    static void on_drop(Reservation& r) noexcept {
        r.cancel();
    }
};

/// Drop policy: a reservation dropped without `commit` or `cancel` keeps its estimate as the
/// usage — for callers who may lose track of a request that was sent.
struct keep_on_drop {
    /// Commits `r` with its own estimate (`r.commit(r.estimate())`).
    template <class Reservation>
    static void on_drop(Reservation& r) noexcept {
        r.commit(r.estimate());
    }
};

/// A drop policy has `static void on_drop(Reservation&) noexcept`.
template <class P, class Reservation>
concept drop_policy = requires(Reservation& r) {
    { P::on_drop(r) }
    noexcept;
};

/// Limits `Metrics` at once, lock-free, each metric a GCRA bucket over one shared `Clock`.
///
/// - `try_acquire(cost)` is all-or-nothing: either every metric grants its part, or nothing
///   stays taken. After any interleaving of threads no metric has granted more than its
///   limit allows.
/// - `reserve(cost)` pays forward and returns a `reservation`: wait until `ready_at()`, send,
///   then `commit(actual)` — surplus is refunded, deficit charged. `cancel()` refunds all;
///   dropping it unsettled applies `DropPolicy` (refund by default).
///
/// \code
/// using llm = rategov::metrics<rategov::metric::total_prompt, rategov::metric::generated>;
/// rategov::governor<llm> gov(rategov::per_minute(3'600'000), rategov::per_minute(36'000));
/// auto r = gov.reserve({rategov::amount<rategov::metric::total_prompt>{1200},
///                       rategov::amount<rategov::metric::generated>{500}});
/// r.wait();                          // until the tokens are ready
/// r.commit({rategov::amount<rategov::metric::total_prompt>{1180},
///           rategov::amount<rategov::metric::generated>{212}});
/// \endcode
template <class Metrics, class Clock = steady_clock, class DropPolicy = refund_on_drop,
          class Store = in_process>
class governor : private Store::template holder<detail::governor_state<Metrics::size, Metrics>>,
                 private detail::clock_base<Clock> {
    static_assert(check_clock<Clock>());
    static_assert(state_store<Store>,
                  "rategov: Store must be a state store (rategov::in_process, "
                  "rategov::shm::store, or a type with `place` and `holder<State>`; see "
                  "rategov::state_store).");
    using base = detail::clock_base<Clock>;
    static constexpr std::size_t N = Metrics::size;
    using state_type = detail::governor_state<N, Metrics>;
    using holder = typename Store::template holder<state_type>;

public:
    /// The metrics limited, as `metrics<...>`.
    using metrics_type = Metrics;
    /// The clock every bucket reads.
    using clock_type = Clock;
    /// A time point of `Clock` (`ready_at`, the `*_at` functions' `at`).
    using time_point = typename Clock::time_point;
    /// A duration of `Clock` (`max_wait`).
    using duration = typename Clock::duration;
    /// A request's cost: one amount per metric.
    using cost_type = cost<Metrics>;
    /// What `try_acquire` returns.
    using result = governor_result<time_point>;
    /// What `reserve` returns.
    using reservation_type = reservation<governor, DropPolicy>;
    /// What a grant took of each metric (see `receipt`).
    using receipts = std::array<receipt, Metrics::size>;
    /// Where the state lives (`in_process` by default; see `state_store`).
    using store_type = Store;
    /// Where `Store` is to put this governor's state (empty for `in_process`).
    using place_type = typename Store::place;

    static_assert(drop_policy<DropPolicy, reservation_type>,
                  "rategov: DropPolicy must provide `static void on_drop(reservation&) "
                  "noexcept`; use rategov::refund_on_drop or rategov::keep_on_drop.");

    /// One quota per metric, in `metrics<...>` order, over a default-constructed clock.
    template <class... Q>
    requires(sizeof...(Q) == N &&
             (std::same_as<Q, quota> && ...)) explicit governor(const Q&... limits)
        : governor(Clock{}, limits...) {}

    /// One quota per metric, in `metrics<...>` order, over `clock` (copied: a handle).
    template <class... Q>
    requires(sizeof...(Q) == N && (std::same_as<Q, quota> && ...) &&
             std::default_initializable<place_type>) explicit governor(const Clock& time_source,
                                                                       const Q&... limits)
        : governor(place_type{}, time_source, limits...) {}

    /// The state at `where` in `Store`, over `clock`: created there with these limits, full,
    /// if there is none yet; else attached as it is (its limits, tokens and tick 0 are those
    /// of whoever created it, and `limits` are ignored). With a shared store every user's
    /// clock must read the same time (`steady_clock` does across the processes of a host).
    template <class... Q>
    requires(sizeof...(Q) == N && (std::same_as<Q, quota> && ...))
        governor(place_type where, const Clock& time_source, const Q&... limits)
        : holder(std::move(where),
                 [&] { return state_type(detail::to_ticks(time_source.now()), limits...); })
        , base(time_source, holder::get().epoch) {}

    governor(const governor&) = delete;
    governor& operator=(const governor&) = delete;

    // --- acquisition ----------------------------------------------------------------------

    /// Takes `c` now if every metric can grant its part, else nothing. Lock-free. A
    /// `traffic_class::regular` request must leave each metric's priority headroom free; a
    /// part larger than the burst minus the headroom then exceeds the capacity.
    [[nodiscard]] RATEGOV_ALWAYS_INLINE result
    try_acquire(const cost_type& c, traffic_class who = traffic_class::priority) noexcept {
        return try_acquire_at(c, this->now(), who);
    }
    /// The same at a caller-supplied time.
    [[nodiscard]] RATEGOV_ALWAYS_INLINE result try_acquire_at(
        const cost_type& c, time_point at, traffic_class who = traffic_class::priority) noexcept {
        const std::uint64_t tau = this->tick_of(at);
        // The word each metric's grant replaced, for a rollback (its receipt is rebuilt from
        // it only then: carrying whole receipts costs the hot path a third).
        std::array<std::uint64_t, N> prior{};
        const step d = take_all(c, tau, who, prior);
        if (d.status != acquire_status::granted)
            return refusal(c, d.metric, {d.status, d.ready}, tau, who);
        return {acquire_status::granted, at, N};
    }

    /// Pays forward: takes `c` now and returns a reservation whose `ready_at()` is when every
    /// metric has its part. Each metric's tokens are placed at that same instant, as a request
    /// made then would take them, so that nobody else can use them then; until then, a metric
    /// that was not the bottleneck keeps back what it will accrue by then (GCRA keeps one
    /// number per metric: it cannot lend out capacity now and promise it later). Refused
    /// (nothing taken) when the wait would exceed `max_wait` — `metric()` names the metric
    /// that needs the wait — or when a part exceeds its metric's burst.
    ///
    /// A `traffic_class::regular` reservation is also refused, with `ready_at()` the time to
    /// ask again, while anything is queued beyond a metric's part above its priority
    /// headroom (see `traffic_class`).
    [[nodiscard]] reservation_type reserve(const cost_type& c, duration max_wait = duration::max(),
                                           traffic_class who = traffic_class::priority) noexcept {
        return reserve_at(c, this->now(), max_wait, who);
    }
    /// The same at a caller-supplied time `at` instead of now.
    [[nodiscard]] reservation_type
    reserve_at(const cost_type& c, time_point at, duration max_wait = duration::max(),
               traffic_class who = traffic_class::priority) noexcept {
        const std::uint64_t tau = this->tick_of(at);
        const step p = plan(c, tau, who);
        if (p.status == acquire_status::exceeds_capacity)
            return reservation_type(*this, c, p.status, time_point::max(), p.metric, {});
        if (p.status == acquire_status::denied) // regular traffic behind others
            return reservation_type(*this, c, p.status, this->time_of(p.ready), p.metric, {});
        receipts taken{};
        const step r = place(c, tau, base::ticks_of(max_wait), p.ready, p.metric, who, taken);
        if (r.status != acquire_status::granted)
            return reservation_type(*this, c, r.status, this->time_of(r.ready), r.metric, {});
        return reservation_type(*this, c, acquire_status::granted,
                                r.ready == tau ? at : this->time_of(r.ready), N, taken);
    }

    /// Gives `c` back without receipts (the bucket of each metric never exceeds its burst):
    /// as if the most recent tokens had not been taken. A reservation's `cancel()` and
    /// `commit()` give back exactly what they took instead.
    void refund(const cost_type& c) noexcept {
        const std::uint64_t tau = this->tick_of(this->now());
        for (std::size_t i = 0; i < N; ++i)
            st().buckets[i].refund(st().words[i].value, c[i], tau);
    }
    /// Takes `c` unconditionally (usage that already happened), into debt if need be.
    void charge(const cost_type& c) noexcept {
        const std::uint64_t tau = this->tick_of(this->now());
        for (std::size_t i = 0; i < N; ++i)
            st().buckets[i].charge(st().words[i].value, c[i], tau);
    }
    /// Makes metric i hold at most `n` tokens now (tightens, never loosens; i < size), e.g.
    /// what the server reports as remaining. Concurrent calls do not add up.
    void cap_available(std::size_t i, std::uint64_t n) noexcept {
        if (i < N)
            st().buckets[i].cap_available(st().words[i].value, n, this->tick_of(this->now()));
    }

    /// Settles an estimate taken with `taken` with the actual usage, metric by metric: the
    /// surplus is given back exactly (see `bucket::refund(n, receipt)`), a deficit charged.
    /// This is what `reservation::commit` does.
    void reconcile(const cost_type& estimate, const cost_type& actual,
                   const receipts& taken) noexcept {
        const std::uint64_t tau = this->tick_of(this->now());
        for (std::size_t i = 0; i < N; ++i) {
            if (actual[i] > estimate[i])
                st().buckets[i].charge(st().words[i].value, actual[i] - estimate[i], tau);
            else
                undo(i, taken[i], estimate[i] - actual[i]);
        }
    }
    /// Gives back exactly what `taken` took of `c` (a cancelled reservation).
    void give_back(const cost_type& c, const receipts& taken) noexcept {
        for (std::size_t j = 0; j < N; ++j)
            undo(j, taken[j], c[j]);
    }

    // --- priority headroom ---------------------------------------------------------------------

    /// Keeps `share` of every metric's burst for priority traffic: regular requests may
    /// use only the rest (see `traffic_class`). 0 (the default) keeps nothing back.
    /// Thread-safe; takes effect for the next request.
    /// \throws config_error unless 0 ≤ share < 1.
    /// \code
    /// gov.set_priority_headroom(0.2); // regular traffic may use 80 % of each burst
    /// auto r = gov.reserve(cost, 10s, rategov::traffic_class::regular);
    /// \endcode
    void set_priority_headroom(double share) {
        const std::uint32_t k = headroom_fixed(share);
        for (auto& h : st().keep)
            h.store(k, std::memory_order_relaxed);
    }
    /// The same for one metric.
    template <class Tag>
    void set_priority_headroom(double share) {
        set_priority_headroom(detail::checked_index<Metrics, Tag>(), share);
    }
    /// The same by index (i < size, else `config_error`).
    void set_priority_headroom(std::size_t i, double share) {
        if (i >= N)
            detail::throw_config_error("governor::set_priority_headroom: metric index " +
                                       std::to_string(i) + " out of range");
        st().keep[i].store(headroom_fixed(share), std::memory_order_relaxed);
    }
    /// The share of metric i's burst kept for priority traffic (to 1/65536).
    [[nodiscard]] double priority_headroom(std::size_t i) const noexcept {
        return i < N ? st().keep[i].load(std::memory_order_relaxed) / 65536.0 : 0.0;
    }

    // --- limits and observation ---------------------------------------------------------------

    /// Changes one metric's limit at runtime (see `bucket::set_limit`).
    template <class Tag>
    void set_limit(const quota& q, inheritance how = inheritance::keep) noexcept {
        set_limit(detail::checked_index<Metrics, Tag>(), q, how);
    }
    /// The same by index; an index ≥ size is ignored.
    void set_limit(std::size_t i, const quota& q, inheritance how = inheritance::keep) noexcept {
        if (i < N)
            st().buckets[i].set_limit(st().words[i].value, q, how,
                                      [this] { return this->tick_of(this->now()); });
    }
    /// One metric's limit in force.
    template <class Tag>
    [[nodiscard]] quota limit() const noexcept {
        constexpr std::size_t i = detail::checked_index<Metrics, Tag>();
        return st().buckets[i].limit(st().words[i].value);
    }
    /// Tokens of one metric available now.
    template <class Tag>
    [[nodiscard]] std::uint64_t available() const noexcept {
        constexpr std::size_t i = detail::checked_index<Metrics, Tag>();
        return st().buckets[i].available(st().words[i].value, this->tick_of(this->now()));
    }
    /// The i-th metric's limit in force (i < size).
    [[nodiscard]] quota limit(std::size_t i) const noexcept {
        return st().buckets[i].limit(st().words[i].value);
    }
    /// The i-th metric's available tokens now (i < size).
    [[nodiscard]] std::uint64_t available(std::size_t i) const noexcept {
        return st().buckets[i].available(st().words[i].value, this->tick_of(this->now()));
    }
    /// Every metric's limit, in `metrics<...>` order.
    [[nodiscard]] std::array<quota, N> limits() const noexcept {
        return each([](const detail::gcra& b, const word& w, std::uint64_t) { return b.limit(w); });
    }
    /// Every metric's available tokens now, in `metrics<...>` order.
    [[nodiscard]] std::array<std::uint64_t, N> availability() const noexcept {
        return each([](const detail::gcra& b, const word& w, std::uint64_t tau) {
            return b.available(w, tau);
        });
    }
    /// Every metric's debt now, in `metrics<...>` order.
    [[nodiscard]] std::array<std::uint64_t, N> debts() const noexcept {
        return each(
            [](const detail::gcra& b, const word& w, std::uint64_t tau) { return b.debt(w, tau); });
    }

    using base::clock;
    using base::now;

private:
    template <class... Levels>
    friend class path;

    /// A decision in tick space and the metric that made it (N: none).
    struct step {
        acquire_status status;
        std::uint64_t ready;
        std::size_t metric;
    };

    /// Takes `c` at τ, metric by metric, recording in `prior` the word each grant replaced;
    /// on a refusal gives back what it took and names the metric that refused.
    [[nodiscard]] RATEGOV_ALWAYS_INLINE step
    take_all(const cost_type& c, std::uint64_t tau, traffic_class who,
             std::array<std::uint64_t, N>& prior) noexcept {
        for (std::size_t i = 0; i < N; ++i) {
            if (c[i] == 0)
                continue;
            const auto d = st().buckets[i].take(
                st().words[i].value, c[i], tau,
                [&](std::uint64_t p, std::uint64_t, std::uint64_t) { prior[i] = p; },
                keep_of(i, who));
            if (d.status != acquire_status::granted) {
                roll_back(c, prior, i, tau);
                return {d.status, d.ready, i};
            }
        }
        return {acquire_status::granted, tau, N};
    }

    /// What `reserve` would need, read without taking anything: `exceeds_capacity` (metric:
    /// which); for regular traffic queued behind others, `denied` with the tick to ask again
    /// (metric: which queue); else `granted` with the common ready tick — the latest any
    /// metric needs — and the metric that sets it (N: none waits).
    [[nodiscard]] step plan(const cost_type& c, std::uint64_t tau,
                            traffic_class who) const noexcept {
        std::uint64_t ready = tau;
        std::size_t bottleneck = N; // the metric that sets the ready tick, for a refusal
        std::uint64_t admit = tau;  // regular traffic: when it may join every queue
        std::size_t blocker = N;
        for (std::size_t i = 0; i < N; ++i) {
            if (c[i] == 0)
                continue;
            const std::uint64_t keep = keep_of(i, who);
            const detail::tick_result p =
                st().buckets[i].peek(st().words[i].value, c[i], tau, keep);
            if (p.status == acquire_status::exceeds_capacity)
                return {p.status, detail::tick_max, i};
            if (who == traffic_class::regular) {
                const detail::tick_result q =
                    st().buckets[i].admission(st().words[i].value, keep, tau);
                if (q.status != acquire_status::granted && q.ready > admit) {
                    admit = q.ready;
                    blocker = i;
                }
            }
            if (p.status == acquire_status::denied && p.ready > ready) {
                ready = p.ready;
                bottleneck = i;
            }
        }
        if (blocker < N)
            return {acquire_status::denied, admit, blocker};
        return {acquire_status::granted, ready, bottleneck};
    }

    /// Takes every metric of `c` at the tick `ready` (≥ τ) or, if another caller moved one
    /// later meanwhile, at that later tick: that metric stays where it is and only the
    /// metrics placed before it are placed again (a single metric never retries). Returns
    /// the tick all are placed at, with `taken` their receipts; or a refusal (nothing
    /// taken): `denied` beyond `wait` ticks after τ — `metric` is the bottleneck — or
    /// `exceeds_capacity`.
    [[nodiscard]] step place(const cost_type& c, std::uint64_t tau, std::uint64_t wait,
                             std::uint64_t ready, std::size_t bottleneck, traffic_class who,
                             receipts& taken) noexcept {
        std::array<std::uint64_t, N> placed_at{}; // 0: not placed
        for (;;) {
            bool moved = false;
            for (std::size_t i = 0; i < N; ++i) {
                if (c[i] == 0 || placed_at[i] == ready + 1)
                    continue;
                if (placed_at[i] != 0)
                    undo(i, taken[i], c[i]); // placed at an earlier tick: place again
                // Regular traffic is admitted on the very word it swaps: a check on an
                // earlier snapshot would let racing regular requests all join the queue.
                const detail::tick_result r =
                    st().buckets[i].reserve(st().words[i].value, c[i], tau, wait, ready,
                                            keep_of(i, who), who == traffic_class::regular);
                if (r.status != acquire_status::granted) {
                    taken[i] = {}; // undone above, or never taken
                    give_back(c, taken);
                    taken = {};
                    const std::size_t which =
                        r.status == acquire_status::denied && bottleneck < N ? bottleneck : i;
                    return {r.status, r.ready, which};
                }
                taken[i] = r.taken;
                placed_at[i] = r.ready + 1;
                if (r.ready > ready) {
                    ready = r.ready;
                    bottleneck = i;
                    moved = true;
                    break;
                }
            }
            if (!moved)
                return {acquire_status::granted, ready, N};
        }
    }

    /// Metric i's headroom for `who`, in 1/65536 of its burst (0 for priority traffic).
    [[nodiscard]] RATEGOV_ALWAYS_INLINE std::uint64_t keep_of(std::size_t i,
                                                              traffic_class who) const noexcept {
        // relaxed: a setting, not a publication; a request may see the old or the new share.
        return who == traffic_class::regular ? st().keep[i].load(std::memory_order_relaxed) : 0;
    }
    [[nodiscard]] static std::uint32_t headroom_fixed(double share) {
        return detail::headroom_fixed(share, "governor::set_priority_headroom");
    }

    template <class F>
    [[nodiscard]] auto each(F f) const noexcept {
        const std::uint64_t tau = this->tick_of(this->now());
        return [&]<std::size_t... I>(std::index_sequence<I...>) {
            return std::array{f(st().buckets[I], st().words[I].value, tau)...};
        }
        (std::make_index_sequence<N>{});
    }

    /// Gives back what the metrics before `upto` took at τ (those with a part in `c`).
    RATEGOV_COLD void roll_back(const cost_type& c, const std::array<std::uint64_t, N>& prior,
                                std::size_t upto, std::uint64_t tau) noexcept {
        for (std::size_t j = 0; j < upto; ++j)
            if (c[j] != 0)
                undo(j, st().buckets[j].receipt_of(st().words[j].value, prior[j], c[j], tau), c[j]);
    }

    /// Gives back up to n of what receipt r took on metric i, judged at a fresh clock read.
    void undo(std::size_t i, const receipt& r, std::uint64_t n) noexcept {
        st().buckets[i].undo(st().words[i].value, r, n,
                             [this] { return this->tick_of(this->now()); });
    }

    /// The earliest tick at which every metric could grant its part of `c` (read, nothing
    /// taken): `granted` at τ, `denied` with that tick, or `exceeds_capacity` and which.
    [[nodiscard]] step earliest(const cost_type& c, std::uint64_t tau,
                                traffic_class who) const noexcept {
        step out{acquire_status::granted, tau, N};
        for (std::size_t j = 0; j < N; ++j) {
            if (c[j] == 0)
                continue;
            const detail::tick_result p =
                st().buckets[j].peek(st().words[j].value, c[j], tau, keep_of(j, who));
            if (p.status == acquire_status::exceeds_capacity)
                return {p.status, detail::tick_max, j};
            if (p.status == acquire_status::denied && p.ready >= out.ready)
                out = {acquire_status::denied, p.ready, j};
        }
        return out;
    }

    /// How far ahead of τ, in ticks, `c` may be placed without leaving a metric in debt at τ
    /// (see `gcra::lead`): the least over the metrics `c` takes.
    [[nodiscard]] std::uint64_t lead(const cost_type& c, traffic_class who) const noexcept {
        std::uint64_t out = detail::tick_max;
        for (std::size_t i = 0; i < N; ++i)
            if (c[i] != 0)
                out =
                    std::min(out, st().buckets[i].lead(st().words[i].value, c[i], keep_of(i, who)));
        return out;
    }
    /// The most of metric i one request of `who` may take (its burst, less the priority
    /// headroom for regular traffic).
    [[nodiscard]] std::uint64_t allowance(std::size_t i, traffic_class who) const noexcept {
        return st().buckets[i].allowance(st().words[i].value, keep_of(i, who));
    }

    /// The refusal for metric i, with the earliest time at which all metrics could grant.
    [[nodiscard]] result refusal(const cost_type& c, std::size_t i, detail::tick_result r,
                                 std::uint64_t tau, traffic_class who) const noexcept {
        if (r.status == acquire_status::exceeds_capacity)
            return {r.status, time_point::max(), i};
        const step e = earliest(c, tau, who);
        if (e.status == acquire_status::exceeds_capacity)
            return {e.status, time_point::max(), e.metric};
        return {acquire_status::denied, this->time_of(std::max(r.ready, e.ready)), i};
    }

    using word = detail::gcra::word;
    // The shared state (see `detail::governor_state`), wherever the store keeps it.
    [[nodiscard]] RATEGOV_ALWAYS_INLINE state_type& st() noexcept { return holder::get(); }
    [[nodiscard]] RATEGOV_ALWAYS_INLINE const state_type& st() const noexcept {
        return holder::get();
    }
};

/// An estimated cost taken from a governor, to be settled with the real usage.
///
/// Move-only. `commit(actual)` reconciles (surplus refunded, deficit charged); `cancel()`
/// refunds the estimate; each settles at most once — later calls do nothing. Dropped
/// unsettled, it applies `DropPolicy`. A refused reservation (`!r`) holds nothing:
/// `cancel()` does nothing, `commit(actual)` charges `actual` (the usage happened anyway).
///
/// \code
/// auto r = gov.reserve(estimate, std::chrono::seconds(5));
/// if (!r) return r.status();          // denied (would wait > 5 s) or exceeds_capacity
/// r.wait();                           // sleeps until ready_at() (virtual on a manual clock)
/// auto usage = send_request();
/// r.commit(usage);
/// \endcode
template <class Governor, class DropPolicy>
class reservation {
public:
    /// The governor's cost type (`estimate()`, `commit`'s `actual`).
    using cost_type = typename Governor::cost_type;
    /// A time point of the governor's clock (`ready_at()`).
    using time_point = typename Governor::time_point;

    /// Takes over what `other` holds; `other` is left holding nothing.
    reservation(reservation&& other) noexcept
        : m_governor(std::exchange(other.m_governor, nullptr))
        , m_estimate(other.m_estimate)
        , m_taken(other.m_taken)
        , m_ready_at(other.m_ready_at)
        , m_metric(other.m_metric)
        , m_status(other.m_status) {}
    /// Settles what this holds as a drop would (`DropPolicy`), then takes over what `other`
    /// holds; `other` is left holding nothing.
    reservation& operator=(reservation&& other) noexcept {
        if (this != &other) {
            settle_on_drop();
            m_governor = std::exchange(other.m_governor, nullptr);
            m_estimate = other.m_estimate;
            m_taken = other.m_taken;
            m_ready_at = other.m_ready_at;
            m_metric = other.m_metric;
            m_status = other.m_status;
        }
        return *this;
    }
    reservation(const reservation&) = delete;
    reservation& operator=(const reservation&) = delete;
    ~reservation() { settle_on_drop(); }

    /// granted, denied or exceeds_capacity.
    [[nodiscard]] acquire_status status() const noexcept { return m_status; }
    /// True when granted.
    [[nodiscard]] explicit operator bool() const noexcept {
        return m_status == acquire_status::granted;
    }
    /// When the tokens may be used (granted), or when they would have been (denied).
    [[nodiscard]] time_point ready_at() const noexcept { return m_ready_at; }
    /// The metric that refused (index in `metrics<...>`), or the number of metrics.
    [[nodiscard]] std::size_t metric() const noexcept { return m_metric; }
    /// The estimated cost this reservation holds.
    [[nodiscard]] const cost_type& estimate() const noexcept { return m_estimate; }
    /// Whether it still holds tokens to settle.
    [[nodiscard]] bool pending() const noexcept {
        return m_governor != nullptr && m_status == acquire_status::granted;
    }

    /// Blocks until `ready_at()` through the clock's wait policy (on a manual clock: virtual
    /// time, never a real sleep). Returns at once if not granted.
    void wait() const {
        if (m_governor != nullptr && m_status == acquire_status::granted)
            sleep_until(m_governor->clock(), m_ready_at);
    }

    /// Settles with the real usage: each metric's surplus is refunded, its deficit charged.
    void commit(const cost_type& actual) noexcept {
        if (m_governor == nullptr)
            return;
        auto* g = std::exchange(m_governor, nullptr);
        if (m_status == acquire_status::granted)
            g->reconcile(m_estimate, actual, m_taken);
        else
            g->charge(actual);
    }
    /// Gives the whole estimate back.
    void cancel() noexcept {
        if (m_governor == nullptr)
            return;
        auto* g = std::exchange(m_governor, nullptr);
        if (m_status == acquire_status::granted)
            g->give_back(m_estimate, m_taken);
    }

private:
    friend Governor;
    reservation(Governor& g, const cost_type& estimate, acquire_status status, time_point ready_at,
                std::size_t metric, const typename Governor::receipts& taken) noexcept
        : m_governor(&g)
        , m_estimate(estimate)
        , m_taken(taken)
        , m_ready_at(ready_at)
        , m_metric(metric)
        , m_status(status) {}

    void settle_on_drop() noexcept {
        if (pending())
            DropPolicy::on_drop(*this);
        m_governor = nullptr;
    }

    Governor* m_governor;
    cost_type m_estimate;
    typename Governor::receipts m_taken;
    time_point m_ready_at;
    std::size_t m_metric;
    acquire_status m_status;
};

RATEGOV_NAMESPACE_END
