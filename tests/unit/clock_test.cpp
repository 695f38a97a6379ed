// The Clock concept, the shipped clocks, the manual clock's virtual time and wait policies,
// and the conversions between time points and nanosecond ticks.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <future>
#include <limits>
#include <stop_token>
#include <thread>
#include <utility>

#include <rategov/clock/clock.hpp>
#include <rategov/testing/manual_clock.hpp>

#include <gtest/gtest.h>

namespace {

using namespace std::chrono_literals;
using rategov::testing::manual_clock;
using rategov::testing::static_manual_clock;
using rategov::testing::wait_mode;
using std::chrono::nanoseconds;

struct tag_a {};
struct tag_b {};
struct tag_concept {};

manual_clock::time_point at(nanoseconds d) {
    return manual_clock::time_point(d);
}

// --- the concept -------------------------------------------------------------------------------

TEST(ClockConcept, ShippedClocksModelClock) {
    static_assert(rategov::Clock<rategov::steady_clock>);
    static_assert(rategov::Clock<rategov::coarse_steady_clock>);
    static_assert(rategov::Clock<manual_clock>);
    static_assert(rategov::Clock<static_manual_clock<tag_concept>>);
    static_assert(rategov::Clock<static_manual_clock<>>);
    static_assert(rategov::check_clock<rategov::steady_clock>());
    static_assert(rategov::check_clock<rategov::coarse_steady_clock>());
    static_assert(rategov::check_clock<manual_clock>());
    static_assert(rategov::check_clock<static_manual_clock<tag_concept>>());
    SUCCEED();
}

TEST(ClockConcept, PartsHoldOneByOne) {
    static_assert(rategov::clock_has_time_types<manual_clock>);
    static_assert(rategov::clock_has_now<manual_clock>);
    static_assert(rategov::clock_has_now<rategov::coarse_steady_clock>); // static now()
    static_assert(rategov::clock_is_steady<manual_clock>);
    static_assert(rategov::clock_is_copyable<manual_clock>);
    // Only the manual clocks bring their own wait policy.
    static_assert(rategov::clock_has_sleep<manual_clock>);
    static_assert(rategov::clock_has_sleep<static_manual_clock<tag_concept>>);
    static_assert(!rategov::clock_has_sleep<rategov::steady_clock>);
    static_assert(!rategov::clock_has_sleep<rategov::coarse_steady_clock>);
    SUCCEED();
}

TEST(ClockConcept, WallClockIsRejected) {
    static_assert(!rategov::clock_is_steady<std::chrono::system_clock>);
    static_assert(!rategov::Clock<std::chrono::system_clock>);
    // It has the time types and now(): only steadiness is missing.
    static_assert(rategov::clock_has_now<std::chrono::system_clock>);
    SUCCEED();
}

struct no_time_types {
    static int now() { return 0; }
    static constexpr bool is_steady = true;
};
struct now_returns_wrong_type {
    using duration = nanoseconds;
    using time_point = std::chrono::time_point<now_returns_wrong_type, duration>;
    static constexpr bool is_steady = true;
    static std::int64_t now() { return 0; }
};
struct not_copyable {
    using duration = nanoseconds;
    using time_point = std::chrono::time_point<not_copyable, duration>;
    static constexpr bool is_steady = true;
    not_copyable() = default;
    not_copyable(const not_copyable&) = delete;
    time_point now() const { return time_point{}; }
};

TEST(ClockConcept, EachMissingPartIsDetected) {
    // Each lacks one part only: the others hold.
    static_assert(no_time_types::is_steady && now_returns_wrong_type::is_steady);
    static_assert(rategov::clock_is_steady<not_copyable>);
    static_assert(!rategov::clock_has_time_types<no_time_types>);
    static_assert(!rategov::Clock<no_time_types>);
    static_assert(rategov::clock_has_time_types<now_returns_wrong_type>);
    static_assert(!rategov::clock_has_now<now_returns_wrong_type>);
    static_assert(!rategov::Clock<now_returns_wrong_type>);
    static_assert(rategov::clock_has_now<not_copyable>);
    static_assert(!rategov::clock_is_copyable<not_copyable>);
    static_assert(!rategov::Clock<not_copyable>);
    SUCCEED();
}

// --- the real clocks -----------------------------------------------------------------------------

TEST(CoarseSteadyClock, IsMonotonicOverManyReads) {
    auto prev = rategov::coarse_steady_clock::now();
    for (int i = 0; i < 10'000; ++i) {
        const auto now = rategov::coarse_steady_clock::now();
        ASSERT_GE(now, prev) << "read " << i;
        prev = now;
    }
}

TEST(CoarseSteadyClock, AdvancesAndStaysCloseToTheSteadyClock) {
    const auto first = rategov::coarse_steady_clock::now();
    // Spin until the coarse clock ticks (a few ms); the real-time bound only ends the loop.
    const auto give_up = std::chrono::steady_clock::now() + 10s;
    auto now = first;
    while (now == first && std::chrono::steady_clock::now() < give_up)
        now = rategov::coarse_steady_clock::now();
    EXPECT_GT(now, first);
    // Both count from the same monotonic epoch on Linux (and are the same clock elsewhere).
    const auto fine = std::chrono::steady_clock::now().time_since_epoch();
    const auto coarse = rategov::coarse_steady_clock::now().time_since_epoch();
    EXPECT_LT(fine - coarse, nanoseconds(1s));
    EXPECT_GT(fine - coarse, -nanoseconds(1s));
}

TEST(SleepUntil, RealClockWaitEnds) {
    const rategov::steady_clock clock{};
    const auto start = clock.now();
    const auto target = start + 2ms;
    rategov::sleep_until(clock, target);
    const auto end = clock.now();
    EXPECT_GE(end, target);
    EXPECT_LT(end - start, 10s); // generous: only checks that the wait ends
}

TEST(SleepUntil, RealClockReturnsAtOnceForAPastTime) {
    const rategov::coarse_steady_clock clock{};
    const auto start = std::chrono::steady_clock::now();
    rategov::sleep_until(clock, clock.now() - 1h);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
}

// --- sleep_until with a stop token -------------------------------------------------------------

TEST(StoppableSleep, RealClockReachesTheTarget) {
    const rategov::steady_clock clock{};
    std::stop_source never;
    const auto target = clock.now() + 2ms;
    EXPECT_TRUE(rategov::sleep_until(clock, target, never.get_token()));
    EXPECT_GE(clock.now(), target);
}

TEST(StoppableSleep, RealClockWakesOnStop) {
    const rategov::steady_clock clock{};
    std::stop_source stop;
    const auto start = std::chrono::steady_clock::now();
    auto sleeper = std::async(std::launch::async, [&] {
        return rategov::sleep_until(clock, clock.now() + 1h, stop.get_token());
    });
    stop.request_stop();
    ASSERT_EQ(sleeper.wait_for(10s), std::future_status::ready); // generous: only the end
    EXPECT_FALSE(sleeper.get());
    EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
}

TEST(StoppableSleep, AlreadyStoppedReturnsFalseAtOnceWithoutMovingAManualClock) {
    const manual_clock clock(at(0s));
    std::stop_source stop;
    stop.request_stop();
    EXPECT_FALSE(rategov::sleep_until(clock, at(10s), stop.get_token()));
    EXPECT_EQ(clock.now(), at(0s));
}

TEST(StoppableSleep, ManualClockAdvanceModeJumps) {
    const manual_clock clock(at(0s));
    std::stop_source never;
    EXPECT_TRUE(rategov::sleep_until(clock, at(10s), never.get_token()));
    EXPECT_EQ(clock.now(), at(10s));
}

TEST(StoppableSleep, ManualClockBlockModeWakesOnStop) {
    const manual_clock clock(at(0s), wait_mode::block);
    std::stop_source stop;
    auto sleeper = std::async(
        std::launch::async, [&] { return rategov::sleep_until(clock, at(1h), stop.get_token()); });
    stop.request_stop();
    const auto status = sleeper.wait_for(10s);
    if (status != std::future_status::ready)
        clock.advance(2h); // release a waiter that ignored the stop, so that the test ends
    EXPECT_EQ(status, std::future_status::ready);
    EXPECT_FALSE(sleeper.get());
    EXPECT_EQ(clock.now(), at(0s));
}

TEST(StoppableSleep, ManualClockBlockModeStillWakesOnTime) {
    const manual_clock clock(at(0s), wait_mode::block);
    std::stop_source never;
    auto sleeper = std::async(
        std::launch::async, [&] { return rategov::sleep_until(clock, at(5s), never.get_token()); });
    clock.advance(5s);
    ASSERT_EQ(sleeper.wait_for(10s), std::future_status::ready);
    EXPECT_TRUE(sleeper.get());
}

// A clock with only sleep_until(tp): the token is honoured before and after its wait.
struct plain_sleep_clock {
    using rep = std::int64_t;
    using period = std::nano;
    using duration = std::chrono::nanoseconds;
    using time_point = std::chrono::time_point<plain_sleep_clock, duration>;
    static constexpr bool is_steady = true;
    time_point* now_ptr;
    [[nodiscard]] time_point now() const noexcept { return *now_ptr; }
    void sleep_until(time_point tp) const { *now_ptr = tp; }
};
static_assert(plain_sleep_clock::is_steady);

TEST(StoppableSleep, ClockWithoutStoppableSleepChecksTheTokenBefore) {
    plain_sleep_clock::time_point t{};
    const plain_sleep_clock clock{&t};
    std::stop_source stop;
    EXPECT_TRUE(rategov::sleep_until(clock, plain_sleep_clock::time_point(5s), stop.get_token()));
    EXPECT_EQ(t, plain_sleep_clock::time_point(5s));
    stop.request_stop();
    EXPECT_FALSE(rategov::sleep_until(clock, plain_sleep_clock::time_point(9s), stop.get_token()));
    EXPECT_EQ(t, plain_sleep_clock::time_point(5s));
}

// --- manual_clock ------------------------------------------------------------------------------

TEST(ManualClock, StartsAtZeroByDefault) {
    const manual_clock clock;
    EXPECT_EQ(clock.now().time_since_epoch(), 0ns);
}

TEST(ManualClock, StartsAtTheGivenTime) {
    const manual_clock clock(at(1234s));
    EXPECT_EQ(clock.now(), at(1234s));
    const manual_clock negative(at(-5ns));
    EXPECT_EQ(negative.now(), at(-5ns));
}

TEST(ManualClock, DoesNotMoveByItself) {
    const manual_clock clock(at(7s));
    const auto t0 = clock.now();
    for (int i = 0; i < 1000; ++i)
        ASSERT_EQ(clock.now(), t0);
}

TEST(ManualClock, AdvanceAndSet) {
    const manual_clock clock(at(10s));
    clock.advance(1500ms);
    EXPECT_EQ(clock.now(), at(11500ms));
    clock.advance(1ns);
    EXPECT_EQ(clock.now(), at(11'500'000'001ns));
    clock.advance(0ns);
    EXPECT_EQ(clock.now(), at(11'500'000'001ns));
    clock.set(at(100s));
    EXPECT_EQ(clock.now(), at(100s));
}

TEST(ManualClock, CanGoBackwards) {
    const manual_clock clock(at(100s));
    clock.set(at(40s));
    EXPECT_EQ(clock.now(), at(40s));
    clock.advance(-50s);
    EXPECT_EQ(clock.now(), at(-10s));
}

TEST(ManualClock, CopiesShareTheTime) {
    const manual_clock a(at(5s));
    const manual_clock b = a; // NOLINT(performance-unnecessary-copy-initialization)
    manual_clock c(at(0s));
    c = b;
    b.advance(3s);
    EXPECT_EQ(a.now(), at(8s));
    EXPECT_EQ(c.now(), at(8s));
    c.set(at(1s));
    EXPECT_EQ(a.now(), at(1s));
    EXPECT_EQ(b.now(), at(1s));
}

TEST(ManualClock, SeparatelyMadeClocksAreIndependent) {
    const manual_clock a(at(5s));
    const manual_clock b(at(5s));
    a.advance(1s);
    EXPECT_EQ(a.now(), at(6s));
    EXPECT_EQ(b.now(), at(5s));
}

TEST(ManualClock, ConcurrentAdvancesAreAllCounted) {
    const manual_clock clock(at(1s));
    constexpr int steps = 100'000;
    auto work = [copy = clock] {
        for (int i = 0; i < steps; ++i)
            copy.advance(1ns);
    };
    std::thread t1(work);
    std::thread t2(work);
    // A concurrent reader sees the time only move forward.
    auto prev = clock.now();
    bool monotonic = true;
    for (int i = 0; i < steps; ++i) {
        const auto now = clock.now();
        monotonic = monotonic && now >= prev;
        prev = now;
    }
    t1.join();
    t2.join();
    EXPECT_TRUE(monotonic);
    EXPECT_EQ(clock.now(), at(1s + nanoseconds(2 * steps)));
}

TEST(ManualClock, AdvanceModeSleepJumpsToTheTarget) {
    const manual_clock clock(at(10s)); // wait_mode::advance is the default
    rategov::sleep_until(clock, at(25s));
    EXPECT_EQ(clock.now(), at(25s));
    rategov::sleep_until(clock, at(25s) + 1ns);
    EXPECT_EQ(clock.now(), at(25s) + 1ns);
}

TEST(ManualClock, AdvanceModeNeverMovesBack) {
    const manual_clock clock(at(10s), wait_mode::advance);
    rategov::sleep_until(clock, at(3s));
    EXPECT_EQ(clock.now(), at(10s));
    rategov::sleep_until(clock, at(10s));
    EXPECT_EQ(clock.now(), at(10s));
}

TEST(ManualClock, BlockModeWaitsForAnotherThreadToAdvance) {
    const manual_clock clock(at(0s), wait_mode::block);
    std::atomic<bool> started{false};
    std::atomic<bool> released{false};
    std::atomic<bool> returned{false};
    auto waiter = std::async(std::launch::async, [&] {
        started = true;
        rategov::sleep_until(clock, at(10s));
        // What the waiter saw when it woke: the release flag is set just before the last
        // advance, so an early return would see it unset (and a time below 10 s).
        const bool was_released = released.load();
        const auto woke_at = clock.now();
        returned = true;
        return std::pair{was_released, woke_at};
    });
    while (!started)
        std::this_thread::yield();
    clock.advance(5s); // not far enough
    for (int i = 0; i < 1000; ++i)
        std::this_thread::yield(); // give a wrongly woken waiter the chance to return
    clock.advance(4s);             // 9 s: still not far enough
    for (int i = 0; i < 1000; ++i)
        std::this_thread::yield();
    EXPECT_FALSE(returned.load());
    released = true;
    clock.advance(1s);                                          // 10 s: exactly the target
    ASSERT_EQ(waiter.wait_for(10s), std::future_status::ready); // generous: only the end
    const auto [was_released, woke_at] = waiter.get();
    EXPECT_TRUE(was_released);
    EXPECT_GE(woke_at, at(10s));
    // Blocking never moves the clock itself.
    EXPECT_EQ(clock.now(), at(10s));
}

TEST(ManualClock, BlockModeWakesOnSet) {
    const manual_clock clock(at(0s), wait_mode::block);
    auto waiter = std::async(std::launch::async, [&] {
        rategov::sleep_until(clock, at(1h));
        return clock.now();
    });
    clock.set(at(2h));
    ASSERT_EQ(waiter.wait_for(10s), std::future_status::ready);
    EXPECT_EQ(waiter.get(), at(2h));
}

TEST(ManualClock, BlockModeReturnsAtOnceForAPastTime) {
    const manual_clock clock(at(50s), wait_mode::block);
    auto waiter = std::async(std::launch::async, [&] { rategov::sleep_until(clock, at(20s)); });
    const auto status = waiter.wait_for(10s);
    if (status != std::future_status::ready)
        clock.advance(24h); // release a wrongly blocked waiter so that the test can end
    EXPECT_EQ(status, std::future_status::ready);
    waiter.get();
    EXPECT_EQ(clock.now(), at(50s));
}

TEST(ManualClock, WaitModeCanBeChanged) {
    const manual_clock clock(at(0s), wait_mode::block);
    clock.set_wait_mode(wait_mode::advance);
    rategov::sleep_until(clock, at(3s)); // would block forever in block mode
    EXPECT_EQ(clock.now(), at(3s));
}

// --- static_manual_clock ------------------------------------------------------------------------

TEST(StaticManualClock, DistinctTagsAreIndependent) {
    using clock_a = static_manual_clock<tag_a>;
    using clock_b = static_manual_clock<tag_b>;
    clock_a::set(clock_a::time_point(100s));
    clock_b::set(clock_b::time_point(100s));
    clock_a::advance(5s);
    EXPECT_EQ(clock_a::now(), clock_a::time_point(105s));
    EXPECT_EQ(clock_b::now(), clock_b::time_point(100s));
    clock_b::set(clock_b::time_point(1s));
    EXPECT_EQ(clock_a::now(), clock_a::time_point(105s));
    EXPECT_EQ(clock_b::now(), clock_b::time_point(1s));
}

TEST(StaticManualClock, InstancesShareTheStaticTime) {
    using clock = static_manual_clock<tag_a>;
    clock::set(clock::time_point(0s));
    const clock c1{};
    const clock c2{};
    clock::advance(7ms);
    EXPECT_EQ(c1.now(), clock::time_point(7ms));
    EXPECT_EQ(c2.now(), clock::time_point(7ms));
}

TEST(StaticManualClock, SleepUntilAdvances) {
    using clock = static_manual_clock<tag_b>;
    clock::set_wait_mode(wait_mode::advance);
    clock::set(clock::time_point(10s));
    rategov::sleep_until(clock{}, clock::time_point(12s));
    EXPECT_EQ(clock::now(), clock::time_point(12s));
    rategov::sleep_until(clock{}, clock::time_point(1s));
    EXPECT_EQ(clock::now(), clock::time_point(12s));
}

// --- tick conversions ---------------------------------------------------------------------------

using us_point = std::chrono::time_point<std::chrono::steady_clock, std::chrono::microseconds>;
using ns_point = std::chrono::time_point<std::chrono::steady_clock, nanoseconds>;
using s_point = std::chrono::time_point<std::chrono::steady_clock, std::chrono::seconds>;
constexpr std::int64_t i64_max = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t i64_min = std::numeric_limits<std::int64_t>::min();

TEST(Ticks, NanosecondTimePointsAreTakenAsIs) {
    EXPECT_EQ(rategov::detail::to_ticks(ns_point(123ns)), 123);
    EXPECT_EQ(rategov::detail::to_ticks(ns_point(nanoseconds::max())), i64_max);
    EXPECT_EQ(rategov::detail::to_ticks(ns_point(-7ns)), -7);
    EXPECT_EQ(rategov::detail::from_ticks<ns_point>(123), ns_point(123ns));
    EXPECT_EQ(rategov::detail::from_ticks<ns_point>(-7), ns_point(-7ns));
}

TEST(Ticks, CoarserTimePointsConvertExactly) {
    EXPECT_EQ(rategov::detail::to_ticks(us_point(5us)), 5'000);
    EXPECT_EQ(rategov::detail::to_ticks(us_point(-5us)), -5'000);
    EXPECT_EQ(rategov::detail::to_ticks(s_point(3s)), 3'000'000'000);
    // The largest microsecond count below the clamp converts without loss.
    EXPECT_EQ(rategov::detail::to_ticks(us_point(std::chrono::microseconds(9'223'372'036'854'774))),
              9'223'372'036'854'774'000);
}

TEST(Ticks, CoarserTimePointsSaturate) {
    EXPECT_EQ(rategov::detail::to_ticks(us_point(std::chrono::microseconds::max())), i64_max);
    EXPECT_EQ(rategov::detail::to_ticks(us_point(std::chrono::microseconds::min())), i64_min);
    EXPECT_EQ(rategov::detail::to_ticks(s_point(std::chrono::seconds::max())), i64_max);
    EXPECT_EQ(rategov::detail::to_ticks(s_point(std::chrono::seconds::min())), i64_min);
    // Just past what 64-bit nanoseconds can hold: 9'223'372'037 s.
    EXPECT_EQ(rategov::detail::to_ticks(s_point(9'223'372'037s)), i64_max);
    EXPECT_EQ(rategov::detail::to_ticks(s_point(-9'223'372'037s)), i64_min);
}

TEST(Ticks, FromTicksRoundsUpToTheCoarserUnit) {
    using rategov::detail::from_ticks;
    EXPECT_EQ(from_ticks<us_point>(1'000), us_point(1us));
    EXPECT_EQ(from_ticks<us_point>(1'001), us_point(2us));
    EXPECT_EQ(from_ticks<us_point>(1'500), us_point(2us));
    EXPECT_EQ(from_ticks<us_point>(1'999), us_point(2us));
    EXPECT_EQ(from_ticks<us_point>(1), us_point(1us));
    EXPECT_EQ(from_ticks<us_point>(0), us_point(0us));
    EXPECT_EQ(from_ticks<us_point>(-1'500), us_point(-1us)); // up means towards +inf
    EXPECT_EQ(from_ticks<s_point>(1), s_point(1s));
    EXPECT_EQ(from_ticks<s_point>(i64_max), s_point(9'223'372'037s));
    // Never earlier than the tick.
    for (const std::int64_t t : {std::int64_t{1}, std::int64_t{999}, std::int64_t{123'456'789},
                                 i64_max, std::int64_t{-1}, i64_min + 1'000})
        EXPECT_GE(rategov::detail::to_ticks(from_ticks<us_point>(t)), t) << t;
}

TEST(Ticks, DurationToTicks) {
    using rategov::detail::duration_to_ticks;
    EXPECT_EQ(duration_to_ticks(2s), 2'000'000'000);
    EXPECT_EQ(duration_to_ticks(3us), 3'000);
    EXPECT_EQ(duration_to_ticks(-4ms), -4'000'000);
    EXPECT_EQ(duration_to_ticks(std::chrono::hours::max()), i64_max);
    EXPECT_EQ(duration_to_ticks(std::chrono::hours::min()), i64_min);
    EXPECT_EQ(duration_to_ticks(nanoseconds::max()), i64_max);
}

TEST(Ticks, UsableInConstantExpressions) {
    static_assert(rategov::detail::to_ticks(us_point(2us)) == 2'000);
    static_assert(rategov::detail::from_ticks<us_point>(2'001) == us_point(3us));
    EXPECT_EQ(rategov::detail::duration_to_ticks(1min), 60'000'000'000);
}

} // namespace
