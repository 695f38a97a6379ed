/// \file
/// `bucket`: one metric's limit, lock-free, over a clock.
#pragma once

#include <chrono>
#include <cstdint>

#include <rategov/bucket/gcra.hpp>
#include <rategov/bucket/result.hpp>
#include <rategov/clock/clock.hpp>
#include <rategov/config.hpp>
#include <rategov/quota/quota.hpp>

RATEGOV_NAMESPACE_BEGIN
namespace detail {

/// A clock and the epoch that turns its time points into bucket ticks (ns since the epoch,
/// clamped to [0, tick_max]: a clock that goes back before the epoch reads as the epoch).
template <class C>
class clock_base {
public:
    using time_point = typename C::time_point;

    explicit clock_base(const C& clock)
        : m_clock(clock)
        , m_epoch(to_ticks(clock.now())) {}
    /// Tick 0 at `epoch` nanoseconds of the clock (a state shared with others: theirs).
    clock_base(const C& clock, std::int64_t epoch)
        : m_clock(clock)
        , m_epoch(epoch) {}

    [[nodiscard]] const C& clock() const noexcept { return m_clock; }
    [[nodiscard]] time_point now() const noexcept { return m_clock.now(); }

    [[nodiscard]] std::uint64_t tick_of(time_point tp) const noexcept {
        const std::int64_t t = to_ticks(tp);
        if (t <= m_epoch)
            return 0;
        const std::uint64_t d = static_cast<std::uint64_t>(t) - static_cast<std::uint64_t>(m_epoch);
        return d < tick_max ? d : tick_max;
    }
    [[nodiscard]] time_point time_of(std::uint64_t tick) const noexcept {
        if (tick >= tick_max)
            return time_point::max();
        const std::uint64_t t = static_cast<std::uint64_t>(m_epoch) + tick; // no overflow:
        // m_epoch < 2^63 and tick < 2^62 give t < 2^64; clamp to int64.
        constexpr auto i64_max = static_cast<std::uint64_t>(INT64_MAX);
        return from_ticks<time_point>(t > i64_max ? INT64_MAX : static_cast<std::int64_t>(t));
    }
    template <class Rep, class Period>
    [[nodiscard]] static std::uint64_t ticks_of(std::chrono::duration<Rep, Period> d) noexcept {
        if (d <= std::chrono::duration<Rep, Period>::zero())
            return 0;
        if (d >= std::chrono::duration<Rep, Period>::max())
            return tick_max;
        const std::int64_t t = duration_to_ticks(d);
        return static_cast<std::uint64_t>(t) < tick_max ? static_cast<std::uint64_t>(t) : tick_max;
    }

private:
    [[no_unique_address]] C m_clock;
    std::int64_t m_epoch;
};

} // namespace detail

/// One metric's rate limit: a lock-free GCRA token bucket over `Clock`.
///
/// Every operation is thread-safe and lock-free; the acquisition path allocates nothing,
/// throws nothing and takes no lock (one call in 2^60/c ns moves the bucket's epoch and may
/// wait for a concurrent `set_limit`; see `detail::gcra`). Time is kept in integer
/// nanoseconds and the rate is exact over any horizon — a caller that takes every token it
/// can gets between `rate·T − 1` and `burst + rate·T` tokens in any interval of length T —
/// for rates from 1 per 730 days to 10^9 per second, for 146 years from construction, for
/// every quota whose `burst × period / gcd(count, period)` fits in 2^56 (others run at the
/// closest rate below theirs; see `quota`).
///
/// \code
/// rategov::bucket<> requests(rategov::per_second(50));
/// if (auto r = requests.try_acquire(1)) send();
/// else if (r.status == rategov::acquire_status::denied) schedule_at(r.ready_at);
/// \endcode
template <class Clock = steady_clock>
class bucket : private detail::clock_base<Clock> {
    static_assert(check_clock<Clock>());
    using base = detail::clock_base<Clock>;

public:
    /// The clock the bucket reads.
    using clock_type = Clock;
    /// A time point of `Clock` (`ready_at`, the `*_at` functions' `at`).
    using time_point = typename Clock::time_point;
    /// A duration of `Clock` (`max_wait`).
    using duration = typename Clock::duration;
    /// What `try_acquire` and `reserve` return.
    using result = acquire_result<time_point>;

    /// A full bucket with limit `q`. The clock is copied (a handle for a manual clock).
    explicit bucket(const quota& q, const Clock& time_source = Clock{})
        : base(time_source)
        , m_core(q) {}

    bucket(const bucket&) = delete;
    bucket& operator=(const bucket&) = delete;

    /// Takes `n` tokens now if available; never waits. `n == 0` is always granted.
    [[nodiscard]] RATEGOV_ALWAYS_INLINE result try_acquire(std::uint64_t n = 1) noexcept {
        return try_acquire_at(n, this->now());
    }
    /// The same at a caller-supplied time (e.g. one clock read shared by several buckets).
    [[nodiscard]] RATEGOV_ALWAYS_INLINE result try_acquire_at(std::uint64_t n,
                                                              time_point at) noexcept {
        const std::uint64_t tau = this->tick_of(at);
        return to_result(m_core.try_acquire(m_state, n, tau), tau, at);
    }

    /// Pays forward: takes `n` tokens now and returns the time from which the caller may use
    /// them (`ready_at`, ≥ now); later callers queue behind. Refuses (`denied`, nothing taken)
    /// when that time is more than `max_wait` away, and `exceeds_capacity` when n > burst.
    [[nodiscard]] result reserve(std::uint64_t n, duration max_wait = duration::max()) noexcept {
        return reserve_at(n, this->now(), max_wait);
    }
    /// The same at a caller-supplied time `at` instead of now.
    [[nodiscard]] result reserve_at(std::uint64_t n, time_point at,
                                    duration max_wait = duration::max()) noexcept {
        const std::uint64_t tau = this->tick_of(at);
        return to_result(m_core.reserve(m_state, n, tau, base::ticks_of(max_wait)), tau, at);
    }

    /// Gives back up to `n` of the tokens that the grant with `receipt` took (an over-estimate
    /// or a cancelled request): minus what time has already restored; carried across up to
    /// two limit changes since the grant (nothing after more), and nothing while reservations
    /// queued behind hold promised times. The bucket never exceeds its burst.
    void refund(std::uint64_t n, const rategov::receipt& r) noexcept {
        m_core.undo(m_state, r, n, [this] { return this->tick_of(this->now()); });
    }
    /// Gives back `n` tokens without a receipt, as if the `n` most recent tokens had not been
    /// taken; the bucket never exceeds its burst. Exact with one taker; with concurrent
    /// takers prefer `refund(n, receipt)`, which cannot return tokens another grant reused.
    void refund(std::uint64_t n) noexcept { m_core.refund(m_state, n, this->tick_of(this->now())); }
    /// Takes `n` tokens unconditionally (usage that already happened), possibly into debt that
    /// later callers wait out. `n` may exceed the burst.
    void charge(std::uint64_t n) noexcept { m_core.charge(m_state, n, this->tick_of(this->now())); }

    /// Whole tokens available now (between 0 and the burst).
    [[nodiscard]] std::uint64_t available() const noexcept {
        return m_core.available(m_state, this->tick_of(this->now()));
    }
    /// Tokens owed now after `charge` went beyond empty.
    [[nodiscard]] std::uint64_t debt() const noexcept {
        return m_core.debt(m_state, this->tick_of(this->now()));
    }

    /// Changes the limit at runtime, atomically with respect to concurrent acquisitions;
    /// `how` says what happens to the tokens in the bucket (see `inheritance`).
    void set_limit(const quota& q, inheritance how = inheritance::keep) noexcept {
        m_core.set_limit(m_state, q, how, [this] { return this->tick_of(this->now()); });
    }
    /// The limit in force.
    [[nodiscard]] quota limit() const noexcept { return m_core.limit(m_state); }

    using base::clock;
    using base::now;

private:
    /// A tick result as a time point result; `tau` is the tick of `at`.
    [[nodiscard]] result to_result(detail::tick_result r, std::uint64_t tau,
                                   time_point at) const noexcept {
        switch (r.status) {
        case acquire_status::granted:
            return {r.status, r.ready == tau ? at : this->time_of(r.ready), r.taken};
        case acquire_status::denied:
            return {r.status, this->time_of(r.ready)};
        case acquire_status::exceeds_capacity:
            break;
        }
        return {acquire_status::exceeds_capacity, time_point::max()};
    }

    // The state word on a line of its own: it is written by every acquisition.
    alignas(RATEGOV_CACHE_LINE) detail::gcra::word m_state{detail::gcra::initial_word};
    detail::gcra m_core;
};

RATEGOV_NAMESPACE_END
