/// \file
/// `testing::manual_clock`: a clock that moves only when told to, so that tests and
/// simulations run in virtual time. Public: use it to test your own clients.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <stop_token>
#include <utility>

#include <rategov/clock/clock.hpp>
#include <rategov/config.hpp>

RATEGOV_NAMESPACE_BEGIN
namespace testing {

/// What `sleep_until` does on a manual clock.
enum class wait_mode {
    advance, ///< moves the clock forward to the time waited for (single-threaded tests)
    block,   ///< blocks until another thread advances the clock far enough
};

namespace detail {

/// The shared virtual time behind manual clocks.
struct manual_time {
    // Atomic so that now() takes no lock; the mutex and condition variable serve only the
    // blocking wait.
    std::atomic<std::int64_t> ticks{0};
    std::atomic<wait_mode> mode{wait_mode::advance};
    std::mutex mutex;
    std::condition_variable_any moved;

    [[nodiscard]] std::int64_t now() const noexcept {
        // (1) acquire: pairs with the release in (2), so that what a thread did before it
        //     advanced the clock is visible to a thread that sees the new time.
        return ticks.load(std::memory_order_acquire);
    }

    void set(std::int64_t t) {
        {
            std::lock_guard lock(mutex);
            ticks.store(t, std::memory_order_release); // (2)
        }
        moved.notify_all();
    }

    void advance(std::int64_t d) {
        {
            std::lock_guard lock(mutex);
            ticks.fetch_add(d, std::memory_order_acq_rel); // (2) as well
        }
        moved.notify_all();
    }

    /// Moves the time forward to at least t (never back).
    void advance_to(std::int64_t t) {
        {
            std::lock_guard lock(mutex);
            auto cur = ticks.load(std::memory_order_relaxed);
            if (cur < t)
                ticks.store(t, std::memory_order_release);
        }
        moved.notify_all();
    }

    void sleep_until(std::int64_t t) {
        if (mode.load(std::memory_order_relaxed) == wait_mode::advance) {
            advance_to(t);
            return;
        }
        std::unique_lock lock(mutex);
        moved.wait(lock, [&] { return ticks.load(std::memory_order_relaxed) >= t; });
    }

    /// The same, cut short by `stop`: false when stopped before t.
    bool sleep_until(std::int64_t t, std::stop_token stop) {
        if (stop.stop_requested())
            return false;
        if (mode.load(std::memory_order_relaxed) == wait_mode::advance) {
            advance_to(t);
            return true;
        }
        std::unique_lock lock(mutex);
        return moved.wait(lock, stop, [&] { return ticks.load(std::memory_order_relaxed) >= t; });
    }
};

} // namespace detail

/// A thread-safe clock moved by hand. Copies are handles to the same time: give a copy to
/// each bucket or governor, keep one in the test, and `advance()` it.
///
/// `now()` is lock-free. `set()` may move the time backwards — it exists to test that code
/// survives a clock going back; `is_steady` is still true, as for any clock rategov accepts.
///
/// \code
/// rategov::testing::manual_clock clock;                      // starts at 0
/// rategov::bucket<rategov::testing::manual_clock> b(rategov::per_second(10), clock);
/// clock.advance(std::chrono::milliseconds(100));             // one more token
/// \endcode
class manual_clock {
public:
    /// The tick count's type: signed 64-bit.
    using rep = std::int64_t;
    /// Ticks are nanoseconds.
    using period = std::nano;
    /// `std::chrono::nanoseconds`.
    using duration = std::chrono::nanoseconds;
    /// A time point of this clock (0 is wherever the test starts it).
    using time_point = std::chrono::time_point<manual_clock, duration>;
    /// True, as rategov requires, although `set()` may move the time back.
    static constexpr bool is_steady = true;

    /// A new, independent virtual time starting at `start`.
    explicit manual_clock(time_point start = time_point{}, wait_mode mode = wait_mode::advance)
        : m_time(std::make_shared<detail::manual_time>()) {
        m_time->ticks.store(start.time_since_epoch().count(), std::memory_order_relaxed);
        m_time->mode.store(mode, std::memory_order_relaxed);
    }

    /// The virtual time now, shared by every copy. Lock-free.
    [[nodiscard]] time_point now() const noexcept { return time_point(duration(m_time->now())); }

    /// Moves the time by `d` (which may be negative). Wakes blocked waiters.
    void advance(duration d) const { m_time->advance(d.count()); }
    /// Sets the time to `tp`, forwards or backwards. Wakes blocked waiters.
    void set(time_point tp) const { m_time->set(tp.time_since_epoch().count()); }
    /// Chooses what `sleep_until` does; see `wait_mode`.
    void set_wait_mode(wait_mode mode) const {
        m_time->mode.store(mode, std::memory_order_relaxed);
    }
    /// Whether a wait moves the time itself (`wait_mode::advance`): then a wait for
    /// something only another thread could do (a slot's release) ends at its deadline.
    [[nodiscard]] bool advances_on_wait() const noexcept {
        return m_time->mode.load(std::memory_order_relaxed) == wait_mode::advance;
    }

    /// The wait policy paired with this clock (used by `rategov::sleep_until`): with
    /// `wait_mode::advance` it moves the time to `tp`; with `wait_mode::block` it blocks
    /// until another thread has advanced the time to `tp`. Never sleeps for real.
    void sleep_until(time_point tp) const { m_time->sleep_until(tp.time_since_epoch().count()); }
    /// The same, cut short by `stop` (a blocked waiter wakes at once): false when stopped
    /// before `tp`.
    bool sleep_until(time_point tp, std::stop_token stop) const {
        return m_time->sleep_until(tp.time_since_epoch().count(), std::move(stop));
    }

private:
    std::shared_ptr<detail::manual_time> m_time;
};

/// The same virtual time behind a static `now()`, for code that takes a clock as a type and
/// never an instance (as `std::chrono` clocks are used). Each `Tag` is a separate time, so
/// that tests do not disturb one another.
///
/// \code
/// struct my_test_time {};
/// using clock = rategov::testing::static_manual_clock<my_test_time>;
/// clock::set(clock::time_point{}); clock::advance(std::chrono::seconds(1));
/// \endcode
template <class Tag = void>
class static_manual_clock {
public:
    /// The tick count's type: signed 64-bit.
    using rep = std::int64_t;
    /// Ticks are nanoseconds.
    using period = std::nano;
    /// `std::chrono::nanoseconds`.
    using duration = std::chrono::nanoseconds;
    /// A time point of this clock (the time of `Tag` starts at 0).
    using time_point = std::chrono::time_point<static_manual_clock, duration>;
    /// True, as rategov requires, although `set()` may move the time back.
    static constexpr bool is_steady = true;

    /// The virtual time of `Tag` now. Lock-free.
    [[nodiscard]] static time_point now() noexcept { return time_point(duration(time().now())); }
    /// Moves the time by `d` (which may be negative). Wakes blocked waiters.
    static void advance(duration d) { time().advance(d.count()); }
    /// Sets the time to `tp`, forwards or backwards. Wakes blocked waiters.
    static void set(time_point tp) { time().set(tp.time_since_epoch().count()); }
    /// Chooses what `sleep_until` does; see `wait_mode`.
    static void set_wait_mode(wait_mode mode) {
        time().mode.store(mode, std::memory_order_relaxed);
    }
    /// Whether a wait moves the time itself (`wait_mode::advance`).
    [[nodiscard]] static bool advances_on_wait() noexcept {
        return time().mode.load(std::memory_order_relaxed) == wait_mode::advance;
    }
    /// As `manual_clock::sleep_until`: with `wait_mode::advance` moves the time forward to
    /// `tp`; with `wait_mode::block` blocks until another thread has. Never sleeps for real.
    static void sleep_until(time_point tp) { time().sleep_until(tp.time_since_epoch().count()); }
    /// The same, cut short by `stop`: false when stopped before `tp`.
    static bool sleep_until(time_point tp, std::stop_token stop) {
        return time().sleep_until(tp.time_since_epoch().count(), std::move(stop));
    }

private:
    static detail::manual_time& time() {
        static detail::manual_time t;
        return t;
    }
};

} // namespace testing
RATEGOV_NAMESPACE_END
