// custom_clock: plugging your own clock into rategov. A clock is anything with steady
// `std::chrono` time types and a `now()` (the `rategov::Clock` concept); it may also say how
// to wait for one of its time points (`sleep_until`), which the blocking waits then use.
//
// 1. `boottime_clock` — Linux's CLOCK_BOOTTIME. std::chrono::steady_clock (CLOCK_MONOTONIC)
//    stops while the machine is suspended; the provider's clock does not. After a laptop or
//    a VM wakes up, a governor on steady_clock believes less time has passed than has, and
//    holds back tokens the provider has already restored. CLOCK_BOOTTIME counts the suspend.
// 2. `loop_clock` — an event loop's cached time, as libuv's uv_now() or a game loop's frame
//    time: read once per iteration, shared by everything the iteration does. A clock with
//    state is a handle: copies (the governor keeps one) read the same time.
//
// A wall clock (std::chrono::system_clock) is refused at compile time: it can jump back and
// hand out a burst the limit does not allow (see tests/compile_fail/non_steady_clock.cpp).
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <stop_token>
#include <thread>
#include <time.h>

#include <rategov/rategov.hpp>

// Linux only (CLOCK_BOOTTIME and clock_nanosleep); the build adds this example on Linux.
constexpr clockid_t boottime_id = CLOCK_BOOTTIME;

/// A steady clock that keeps counting while the machine is suspended.
struct boottime_clock {
    using rep = std::int64_t;
    using period = std::nano;
    using duration = std::chrono::nanoseconds;
    using time_point = std::chrono::time_point<boottime_clock, duration>;
    static constexpr bool is_steady = true;

    static time_point now() noexcept {
        timespec ts{};
        ::clock_gettime(boottime_id, &ts);
        return time_point(duration(std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec));
    }

    /// Waits on this clock itself (an absolute sleep on CLOCK_BOOTTIME), in slices of at
    /// most 50 ms so that a stop request ends the wait soon. Returns false when stopped.
    bool sleep_until(time_point tp, std::stop_token stop = {}) const noexcept {
        for (auto t = now(); t < tp; t = now()) {
            if (stop.stop_requested())
                return false;
            const auto until = std::min(tp, t + std::chrono::milliseconds(50));
            const auto ns = until.time_since_epoch().count();
            const timespec ts{static_cast<time_t>(ns / 1'000'000'000),
                              static_cast<long>(ns % 1'000'000'000)};
            const int err = ::clock_nanosleep(boottime_id, TIMER_ABSTIME, &ts, nullptr);
            if (err != 0 && err != EINTR) // unsupported here: sleep on the monotonic clock
                std::this_thread::sleep_for(until - t);
        }
        return true;
    }
};
static_assert(rategov::Clock<boottime_clock>);

/// An event loop's cached time: the loop sets it once per iteration; every copy of the
/// clock reads it. Only the loop moves it, so nothing may block on it on the loop's own
/// thread (a blocking `call()` or `sleep_until` would wait for ever): use the non-blocking
/// forms — `try_acquire`, `ready_at`, `call_machine` — and let the loop come back.
class loop_clock {
public:
    using rep = std::int64_t;
    using period = std::milli; // a loop's time is often in milliseconds
    using duration = std::chrono::milliseconds;
    using time_point = std::chrono::time_point<loop_clock, duration>;
    static constexpr bool is_steady = true; // the loop only moves it forward

    loop_clock()
        : m_now(std::make_shared<std::atomic<std::int64_t>>(0)) {}
    [[nodiscard]] time_point now() const noexcept { return time_point(duration(m_now->load())); }
    /// The loop's own update, once per iteration.
    void update(time_point t) const noexcept { m_now->store(t.time_since_epoch().count()); }

private:
    std::shared_ptr<std::atomic<std::int64_t>> m_now;
};
static_assert(rategov::Clock<loop_clock>);

int main() {
    using namespace std::chrono_literals;

    // 1. Twenty requests a second, one at a time: ten reservations take 450 ms, waited for
    //    on CLOCK_BOOTTIME through the clock's own sleep_until.
    rategov::bucket<boottime_clock> per_call(rategov::per_second(20).with_burst(1));
    const auto t0 = boottime_clock::now();
    for (int i = 0; i < 10; ++i) {
        auto r = per_call.reserve(1, 1s);
        if (!r)
            return 1;
        rategov::sleep_until(per_call.clock(), r.ready_at);
    }
    const double waited = std::chrono::duration<double>(boottime_clock::now() - t0).count();
    std::printf("boottime_clock: 10 calls at 20/s took %.3f s (expected 0.450)\n", waited);

    // 2. A governor on the loop's time: the loop advances it by 250 ms an iteration and
    //    sends what the governor admits; ready_at says which iteration may send next.
    namespace m = rategov::metric;
    using llm = rategov::metrics<m::requests, m::generated>;
    loop_clock loop;
    rategov::governor<llm, loop_clock> gov(loop, rategov::per_second(4).with_burst(2),
                                           rategov::per_minute(6'000).with_burst(1'000));
    const rategov::cost<llm> call{rategov::amount<m::requests>{1},
                                  rategov::amount<m::generated>{400}};
    int sent = 0;
    for (int iteration = 0; iteration < 20; ++iteration) {
        loop.update(loop_clock::time_point(iteration * 250ms));
        auto r = gov.try_acquire(call);
        if (r)
            ++sent;
        else if (iteration == 2)
            std::printf("loop_clock: iteration 2 refused by metric %zu, ready at %lld ms\n",
                        r.metric, static_cast<long long>(r.ready_at.time_since_epoch().count()));
    }
    // 6000 generated tokens a minute = 100/s: over 4.75 s, the 1000-token burst and 475 more
    // let 3 calls of 400 through.
    std::printf("loop_clock: %d calls sent in 20 iterations (5 s of loop time)\n", sent);
    return waited >= 0.44 && waited < 5.0 && sent == 3 ? 0 : 1;
}
