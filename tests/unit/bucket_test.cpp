// bucket: every operation and every result kind in virtual time (manual clock), exact
// ready_at values, set_limit inheritance, a clock going back, huge requests, the 100-year
// horizon, properties that hold over any clock, and exactness at the extreme rates.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <type_traits>

#include <rategov/bucket/bucket.hpp>
#include <rategov/bucket/result.hpp>
#include <rategov/clock/clock.hpp>
#include <rategov/quota/quota.hpp>
#include <rategov/testing/manual_clock.hpp>

#include <gtest/gtest.h>

namespace {

using namespace std::chrono_literals;
using rategov::acquire_status;
using rategov::inheritance;
using rategov::quota;
using std::chrono::nanoseconds;

using clk = rategov::testing::manual_clock;
using tp = clk::time_point;
using bucket = rategov::bucket<clk>;

constexpr std::uint64_t u64_max = std::numeric_limits<std::uint64_t>::max();
constexpr nanoseconds hundred_years = std::chrono::hours(24) * 36525;

/// The buckets start at T0, away from the manual clock's own epoch.
constexpr tp T0 = tp(1000s);

/// `r` is a denial whose ready_at is exactly the earliest time `n` tokens can be taken:
/// at ready_at − 1 ns the same request is still denied (with the same ready_at); at ready_at
/// it is granted. Moves `clock` to ready_at and takes the tokens.
void expect_exact_ready_at(bucket& b, const clk& clock, std::uint64_t n, tp expected) {
    const auto r = b.try_acquire(n);
    ASSERT_EQ(r.status, acquire_status::denied);
    ASSERT_EQ(r.ready_at, expected);
    ASSERT_GT(expected, clock.now());
    clock.set(expected - 1ns);
    const auto early = b.try_acquire(n);
    EXPECT_EQ(early.status, acquire_status::denied);
    EXPECT_EQ(early.ready_at, expected);
    clock.set(expected);
    const auto on_time = b.try_acquire(n);
    EXPECT_EQ(on_time.status, acquire_status::granted);
    EXPECT_EQ(on_time.ready_at, expected);
}

// --- try_acquire ------------------------------------------------------------------------------

TEST(Bucket, FreshBucketGrantsItsBurstThenDenies) {
    const clk clock(T0);
    bucket b(rategov::per_second(10), clock);
    for (int i = 0; i < 10; ++i) {
        const auto r = b.try_acquire();
        ASSERT_EQ(r.status, acquire_status::granted) << "token " << i;
        EXPECT_TRUE(r);
        EXPECT_TRUE(r.granted());
        EXPECT_EQ(r.ready_at, T0); // granted now
    }
    const auto r = b.try_acquire();
    EXPECT_EQ(r.status, acquire_status::denied);
    EXPECT_FALSE(r);
    EXPECT_FALSE(r.granted());
    EXPECT_EQ(r.ready_at, T0 + 100ms);
}

TEST(Bucket, WholeBurstInOneRequest) {
    const clk clock(T0);
    bucket b(rategov::per_second(10), clock);
    EXPECT_TRUE(b.try_acquire(10));
    EXPECT_EQ(b.available(), 0u);
    expect_exact_ready_at(b, clock, 1, T0 + 100ms);
}

TEST(Bucket, DeniedReadyAtIsTheEarliestSuccess) {
    struct test_case {
        quota q;
        std::uint64_t take_first;
        std::uint64_t then;
        nanoseconds wait;
    };
    const test_case cases[] = {
        {rategov::per_second(10), 10, 1, 100ms},
        {rategov::per_second(10), 10, 3, 300ms},
        {rategov::per_second(10), 7, 5, 200ms},                          // 3 left, 2 more needed
        {rategov::per_second(3), 3, 1, 333'333'334ns},                   // 1/3 s rounded up
        {rategov::per_second(3), 3, 2, 666'666'667ns},                   // 2/3 s rounded up
        {rategov::per_minute(7), 7, 2, 17'142'857'143ns},                // 120/7 s rounded up
        {rategov::per_hour(1), 1, 1, 1h},                                // the slowest common rate
        {rategov::per(1s, 1'000'000'000), 1'000'000'000, 1, 1ns},        // 1 per ns
        {rategov::per(1s, 1'000'000'000), 1'000'000'000, 1'000, 1us},    // 1 per ns
        {rategov::per_minute(36'000).with_burst(6'000), 6'000, 600, 1s}, // burst < count
        {rategov::per_second(1).with_burst(5), 5, 2, 2s},                // burst > count
        {rategov::per(std::chrono::hours(24) * 730, 1), 1, 1, std::chrono::hours(24) * 730},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.q.to_string() + ", take " + std::to_string(c.take_first) + " then " +
                     std::to_string(c.then));
        const clk clock(T0);
        bucket b(c.q, clock);
        ASSERT_TRUE(b.try_acquire(c.take_first));
        expect_exact_ready_at(b, clock, c.then, T0 + c.wait);
    }
}

TEST(Bucket, ReadyAtIsExactAtAnInstantBetweenUnits) {
    // At T0 + 1 ns a third of a token per second has accrued a fraction of a unit: whatever
    // the rounding, the ready_at of a denial is the first instant that grants.
    const clk clock(T0);
    bucket b(rategov::per_second(3), clock);
    clock.advance(1ns);
    ASSERT_TRUE(b.try_acquire(3));
    const auto r = b.try_acquire(1);
    ASSERT_EQ(r.status, acquire_status::denied);
    // About 1/3 s after the take, give or take a unit's rounding.
    EXPECT_GE(r.ready_at, T0 + 1ns + 333'333'333ns);
    EXPECT_LE(r.ready_at, T0 + 1ns + 333'333'336ns);
    expect_exact_ready_at(b, clock, 1, r.ready_at);
}

TEST(Bucket, RefillsAtTheRateAndCapsAtTheBurst) {
    const clk clock(T0);
    bucket b(rategov::per_second(10), clock);
    ASSERT_TRUE(b.try_acquire(10));
    clock.advance(350ms);
    EXPECT_EQ(b.available(), 3u);
    EXPECT_TRUE(b.try_acquire(3));
    EXPECT_FALSE(b.try_acquire(1));
    clock.advance(1h);
    EXPECT_EQ(b.available(), 10u); // not 36'000
    EXPECT_TRUE(b.try_acquire(10));
    EXPECT_FALSE(b.try_acquire(1));
}

TEST(Bucket, ExceedsCapacity) {
    const clk clock(T0);
    bucket b(rategov::per_second(10), clock);
    const auto r = b.try_acquire(11);
    EXPECT_EQ(r.status, acquire_status::exceeds_capacity);
    EXPECT_FALSE(r);
    EXPECT_EQ(r.ready_at, tp::max());
    EXPECT_EQ(b.available(), 10u); // nothing taken
    // Still exceeds_capacity (not denied) when the bucket is empty: waiting would not help.
    ASSERT_TRUE(b.try_acquire(10));
    EXPECT_EQ(b.try_acquire(11).status, acquire_status::exceeds_capacity);
    EXPECT_EQ(b.try_acquire_at(11, T0 + 1h).status, acquire_status::exceeds_capacity);
    // A burst-sized request is merely denied.
    EXPECT_EQ(b.try_acquire(10).status, acquire_status::denied);
}

TEST(Bucket, ZeroTokensAreGrantedWhenFullOrEmpty) {
    const clk clock(T0);
    bucket b(rategov::per_second(10), clock);
    auto r = b.try_acquire(0);
    EXPECT_EQ(r.status, acquire_status::granted);
    EXPECT_EQ(r.ready_at, T0);
    EXPECT_EQ(b.available(), 10u);
    ASSERT_TRUE(b.try_acquire(10));
    r = b.try_acquire(0);
    EXPECT_EQ(r.status, acquire_status::granted);
    EXPECT_EQ(r.ready_at, T0);
    // Taking nothing moved nothing: the next token is still 100 ms away.
    expect_exact_ready_at(b, clock, 1, T0 + 100ms);
}

TEST(Bucket, ZeroTokensAreGrantedInDebt) {
    // "n == 0 is always granted" (bucket::try_acquire), also after charge() went into debt.
    const clk clock(T0);
    bucket b(rategov::per_second(10), clock);
    b.charge(25);
    ASSERT_GT(b.debt(), 0u);
    const auto r = b.try_acquire(0);
    EXPECT_EQ(r.status, acquire_status::granted);
    EXPECT_EQ(r.ready_at, T0);
}

TEST(Bucket, TryAcquireAtUsesTheCallersTime) {
    const clk clock(T0);
    bucket b(rategov::per_second(10), clock);
    ASSERT_TRUE(b.try_acquire_at(10, T0));
    auto r = b.try_acquire_at(1, T0 + 100ms);
    EXPECT_EQ(r.status, acquire_status::granted);
    EXPECT_EQ(r.ready_at, T0 + 100ms); // granted at the caller's time
    r = b.try_acquire_at(1, T0 + 150ms);
    EXPECT_EQ(r.status, acquire_status::denied);
    EXPECT_EQ(r.ready_at, T0 + 200ms);
    r = b.try_acquire_at(1, T0 + 200ms - 1ns);
    EXPECT_EQ(r.status, acquire_status::denied);
    EXPECT_EQ(r.ready_at, T0 + 200ms);
    // A time before the bucket was made reads as its start.
    r = b.try_acquire_at(1, T0 - 1h);
    EXPECT_EQ(r.status, acquire_status::denied);
    EXPECT_EQ(r.ready_at, T0 + 200ms);
    r = b.try_acquire_at(2, T0 + 300ms);
    EXPECT_EQ(r.status, acquire_status::granted);
    EXPECT_EQ(r.ready_at, T0 + 300ms);
    EXPECT_EQ(clock.now(), T0); // the clock was not read for any of this
}

// --- reserve ----------------------------------------------------------------------------------

TEST(Bucket, ReserveIsImmediateWhileTokensLast) {
    const clk clock(T0);
    bucket b(rategov::per_second(10), clock);
    auto r = b.reserve(4);
    EXPECT_EQ(r.status, acquire_status::granted);
    EXPECT_EQ(r.ready_at, T0);
    r = b.reserve(6);
    EXPECT_EQ(r.status, acquire_status::granted);
    EXPECT_EQ(r.ready_at, T0);
    EXPECT_EQ(b.available(), 0u);
    EXPECT_EQ(b.debt(), 0u);
}

TEST(Bucket, ReservePaysForwardInAQueue) {
    const clk clock(T0);
    bucket b(rategov::per_second(10), clock);
    ASSERT_EQ(b.reserve(10).ready_at, T0);
    const auto r1 = b.reserve(1);
    const auto r2 = b.reserve(2);
    const auto r3 = b.reserve(1);
    EXPECT_EQ(r1.status, acquire_status::granted);
    EXPECT_EQ(r2.status, acquire_status::granted);
    EXPECT_EQ(r3.status, acquire_status::granted);
    EXPECT_EQ(r1.ready_at, T0 + 100ms);
    EXPECT_EQ(r2.ready_at, T0 + 300ms);
    EXPECT_EQ(r3.ready_at, T0 + 400ms);
    // The queue is ahead of a plain try_acquire too.
    auto r = b.try_acquire(1);
    EXPECT_EQ(r.status, acquire_status::denied);
    EXPECT_EQ(r.ready_at, T0 + 500ms);
    // At the last reservation's time its tokens are used up, and nothing more is there.
    clock.set(r3.ready_at);
    EXPECT_EQ(b.available(), 0u);
    EXPECT_EQ(b.debt(), 0u);
    expect_exact_ready_at(b, clock, 1, T0 + 500ms);
}

TEST(Bucket, ReserveAtUsesTheCallersTime) {
    const clk clock(T0);
    bucket b(rategov::per_second(10), clock);
    ASSERT_TRUE(b.try_acquire(10));
    auto r = b.reserve_at(1, T0 + 1s);
    EXPECT_EQ(r.status, acquire_status::granted);
    EXPECT_EQ(r.ready_at, T0 + 1s); // the tokens are there by then
    r = b.reserve_at(10, T0 + 1s);
    EXPECT_EQ(r.status, acquire_status::granted);
    EXPECT_EQ(r.ready_at, T0 + 1100ms);
    r = b.reserve_at(1, T0 + 1s, 50ms);
    EXPECT_EQ(r.status, acquire_status::denied);
    EXPECT_EQ(r.ready_at, T0 + 1200ms);
}

TEST(Bucket, ReserveRefusesBeyondMaxWaitAndTakesNothing) {
    const clk clock(T0);
    bucket b(rategov::per_second(10), clock);
    ASSERT_TRUE(b.try_acquire(10));
    auto r = b.reserve(1, 50ms);
    EXPECT_EQ(r.status, acquire_status::denied);
    EXPECT_EQ(r.ready_at, T0 + 100ms); // the time it would have had
    r = b.reserve(3, 299ms);
    EXPECT_EQ(r.status, acquire_status::denied);
    EXPECT_EQ(r.ready_at, T0 + 300ms);
    // Nothing was taken by the refusals: a wait of exactly 100 ms is accepted.
    r = b.reserve(1, 100ms);
    EXPECT_EQ(r.status, acquire_status::granted);
    EXPECT_EQ(r.ready_at, T0 + 100ms);
    r = b.reserve(1, 199ms);
    EXPECT_EQ(r.status, acquire_status::denied);
    EXPECT_EQ(r.ready_at, T0 + 200ms);
    r = b.reserve(1, 200ms);
    EXPECT_EQ(r.status, acquire_status::granted);
    EXPECT_EQ(r.ready_at, T0 + 200ms);
    expect_exact_ready_at(b, clock, 1, T0 + 300ms);
}

TEST(Bucket, ReserveWithNoWaitAllowed) {
    const clk clock(T0);
    bucket b(rategov::per_second(10), clock);
    EXPECT_EQ(b.reserve(5, 0ns).status, acquire_status::granted);
    EXPECT_EQ(b.reserve(5, -1s).status, acquire_status::granted); // negative: no wait
    EXPECT_EQ(b.reserve(1, 0ns).status, acquire_status::denied);
    EXPECT_EQ(b.reserve(1, -1s).status, acquire_status::denied);
    EXPECT_EQ(b.reserve(1, 99'999'999ns).status, acquire_status::denied);
    EXPECT_EQ(b.available(), 0u);
    clock.advance(100ms);
    EXPECT_EQ(b.available(), 1u);
}

TEST(Bucket, ReserveExceedsCapacity) {
    const clk clock(T0);
    bucket b(rategov::per_second(10), clock);
    const auto r = b.reserve(11);
    EXPECT_EQ(r.status, acquire_status::exceeds_capacity);
    EXPECT_EQ(r.ready_at, tp::max());
    EXPECT_EQ(b.available(), 10u);
}

// --- refund -----------------------------------------------------------------------------------

TEST(Bucket, RefundGivesTokensBackButNeverAboveTheBurst) {
    const clk clock(T0);
    bucket b(rategov::per_second(10), clock);
    ASSERT_TRUE(b.try_acquire(5));
    EXPECT_EQ(b.available(), 5u);
    b.refund(3);
    EXPECT_EQ(b.available(), 8u);
    b.refund(0);
    EXPECT_EQ(b.available(), 8u);
    b.refund(100);
    EXPECT_EQ(b.available(), 10u);
    b.refund(1); // already full
    EXPECT_EQ(b.available(), 10u);
    // Full means exactly the burst: 10 now, then the 11th only 100 ms later.
    EXPECT_TRUE(b.try_acquire(10));
    expect_exact_ready_at(b, clock, 1, T0 + 100ms);
}

TEST(Bucket, RefundShortensTheReservationQueue) {
    const clk clock(T0);
    bucket b(rategov::per_second(10), clock);
    ASSERT_EQ(b.reserve(10).ready_at, T0);
    ASSERT_EQ(b.reserve(5).ready_at, T0 + 500ms);
    b.refund(5); // the second reservation was cancelled
    expect_exact_ready_at(b, clock, 1, T0 + 100ms);
}

TEST(Bucket, RefundPaysOffDebt) {
    const clk clock(T0);
    bucket b(rategov::per_second(10), clock);
    b.charge(25);
    ASSERT_EQ(b.debt(), 15u);
    b.refund(5);
    EXPECT_EQ(b.debt(), 10u);
    EXPECT_EQ(b.available(), 0u);
    b.refund(1000);
    EXPECT_EQ(b.debt(), 0u);
    EXPECT_EQ(b.available(), 10u);
}

TEST(Bucket, RefundOfEverythingTakenRestoresTheBurstAtAnInstantBetweenUnits) {
    // At T0 + 1 ns, A(τ) of 3 per second is a fraction of a unit. Taking 1 and refunding it at
    // the same instant must leave the full bucket it was.
    const clk clock(T0);
    bucket b(rategov::per_second(3), clock);
    clock.advance(1ns);
    ASSERT_TRUE(b.try_acquire(1));
    b.refund(1);
    EXPECT_EQ(b.available(), 3u);
    EXPECT_TRUE(b.try_acquire(3));
}

TEST(Bucket, BurstTakenInPiecesAtAnInstantBetweenUnits) {
    // The burst is granted whole at any instant; taken one token at a time at the same
    // instant it must be granted whole as well (as exact GCRA does).
    const clk clock(T0);
    bucket b(rategov::per_second(3), clock);
    clock.advance(1ns);
    EXPECT_TRUE(b.try_acquire(1));
    EXPECT_EQ(b.available(), 2u);
    EXPECT_TRUE(b.try_acquire(1));
    EXPECT_TRUE(b.try_acquire(1));
    EXPECT_FALSE(b.try_acquire(1));
}

// --- charge and debt --------------------------------------------------------------------------

TEST(Bucket, ChargeWithinTheBurstIsLikeATake) {
    const clk clock(T0);
    bucket b(rategov::per_second(10), clock);
    b.charge(3);
    EXPECT_EQ(b.available(), 7u);
    EXPECT_EQ(b.debt(), 0u);
    b.charge(0);
    EXPECT_EQ(b.available(), 7u);
    b.charge(7);
    EXPECT_EQ(b.available(), 0u);
    EXPECT_EQ(b.debt(), 0u);
    expect_exact_ready_at(b, clock, 1, T0 + 100ms);
}

TEST(Bucket, ChargeBeyondTheBurstGoesIntoDebtThatLaterCallersWaitOut) {
    const clk clock(T0);
    bucket b(rategov::per_second(10), clock);
    b.charge(25); // more than the burst: allowed
    EXPECT_EQ(b.debt(), 15u);
    EXPECT_EQ(b.available(), 0u);
    const auto r = b.try_acquire(1);
    EXPECT_EQ(r.status, acquire_status::denied);
    EXPECT_EQ(r.ready_at, T0 + 1600ms); // 15 owed + 1 wanted, at 10 per second
    clock.set(T0 + 1s);
    EXPECT_EQ(b.debt(), 5u);
    EXPECT_EQ(b.available(), 0u);
    clock.set(T0 + 1450ms);
    EXPECT_EQ(b.debt(), 1u); // half a token owed rounds up
    clock.set(T0 + 1500ms);
    EXPECT_EQ(b.debt(), 0u);
    EXPECT_EQ(b.available(), 0u);
    clock.set(T0);
    expect_exact_ready_at(b, clock, 1, T0 + 1600ms);
}

TEST(Bucket, ChargeQueuesReservationsBehindTheDebt) {
    const clk clock(T0);
    bucket b(rategov::per_second(10), clock);
    b.charge(12);
    EXPECT_EQ(b.debt(), 2u);
    const auto r = b.reserve(1);
    EXPECT_EQ(r.status, acquire_status::granted);
    EXPECT_EQ(r.ready_at, T0 + 300ms);
    EXPECT_EQ(b.reserve(1, 399ms).status, acquire_status::denied); // would be ready at 400 ms
    EXPECT_EQ(b.reserve(1, 400ms).status, acquire_status::granted);
    EXPECT_EQ(b.debt(), 4u);
}

TEST(Bucket, AvailableCountsWholeTokens) {
    const clk clock(T0);
    bucket b(rategov::per_second(10), clock);
    EXPECT_EQ(b.available(), 10u);
    ASSERT_TRUE(b.try_acquire(10));
    EXPECT_EQ(b.available(), 0u);
    clock.advance(99ms);
    EXPECT_EQ(b.available(), 0u);
    clock.advance(1ms);
    EXPECT_EQ(b.available(), 1u);
    clock.advance(450ms);
    EXPECT_EQ(b.available(), 5u);
    clock.advance(10s);
    EXPECT_EQ(b.available(), 10u);
    EXPECT_EQ(b.debt(), 0u);
}

// --- set_limit ----------------------------------------------------------------------------------

/// A bucket of 10 per second at T0 + 1 s (an instant where both 10/s and 100/s accrue whole
/// units) with 4 of its 10 tokens taken.
struct six_of_ten {
    clk clock{T0};
    bucket b{rategov::per_second(10), clock};
    six_of_ten() {
        clock.advance(1s);
        EXPECT_TRUE(b.try_acquire(4));
        EXPECT_EQ(b.available(), 6u);
    }
};

TEST(BucketSetLimit, LimitReportsTheQuotaInForce) {
    six_of_ten s;
    EXPECT_EQ(s.b.limit(), rategov::per_second(10));
    s.b.set_limit(rategov::per_minute(600).with_burst(7));
    EXPECT_EQ(s.b.limit(), rategov::per_minute(600).with_burst(7));
    s.b.set_limit(rategov::per_hour(1), inheritance::reset);
    EXPECT_EQ(s.b.limit(), rategov::per_hour(1));
    for (int i = 0; i < 9; ++i) // more changes than there are slots
        s.b.set_limit(rategov::per_second(1 + i), inheritance::proportional);
    EXPECT_EQ(s.b.limit(), rategov::per_second(9));
}

TEST(BucketSetLimit, KeepCarriesTheTokensOver) {
    six_of_ten s;
    s.b.set_limit(rategov::per_second(100), inheritance::keep);
    EXPECT_EQ(s.b.available(), 6u);
    EXPECT_EQ(s.b.debt(), 0u);
    EXPECT_EQ(s.b.limit(), rategov::per_second(100));
    s.clock.advance(10ms); // the new rate applies
    EXPECT_EQ(s.b.available(), 7u);
    s.clock.advance(1s);
    EXPECT_EQ(s.b.available(), 100u);
}

TEST(BucketSetLimit, KeepIsTheDefault) {
    six_of_ten s;
    s.b.set_limit(rategov::per_second(100));
    EXPECT_EQ(s.b.available(), 6u);
}

TEST(BucketSetLimit, KeepToASlowerRate) {
    six_of_ten s;
    s.b.set_limit(rategov::per_minute(600).with_burst(50), inheritance::keep); // same rate
    EXPECT_EQ(s.b.available(), 6u);
    s.b.set_limit(rategov::per_minute(60).with_burst(50), inheritance::keep);
    EXPECT_EQ(s.b.available(), 6u);
    EXPECT_TRUE(s.b.try_acquire(6));
    expect_exact_ready_at(s.b, s.clock, 1, s.clock.now() + 1s);
}

TEST(BucketSetLimit, KeepCapsAtTheNewBurst) {
    six_of_ten s;
    s.b.set_limit(rategov::per_second(5), inheritance::keep);
    EXPECT_EQ(s.b.available(), 5u);
    EXPECT_TRUE(s.b.try_acquire(5));
    expect_exact_ready_at(s.b, s.clock, 1, s.clock.now() + 200ms);
}

TEST(BucketSetLimit, ProportionalKeepsTheFillRatio) {
    six_of_ten s;
    s.b.set_limit(rategov::per_second(100), inheritance::proportional);
    EXPECT_EQ(s.b.available(), 60u);
    EXPECT_EQ(s.b.debt(), 0u);
    s.b.set_limit(rategov::per_second(5), inheritance::proportional);
    EXPECT_EQ(s.b.available(), 3u);
    EXPECT_EQ(s.b.limit(), rategov::per_second(5));
    EXPECT_TRUE(s.b.try_acquire(3));
    expect_exact_ready_at(s.b, s.clock, 1, s.clock.now() + 200ms);
}

TEST(BucketSetLimit, ResetStartsFull) {
    six_of_ten s;
    s.b.set_limit(rategov::per_second(100), inheritance::reset);
    EXPECT_EQ(s.b.available(), 100u);
    EXPECT_TRUE(s.b.try_acquire(100));
    expect_exact_ready_at(s.b, s.clock, 1, s.clock.now() + 10ms);
}

TEST(BucketSetLimit, KeepCarriesTheDebtOver) {
    six_of_ten s;
    s.b.charge(21); // 6 available, 21 charged: 15 owed
    ASSERT_EQ(s.b.debt(), 15u);
    s.b.set_limit(rategov::per_second(100), inheritance::keep);
    EXPECT_EQ(s.b.debt(), 15u);
    EXPECT_EQ(s.b.available(), 0u);
    // 15 owed + 1 wanted at 100 per second.
    expect_exact_ready_at(s.b, s.clock, 1, s.clock.now() + 160ms);
}

TEST(BucketSetLimit, KeepCarriesTheDebtOverToASlowerRate) {
    six_of_ten s;
    s.b.charge(21);
    s.b.set_limit(rategov::per_second(2).with_burst(4), inheritance::keep);
    EXPECT_EQ(s.b.debt(), 15u);
    expect_exact_ready_at(s.b, s.clock, 1, s.clock.now() + 8s); // 16 tokens at 2 per second
}

TEST(BucketSetLimit, ProportionalScalesTheDebt) {
    six_of_ten s;
    s.b.charge(21);
    s.b.set_limit(rategov::per_second(100), inheritance::proportional);
    EXPECT_EQ(s.b.debt(), 150u); // 1.5 bursts owed either way
    EXPECT_EQ(s.b.available(), 0u);
    expect_exact_ready_at(s.b, s.clock, 1, s.clock.now() + 1510ms);
}

TEST(BucketSetLimit, ResetForgivesTheDebt) {
    six_of_ten s;
    s.b.charge(21);
    s.b.set_limit(rategov::per_second(100), inheritance::reset);
    EXPECT_EQ(s.b.debt(), 0u);
    EXPECT_EQ(s.b.available(), 100u);
}

TEST(BucketSetLimit, ReservationsCarryOver) {
    six_of_ten s;
    ASSERT_EQ(s.b.reserve(6).ready_at, s.clock.now());
    ASSERT_EQ(s.b.reserve(2).ready_at, s.clock.now() + 200ms);
    // 2 tokens owed under the old limit stay owed under keep.
    s.b.set_limit(rategov::per_second(20), inheritance::keep);
    EXPECT_EQ(s.b.debt(), 2u);
    expect_exact_ready_at(s.b, s.clock, 1, s.clock.now() + 150ms);
}

// --- a clock that goes back --------------------------------------------------------------------

TEST(BucketClockBackwards, NeverGrantsMoreThanTheBurst) {
    const clk clock(T0);
    bucket b(rategov::per_second(10), clock);
    clock.advance(10s);
    ASSERT_TRUE(b.try_acquire(10));
    std::uint64_t granted = 10;
    for (const tp t : {T0 + 5s, T0 - 1h, T0, T0 + 10s, T0 + 9999ms}) {
        clock.set(t);
        EXPECT_EQ(b.available(), 0u);
        const auto r = b.try_acquire(1);
        EXPECT_EQ(r.status, acquire_status::denied);
        EXPECT_EQ(r.ready_at, T0 + 10100ms);
        EXPECT_EQ(b.reserve(1, 50ms).status, acquire_status::denied);
        granted += r ? 1u : 0u;
    }
    EXPECT_EQ(granted, 10u);
    clock.set(T0 + 10100ms);
    EXPECT_TRUE(b.try_acquire(1));
    EXPECT_FALSE(b.try_acquire(1));
}

TEST(BucketClockBackwards, BeforeTheEpochReadsAsTheEpoch) {
    const clk clock(T0);
    bucket b(rategov::per_second(10), clock);
    clock.set(T0 - 100s);
    EXPECT_EQ(b.available(), 10u);
    EXPECT_TRUE(b.try_acquire(10));
    clock.set(tp::min());
    EXPECT_FALSE(b.try_acquire(1));
    EXPECT_EQ(b.debt(), 0u);
    b.charge(5);
    EXPECT_EQ(b.debt(), 5u);
    b.refund(5);
    EXPECT_EQ(b.debt(), 0u);
    clock.set(T0 + 1s);
    EXPECT_EQ(b.available(), 10u);
}

TEST(BucketClockBackwards, JumpingBackAndForthStaysWithinTheEnvelope) {
    const clk clock(T0);
    bucket b(rategov::per_second(10), clock);
    std::mt19937_64 rng(42);
    std::uint64_t granted = 0;
    nanoseconds latest{0};
    for (int i = 0; i < 5'000; ++i) {
        // Time moves forward 4 ms a step, but one step in three jumps up to 2 s back.
        const nanoseconds back(rng() % 3 == 0 ? static_cast<std::int64_t>(rng() % 2'000'000'000)
                                              : 0);
        const nanoseconds t = std::max(nanoseconds(0), i * nanoseconds(4ms) - back);
        clock.set(T0 + t);
        latest = std::max(latest, t);
        const auto n = 1 + rng() % 4;
        if (b.try_acquire(n))
            granted += n;
        // Never more than burst + rate·(latest time seen).
        ASSERT_LE(granted, 10u + static_cast<std::uint64_t>(latest / 100ms)) << "step " << i;
    }
    EXPECT_GE(latest, 19s);
    EXPECT_GE(granted, 150u); // and the rate was not lost either (≈ 200 + 10 available)
}

// --- huge requests -----------------------------------------------------------------------------

TEST(BucketHugeN, TryAcquireAndReserveExceedCapacity) {
    const clk clock(T0);
    bucket b(rategov::per_second(10), clock);
    for (const std::uint64_t n : {u64_max, u64_max - 1, std::uint64_t{1} << 63,
                                  std::uint64_t{1} << 62, (std::uint64_t{1} << 60) + 1}) {
        SCOPED_TRACE(n);
        auto r = b.try_acquire(n);
        EXPECT_EQ(r.status, acquire_status::exceeds_capacity);
        EXPECT_EQ(r.ready_at, tp::max());
        r = b.try_acquire_at(n, tp::max());
        EXPECT_EQ(r.status, acquire_status::exceeds_capacity);
        r = b.reserve(n);
        EXPECT_EQ(r.status, acquire_status::exceeds_capacity);
        EXPECT_EQ(r.ready_at, tp::max());
        r = b.reserve(n, 0ns);
        EXPECT_EQ(r.status, acquire_status::exceeds_capacity);
    }
    EXPECT_EQ(b.available(), 10u);
}

TEST(BucketHugeN, LargestBurst) {
    // The largest burst at one token a nanosecond.
    constexpr std::uint64_t max = quota::max_burst;
    const clk clock(T0);
    bucket b(rategov::per(1ns, 1).with_burst(max), clock);
    EXPECT_EQ(b.available(), max);
    EXPECT_EQ(b.try_acquire(max + 1).status, acquire_status::exceeds_capacity);
    EXPECT_TRUE(b.try_acquire(max));
    EXPECT_EQ(b.available(), 0u);
    expect_exact_ready_at(b, clock, 1, T0 + 1ns);
    b.refund(u64_max);
    EXPECT_EQ(b.available(), max);
    b.charge(u64_max);
    EXPECT_GT(b.debt(), 0u);
    EXPECT_EQ(b.available(), 0u);
    EXPECT_FALSE(b.try_acquire(1));
}

TEST(BucketHugeN, ChargeOfUint64MaxIsADebt) {
    const clk clock(T0);
    bucket b(rategov::per_second(10), clock);
    b.charge(u64_max);
    EXPECT_EQ(b.available(), 0u);
    const auto debt = b.debt();
    EXPECT_GE(debt, 10u); // at least a burst owed
    auto r = b.try_acquire(1);
    EXPECT_EQ(r.status, acquire_status::denied);
    EXPECT_GE(r.ready_at, T0 + 1s + 100ms); // the debt, then the token, at 10 per second
    r = b.reserve(1, 1s);
    EXPECT_EQ(r.status, acquire_status::denied);
    r = b.reserve(1);
    EXPECT_NE(r.status, acquire_status::exceeds_capacity);
    if (r) {
        EXPECT_GT(r.ready_at, T0 + 1s);
    }
    // A second huge charge does not wrap the debt around.
    b.charge(u64_max);
    EXPECT_GE(b.debt(), debt);
    EXPECT_FALSE(b.try_acquire(1));
    EXPECT_EQ(b.available(), 0u);
}

TEST(BucketHugeN, RefundAllRecoversFromAHugeCharge) {
    const clk clock(T0);
    bucket b(rategov::per_second(10), clock);
    b.charge(u64_max);
    b.refund(u64_max);
    EXPECT_EQ(b.debt(), 0u);
    EXPECT_EQ(b.available(), 10u);
    EXPECT_TRUE(b.try_acquire(10));
    EXPECT_FALSE(b.try_acquire(1));
}

TEST(BucketHugeN, ResetRecoversFromAHugeCharge) {
    const clk clock(T0);
    bucket b(rategov::per_second(10), clock);
    b.charge(u64_max);
    b.set_limit(rategov::per_second(10), inheritance::reset);
    EXPECT_EQ(b.debt(), 0u);
    EXPECT_EQ(b.available(), 10u);
    b.charge(u64_max);
    b.set_limit(rategov::per_second(1'000), inheritance::keep); // a huge debt converts
    EXPECT_GT(b.debt(), 0u);
    EXPECT_FALSE(b.try_acquire(1));
    b.set_limit(rategov::per_hour(1), inheritance::proportional);
    EXPECT_GT(b.debt(), 0u);
    EXPECT_FALSE(b.try_acquire(1));
}

// --- the horizon ---------------------------------------------------------------------------------

TEST(BucketHorizon, WorksAfterAHundredYears) {
    const clk clock(T0);
    bucket b(rategov::per_second(10), clock);
    clock.advance(hundred_years);
    const tp later = T0 + hundred_years;
    EXPECT_EQ(b.available(), 10u);
    auto r = b.try_acquire(10);
    EXPECT_EQ(r.status, acquire_status::granted);
    EXPECT_EQ(r.ready_at, later);
    expect_exact_ready_at(b, clock, 1, later + 100ms);
    r = b.reserve(2);
    EXPECT_EQ(r.status, acquire_status::granted);
    EXPECT_EQ(r.ready_at, later + 300ms);
    b.charge(10); // 13 taken + 10 charged, 1 accrued, burst 10: 12 owed
    EXPECT_EQ(b.debt(), 12u);
}

TEST(BucketHorizon, SlowRatesAfterAHundredYears) {
    const clk clock(T0);
    bucket b(rategov::per_hour(1), clock);
    clock.advance(hundred_years - 2h);
    const tp later = clock.now();
    ASSERT_TRUE(b.try_acquire(1));
    expect_exact_ready_at(b, clock, 1, later + 1h);
    expect_exact_ready_at(b, clock, 1, later + 2h);
}

TEST(BucketHorizon, AClockThatStartsLateWorksForAHundredYears) {
    // A manual clock already 150 years past its epoch: ticks count from the bucket's start.
    const tp start = tp(std::chrono::hours(24) * 365 * 150);
    const clk clock(start);
    bucket b(rategov::per_minute(7), clock);
    clock.advance(hundred_years);
    ASSERT_TRUE(b.try_acquire(7));
    expect_exact_ready_at(b, clock, 2, start + hundred_years + 17'142'857'143ns);
}

TEST(BucketHorizon, SetLimitAfterAHundredYears) {
    const clk clock(T0);
    bucket b(rategov::per_second(10), clock);
    clock.advance(hundred_years);
    ASSERT_TRUE(b.try_acquire(4));
    b.set_limit(rategov::per_second(100), inheritance::keep);
    EXPECT_EQ(b.available(), 6u);
    b.set_limit(rategov::per_second(100), inheritance::proportional);
    EXPECT_EQ(b.available(), 6u);
    EXPECT_TRUE(b.try_acquire(6));
    expect_exact_ready_at(b, clock, 1, T0 + hundred_years + 10ms);
}

// --- accessors
// ------------------------------------------------------------------------------------

TEST(Bucket, ClockAccessorsReadTheSharedClock) {
    const clk clock(T0);
    bucket b(rategov::per_second(10), clock);
    clock.advance(5s);
    EXPECT_EQ(b.now(), T0 + 5s);
    EXPECT_EQ(b.clock().now(), T0 + 5s);
    static_assert(std::is_same_v<bucket::clock_type, clk>);
    static_assert(std::is_same_v<bucket::time_point, tp>);
    static_assert(std::is_same_v<bucket::result, rategov::acquire_result<tp>>);
    static_assert(std::is_same_v<rategov::bucket<>::clock_type, rategov::steady_clock>);
}

// --- over any clock ------------------------------------------------------------------------------

struct typed_tag {};

template <class Clock>
class BucketOnAnyClock : public ::testing::Test {
protected:
    // 5 tokens per 5·2^40 ns (one every 18 minutes): A(τ) is a whole number of units at
    // every nanosecond, so no rounding blurs the counts below, and a real clock cannot refill
    // a token during the test.
    static constexpr nanoseconds token_time = nanoseconds(std::int64_t{1} << 40);
    static quota q() { return rategov::per(5 * token_time, 5); }
};

using clock_types = ::testing::Types<rategov::steady_clock, rategov::coarse_steady_clock, clk,
                                     rategov::testing::static_manual_clock<typed_tag>>;

struct clock_names {
    template <class T>
    static std::string GetName(int) {
        if constexpr (std::is_same_v<T, rategov::steady_clock>)
            return "steady_clock";
        else if constexpr (std::is_same_v<T, rategov::coarse_steady_clock>)
            return "coarse_steady_clock";
        else if constexpr (std::is_same_v<T, clk>)
            return "manual_clock";
        else
            return "static_manual_clock";
    }
};

TYPED_TEST_SUITE(BucketOnAnyClock, clock_types, clock_names);

TYPED_TEST(BucketOnAnyClock, FreshBucketGrantsItsBurstThenDenies) {
    rategov::bucket<TypeParam> b(this->q());
    EXPECT_EQ(b.available(), 5u);
    for (int i = 0; i < 5; ++i)
        EXPECT_EQ(b.try_acquire(1).status, acquire_status::granted) << "token " << i;
    EXPECT_EQ(b.try_acquire(1).status, acquire_status::denied);
    EXPECT_EQ(b.available(), 0u);
}

TYPED_TEST(BucketOnAnyClock, ExceedsCapacity) {
    rategov::bucket<TypeParam> b(this->q());
    const auto r = b.try_acquire(6);
    EXPECT_EQ(r.status, acquire_status::exceeds_capacity);
    EXPECT_EQ(r.ready_at, TypeParam::time_point::max());
    EXPECT_EQ(b.reserve(6).status, acquire_status::exceeds_capacity);
    EXPECT_EQ(b.try_acquire(u64_max).status, acquire_status::exceeds_capacity);
    EXPECT_EQ(b.available(), 5u);
}

TYPED_TEST(BucketOnAnyClock, RefundRestoresAvailability) {
    rategov::bucket<TypeParam> b(this->q());
    ASSERT_TRUE(b.try_acquire(5));
    EXPECT_EQ(b.available(), 0u);
    b.refund(2);
    EXPECT_EQ(b.available(), 2u);
    EXPECT_TRUE(b.try_acquire(2));
    EXPECT_FALSE(b.try_acquire(1));
    b.refund(100);
    EXPECT_EQ(b.available(), 5u);
    EXPECT_TRUE(b.try_acquire(5));
    EXPECT_FALSE(b.try_acquire(1));
}

TYPED_TEST(BucketOnAnyClock, ReadyAtOfADenialIsInTheFuture) {
    rategov::bucket<TypeParam> b(this->q());
    const auto before = b.now();
    ASSERT_TRUE(b.try_acquire(5));
    const auto after = b.now();
    const auto r = b.try_acquire(1);
    ASSERT_EQ(r.status, acquire_status::denied);
    EXPECT_GT(r.ready_at, b.now());
    // One token's time after the instant the bucket was emptied.
    EXPECT_GE(r.ready_at, before + this->token_time);
    EXPECT_LE(r.ready_at, after + this->token_time);
}

TYPED_TEST(BucketOnAnyClock, ReservationsQueueUp) {
    rategov::bucket<TypeParam> b(this->q());
    const auto before = b.now();
    const auto r0 = b.reserve(5);
    const auto after = b.now();
    const auto r1 = b.reserve(1);
    const auto r2 = b.reserve(2);
    ASSERT_TRUE(r0);
    ASSERT_TRUE(r1);
    ASSERT_TRUE(r2);
    EXPECT_GE(r0.ready_at, before);
    EXPECT_LE(r0.ready_at, after);
    EXPECT_GE(r1.ready_at, before + this->token_time);
    EXPECT_LE(r1.ready_at, after + this->token_time);
    EXPECT_EQ(r2.ready_at - r1.ready_at, 2 * this->token_time);
    EXPECT_EQ(b.reserve(1, std::chrono::seconds(1)).status, acquire_status::denied);
}

TYPED_TEST(BucketOnAnyClock, ChargeGoesIntoDebt) {
    rategov::bucket<TypeParam> b(this->q());
    b.charge(8);
    EXPECT_EQ(b.debt(), 3u);
    EXPECT_EQ(b.available(), 0u);
    EXPECT_EQ(b.try_acquire(1).status, acquire_status::denied);
    b.refund(8);
    EXPECT_EQ(b.debt(), 0u);
    EXPECT_EQ(b.available(), 5u);
}

// --- exactness at the extreme rates
// ----------------------------------------------------------------

__extension__ typedef unsigned __int128 wide;

/// A caller that takes every token as soon as it is there: at each step it takes all that is
/// available, checks that not one more is, and moves the clock to the ready_at of that
/// denial plus a random delay of at most `max_delay` (and short enough that no token
/// overflows the burst). After every step the tokens granted since the first
/// grant stay within [rate·T − 1, burst + rate·T], T the time since the first grant.
void saturate(const quota& q, nanoseconds run, nanoseconds max_delay, nanoseconds start_offset,
              std::uint64_t seed) {
    const clk clock(T0);
    bucket b(q, clock);
    clock.advance(start_offset);
    std::mt19937_64 rng(seed);
    const tp start = clock.now();
    const auto count = static_cast<wide>(q.count());
    const auto period = static_cast<wide>(q.period().count());
    const auto burst = static_cast<wide>(q.burst());
    // The longest delay after a ready_at that loses no token: (burst − 1) tokens' time.
    const auto lossless = static_cast<std::uint64_t>((burst - 1) * period / count);
    wide granted = 0;
    std::uint64_t steps = 0;
    while (clock.now() - start <= run) {
        ++steps;
        const std::uint64_t n = b.available();
        if (n > 0) {
            const auto r = b.try_acquire(n);
            ASSERT_EQ(r.status, acquire_status::granted) << "step " << steps;
            granted += n;
        }
        const auto denial = b.try_acquire(1);
        ASSERT_EQ(denial.status, acquire_status::denied) << "step " << steps;
        ASSERT_GT(denial.ready_at, clock.now());

        const auto elapsed = static_cast<wide>((clock.now() - start).count());
        // Upper: granted ≤ burst + count·T/period.
        ASSERT_LE(granted * period, burst * period + count * elapsed) << "step " << steps;
        // Lower: granted ≥ count·T/period − 1 ...
        ASSERT_GE((granted + 1) * period, count * elapsed) << "step " << steps;
        // ... and, having started full and taken everything, ≥ burst + count·T/period − 2.
        ASSERT_GE((granted + 2) * period, burst * period + count * elapsed) << "step " << steps;

        // Sometimes right at ready_at, sometimes later: both a tiny and a long delay, but
        // never so long that the bucket would overflow (with a burst of 1: never late).
        const auto delay_ns = static_cast<std::uint64_t>(max_delay.count());
        const std::uint64_t delay = std::min(
            rng() % 3 == 0 ? 0 : (rng() % 2 == 0 ? rng() % 16 : rng() % delay_ns), lossless);
        clock.set(denial.ready_at + nanoseconds(static_cast<std::int64_t>(delay)));
    }
    EXPECT_GT(steps, 1'000u);
}

TEST(BucketExactness, OnePerHourOverAHundredYears) {
    // One token an hour, burst 1: about 876'600 grants.
    saturate(rategov::per_hour(1), hundred_years - 1h, 30min, 0ns, 1);
}

TEST(BucketExactness, OnePerHourStartingLate) {
    saturate(rategov::per_hour(1), std::chrono::hours(24) * 3650, 59min, 12'345ns, 2);
}

TEST(BucketExactness, OnePerHourWithABurstOfThreeAndLateCallers) {
    saturate(rategov::per_hour(1).with_burst(3), std::chrono::hours(24) * 3650, 119min, 12'345ns,
             6);
}

TEST(BucketExactness, OneBillionPerSecond) {
    // One token a nanosecond, burst 10^9: the finest rate with the largest common burst.
    saturate(rategov::per(1s, 1'000'000'000), 20'000s, 900ms, 0ns, 3);
}

TEST(BucketExactness, OneBillionPerSecondAfterFiftyYears) {
    saturate(rategov::per(1s, 1'000'000'000), 5'000s, 900ms, hundred_years / 2, 4);
}

TEST(BucketExactness, OneBillionPerSecondWithASmallBurst) {
    saturate(rategov::per(1s, 1'000'000'000).with_burst(1'000), 2ms, 900ns, 1ns, 5);
}

} // namespace
