/// \file
/// The `Clock` concept, the clocks rategov ships, and the wait policy paired with a clock.
#pragma once

#include <algorithm>
#include <chrono>
#include <concepts>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <stop_token>
#include <thread>
#include <type_traits>

#include <rategov/config.hpp>

#if defined(__linux__)
#include <time.h>
#endif

RATEGOV_NAMESPACE_BEGIN

// --- the concept, in named parts ---------------------------------------------------------

/// `C` names its time types: `duration`, `time_point` (a `std::chrono::time_point`).
template <class C>
concept clock_has_time_types = requires {
    typename C::duration;
    typename C::time_point;
    typename C::time_point::duration;
}
&&std::same_as<typename C::duration, typename C::time_point::duration>;

/// `c.now()` on a const clock returns a `time_point`. A static `now()` qualifies too.
template <class C>
concept clock_has_now = clock_has_time_types<C> && requires(const C& c) {
    { c.now() } -> std::same_as<typename C::time_point>;
};

/// `C::is_steady` is true: the clock never goes back. A wall clock can jump backwards (NTP,
/// a changed date) and would hand out a burst the limit does not allow.
template <class C>
concept clock_is_steady = requires {
    { C::is_steady } -> std::convertible_to<bool>;
}
&&C::is_steady;

/// A clock is copied into the buckets that use it: a copy must read the same time (it is a
/// handle, or it has no state at all).
template <class C>
concept clock_is_copyable = std::copy_constructible<C>;

/// What rategov needs of a clock: a steady `now()` with `std::chrono` time types, cheaply
/// copyable. `rategov::steady_clock`, `rategov::coarse_steady_clock` and
/// `rategov::testing::manual_clock` model it; so does any `std::chrono` steady clock.
template <class C>
concept Clock = clock_has_now<C> && clock_is_steady<C> && clock_is_copyable<C>;

/// Checks `C` against `Clock` part by part, so that the first missing part is named with a
/// fix-it sentence rather than buried in template noise. Used by every template that takes
/// a clock; evaluates to true when all parts hold.
template <class C>
constexpr bool check_clock() {
    static_assert(clock_has_time_types<C>,
                  "rategov: Clock must name std::chrono time types: C::duration and "
                  "C::time_point (a std::chrono::time_point<C, C::duration>).");
    static_assert(clock_has_now<C>,
                  "rategov: Clock must have now() callable on a const clock and returning "
                  "C::time_point.");
    static_assert(clock_is_steady<C>,
                  "rategov: Clock must be steady (C::is_steady == true); a wall clock can jump "
                  "back and grant a burst. Use rategov::steady_clock.");
    static_assert(clock_is_copyable<C>,
                  "rategov: Clock must be copy-constructible (a handle to shared time); "
                  "wrap a stateful clock in a handle that refers to it.");
    return Clock<C>;
}

// --- the clocks ------------------------------------------------------------------------------

/// `std::chrono::steady_clock`, the default: monotonic, nanosecond resolution, about 20 ns a
/// read through the vDSO on Linux.
using steady_clock = std::chrono::steady_clock;

/// A monotonic clock that trades resolution for speed: on Linux `CLOCK_MONOTONIC_COARSE`
/// (the time of the last scheduler tick, 1–4 ms resolution, a few ns a read); elsewhere it
/// falls back to `std::chrono::steady_clock`. Use it when a millisecond of slack in a
/// limit is fine and the acquisition rate is very high.
struct coarse_steady_clock {
    /// The tick count's type: signed 64-bit.
    using rep = std::int64_t;
    /// Ticks are nanoseconds (the values advance in steps of the coarse resolution).
    using period = std::nano;
    /// `std::chrono::nanoseconds`.
    using duration = std::chrono::nanoseconds;
    /// A time point of this clock (a type distinct from `steady_clock`'s).
    using time_point = std::chrono::time_point<coarse_steady_clock, duration>;
    /// Always true: the clock never goes back.
    static constexpr bool is_steady = true;

    /// Thread-safe, never throws.
    [[nodiscard]] static time_point now() noexcept {
#if defined(__linux__) && defined(CLOCK_MONOTONIC_COARSE)
        timespec ts{};
        ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
        return time_point(duration(static_cast<rep>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec));
#else
        return time_point(std::chrono::duration_cast<duration>(
            std::chrono::steady_clock::now().time_since_epoch()));
#endif
    }
};

// --- conversions between a clock's time points and rategov's integer nanosecond ticks --------

namespace detail {

/// A time point as signed nanoseconds since the clock's epoch (saturating).
template <class TimePoint>
[[nodiscard]] constexpr std::int64_t to_ticks(TimePoint tp) noexcept {
    using namespace std::chrono;
    using D = typename TimePoint::duration;
    if constexpr (std::is_same_v<D, nanoseconds>) {
        return tp.time_since_epoch().count();
    } else {
        // Clamp before converting, so that a coarse clock's far-future value cannot overflow.
        constexpr auto max_d = duration_cast<D>(nanoseconds::max()) - D(1);
        constexpr auto min_d = duration_cast<D>(nanoseconds::min()) + D(1);
        auto d = tp.time_since_epoch();
        if (d > max_d)
            return nanoseconds::max().count();
        if (d < min_d)
            return nanoseconds::min().count();
        return duration_cast<nanoseconds>(d).count();
    }
}

/// Nanosecond ticks back to a time point, rounded up (never earlier than the tick).
template <class TimePoint>
[[nodiscard]] constexpr TimePoint from_ticks(std::int64_t ticks) noexcept {
    using namespace std::chrono;
    using D = typename TimePoint::duration;
    if constexpr (std::is_same_v<D, nanoseconds>) {
        return TimePoint(D(ticks));
    } else {
        return TimePoint(ceil<D>(nanoseconds(ticks)));
    }
}

template <class D>
[[nodiscard]] constexpr std::int64_t duration_to_ticks(D d) noexcept {
    return to_ticks(std::chrono::time_point<std::chrono::steady_clock, D>(d));
}

} // namespace detail

// --- waiting ---------------------------------------------------------------------------------

/// A clock may define how to wait for one of its time points: `c.sleep_until(tp)`. The
/// manual clock does, so that a blocking wait in a test advances (or waits for) virtual time
/// instead of sleeping.
template <class C>
concept clock_has_sleep = requires(const C& c, typename C::time_point tp) {
    c.sleep_until(tp);
};

/// Blocks the calling thread until `clock.now() >= tp`: through the clock's own
/// `sleep_until` if it has one, else by sleeping on the real clock in steps of what remains.
/// Returns at once for a time point already past.
template <class C>
void sleep_until(const C& clock, typename C::time_point tp) {
    if constexpr (clock_has_sleep<C>) {
        clock.sleep_until(tp);
    } else {
        for (auto now = clock.now(); now < tp; now = clock.now())
            std::this_thread::sleep_for(tp - now);
    }
}

/// A clock whose wait can be cut short by a `std::stop_token`:
/// `c.sleep_until(tp, token)` returns false when stopped before `tp`.
template <class C>
concept clock_has_stoppable_sleep = requires(const C& c, typename C::time_point tp,
                                             std::stop_token st) {
    { c.sleep_until(tp, st) } -> std::convertible_to<bool>;
};

/// Blocks until `clock.now() >= tp` or until `stop` is requested, whichever comes first;
/// returns true when `tp` was reached, false when stopped (at once if already stopped).
/// A real clock waits on a condition variable that the stop request wakes; a manual clock
/// waits in virtual time; a clock with only `sleep_until(tp)` cannot be interrupted: the
/// token is checked before and after its wait.
template <class C>
bool sleep_until(const C& clock, typename C::time_point tp, std::stop_token stop) {
    if (stop.stop_requested())
        return false;
    if constexpr (clock_has_stoppable_sleep<C>) {
        return static_cast<bool>(clock.sleep_until(tp, stop));
    } else if constexpr (clock_has_sleep<C>) {
        clock.sleep_until(tp);
        return !stop.stop_requested() || clock.now() >= tp;
    } else {
        std::mutex m;
        std::condition_variable_any cv;
        std::unique_lock lock(m);
        for (auto now = clock.now(); now < tp; now = clock.now()) {
            // Waits in steps of what remains (the real clock may not be the condition
            // variable's); the stop request wakes the wait at once.
            // At most an hour per step: the condition variable adds the wait to its own
            // clock's now, which would overflow for a time point near the end of time.
            const auto step = std::min<typename C::duration>(
                tp - now, std::chrono::duration_cast<typename C::duration>(std::chrono::hours(1)));
            static_cast<void>(cv.wait_for(lock, stop, step, [] { return false; }));
            if (stop.stop_requested())
                return false;
        }
        return true;
    }
}

RATEGOV_NAMESPACE_END
