// Traffic classes and the priority headroom of a governor (`traffic_class`,
// `governor::set_priority_headroom`), in virtual time: a manual clock in wait_mode::advance,
// never a real sleep.
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <iostream>
#include <limits>
#include <memory>
#include <optional>
#include <queue>
#include <random>
#include <utility>
#include <vector>

#include <rategov/rategov.hpp>

#include <gtest/gtest.h>

namespace {

using namespace std::chrono_literals;

using rategov::acquire_status;
using rategov::amount;
using rategov::quota;
using rategov::traffic_class;
using manual_clock = rategov::testing::manual_clock;
using time_point = manual_clock::time_point;

constexpr traffic_class regular = traffic_class::regular;
constexpr traffic_class priority = traffic_class::priority;

time_point at(std::chrono::nanoseconds d) {
    return time_point(d);
}

// --- one metric --------------------------------------------------------------------------------

struct tok {};
using one = rategov::metrics<tok>;
using gov1_t = rategov::governor<one, manual_clock>;
using cost1 = gov1_t::cost_type;

cost1 n_of(std::uint64_t n) {
    return cost1{amount<tok>{n}};
}

// --- three metrics -----------------------------------------------------------------------------

// a: 10/s, burst 20; b: 100/s, burst 100; c: 1/s, burst 4.
struct tag_a {};
struct tag_b {};
struct tag_c {};
using abc = rategov::metrics<tag_a, tag_b, tag_c>;
using gov3_t = rategov::governor<abc, manual_clock>;
using cost3 = gov3_t::cost_type;
using avail_t = std::array<std::uint64_t, 3>;

const quota qa = rategov::per_second(10).with_burst(20);
const quota qb = rategov::per_second(100);
const quota qc = rategov::per_second(1).with_burst(4);

constexpr std::size_t ia = abc::index_of<tag_a>;
constexpr std::size_t ib = abc::index_of<tag_b>;
constexpr std::size_t ic = abc::index_of<tag_c>;

cost3 make(std::uint64_t a, std::uint64_t b, std::uint64_t c) {
    return cost3{amount<tag_a>{a}, amount<tag_b>{b}, amount<tag_c>{c}};
}

constexpr double step = 1.0 / 65536.0; // the resolution of a stored headroom

// =============================================================================================
// 1. set_priority_headroom / priority_headroom
// =============================================================================================

TEST(PriorityHeadroomSetting, DefaultsToZeroForEveryMetric) {
    manual_clock clock;
    gov3_t gov(clock, qa, qb, qc);
    for (std::size_t i = 0; i < abc::size; ++i)
        EXPECT_EQ(gov.priority_headroom(i), 0.0) << "metric " << i;
}

TEST(PriorityHeadroomSetting, SharesOutsideZeroToOneAreConfigErrorsAndChangeNothing) {
    manual_clock clock;
    gov3_t gov(clock, qa, qb, qc);
    gov.set_priority_headroom(0.25);
    const double bad[] = {-0.1,
                          1.0,
                          1.5,
                          -1e-300,
                          std::numeric_limits<double>::quiet_NaN(),
                          std::numeric_limits<double>::infinity(),
                          -std::numeric_limits<double>::infinity()};
    for (const double share : bad) {
        EXPECT_THROW(gov.set_priority_headroom(share), rategov::config_error) << share;
        EXPECT_THROW(gov.set_priority_headroom(ib, share), rategov::config_error) << share;
        EXPECT_THROW(gov.set_priority_headroom<tag_c>(share), rategov::config_error) << share;
        for (std::size_t i = 0; i < abc::size; ++i)
            EXPECT_EQ(gov.priority_headroom(i), 0.25) << "metric " << i << " after " << share;
    }
    // The message names the share (a config_error explains itself).
    try {
        gov.set_priority_headroom(1.0);
        ADD_FAILURE() << "no throw";
    } catch (const rategov::config_error& e) {
        EXPECT_NE(std::string(e.what()).find("set_priority_headroom"), std::string::npos)
            << e.what();
    }
}

TEST(PriorityHeadroomSetting, IndexOutOfRangeIsAConfigErrorAndReadsAsZero) {
    manual_clock clock;
    gov3_t gov(clock, qa, qb, qc);
    gov.set_priority_headroom(0.5);
    EXPECT_THROW(gov.set_priority_headroom(std::size_t{3}, 0.1), rategov::config_error);
    EXPECT_THROW(gov.set_priority_headroom(std::numeric_limits<std::size_t>::max(), 0.1),
                 rategov::config_error);
    EXPECT_EQ(gov.priority_headroom(3), 0.0);
    EXPECT_EQ(gov.priority_headroom(std::numeric_limits<std::size_t>::max()), 0.0);
    for (std::size_t i = 0; i < abc::size; ++i)
        EXPECT_EQ(gov.priority_headroom(i), 0.5) << "metric " << i;
}

TEST(PriorityHeadroomSetting, ReadsBackToOne65536th) {
    manual_clock clock;
    gov3_t gov(clock, qa, qb, qc);
    const double shares[] = {0.0,  -0.0,      1e-9, 0.1,      0.2,         0.25,
                             0.3,  1.0 / 3.0, 0.5,  0.9,      0.99999,     1.0 - 1e-12,
                             step, 3 * step,  0.75, 0.123456, 65535 * step};
    for (const double share : shares) {
        gov.set_priority_headroom(share);
        for (std::size_t i = 0; i < abc::size; ++i) {
            const double h = gov.priority_headroom(i);
            EXPECT_NEAR(h, share, step) << "metric " << i;
            EXPECT_GE(h, 0.0);
            EXPECT_LT(h, 1.0);
            // A whole number of 1/65536.
            EXPECT_EQ(h * 65536.0, std::floor(h * 65536.0)) << share;
        }
    }
    // Shares that are whole numbers of 1/65536 read back exactly.
    for (const double share : {0.25, 0.5, 0.75, step, 12345 * step, 65535 * step}) {
        gov.set_priority_headroom(ib, share);
        EXPECT_EQ(gov.priority_headroom(ib), share);
    }
}

TEST(PriorityHeadroomSetting, PerTagAndPerIndexOverloadsAffectOnlyThatMetric) {
    manual_clock clock;
    gov3_t gov(clock, qa, qb, qc);
    gov.set_priority_headroom<tag_b>(0.5);
    EXPECT_EQ(gov.priority_headroom(ia), 0.0);
    EXPECT_EQ(gov.priority_headroom(ib), 0.5);
    EXPECT_EQ(gov.priority_headroom(ic), 0.0);

    // Behaviour follows: regular traffic keeps a's and c's whole bursts, half of b's.
    EXPECT_TRUE(gov.try_acquire(make(20, 0, 4), regular));
    EXPECT_EQ(gov.try_acquire(make(0, 51, 0), regular).status, acquire_status::exceeds_capacity);
    EXPECT_TRUE(gov.try_acquire(make(0, 50, 0), regular));
    EXPECT_EQ(gov.availability(), (avail_t{0, 50, 0}));

    gov.set_priority_headroom(ic, 0.25);
    EXPECT_EQ(gov.priority_headroom(ia), 0.0);
    EXPECT_EQ(gov.priority_headroom(ib), 0.5);
    EXPECT_EQ(gov.priority_headroom(ic), 0.25);

    // The all-metric form overrides every metric.
    gov.set_priority_headroom(0.75);
    for (std::size_t i = 0; i < abc::size; ++i)
        EXPECT_EQ(gov.priority_headroom(i), 0.75) << "metric " << i;
    gov.set_priority_headroom<tag_a>(0.0);
    EXPECT_EQ(gov.priority_headroom(ia), 0.0);
    EXPECT_EQ(gov.priority_headroom(ib), 0.75);
    EXPECT_EQ(gov.priority_headroom(ic), 0.75);
}

TEST(PriorityHeadroomSetting, TakesEffectForTheNextRequest) {
    manual_clock clock;
    gov1_t gov(clock, rategov::per_second(10).with_burst(100));
    gov.set_priority_headroom(0.5);
    EXPECT_EQ(gov.try_acquire(n_of(60), regular).status, acquire_status::exceeds_capacity);
    gov.set_priority_headroom(0.25);
    EXPECT_TRUE(gov.try_acquire(n_of(60), regular));
    gov.set_priority_headroom(0.0);
    EXPECT_TRUE(gov.try_acquire(n_of(40), regular));
    EXPECT_EQ(gov.available<tok>(), 0u);
}

// =============================================================================================
// 2. Headroom semantics of try_acquire on one metric: burst 100, headroom 0.2
// =============================================================================================

const quota q100 = rategov::per_second(10).with_burst(100);

TEST(PriorityHeadroom, RegularTryAcquireStopsAtTheRegularPartAndPriorityTakesTheRest) {
    manual_clock clock;
    gov1_t gov(clock, q100);
    gov.set_priority_headroom(0.2);

    for (int k = 0; k < 80; ++k)
        ASSERT_TRUE(gov.try_acquire(n_of(1), regular)) << "regular token " << k + 1;
    EXPECT_EQ(gov.available<tok>(), 20u);

    const auto d = gov.try_acquire(n_of(1), regular);
    EXPECT_EQ(d.status, acquire_status::denied);
    EXPECT_EQ(d.metric, 0u);
    EXPECT_GT(d.ready_at, clock.now());
    EXPECT_LE(d.ready_at, at(100ms)); // one more token accrued leaves 20 for priority
    EXPECT_EQ(gov.available<tok>(), 20u) << "a denial takes nothing";

    // Priority may still take the remaining 20, one by one, and no more.
    for (int k = 0; k < 20; ++k)
        ASSERT_TRUE(gov.try_acquire(n_of(1), priority)) << "priority token " << k + 1;
    EXPECT_EQ(gov.available<tok>(), 0u);
    EXPECT_FALSE(gov.try_acquire(n_of(1), priority));
    EXPECT_FALSE(gov.try_acquire(n_of(1))); // the default is priority

    // Regular now needs 21 tokens accrued (its 1 plus the 20 kept): about 2.1 s.
    const auto late = gov.try_acquire(n_of(1), regular);
    ASSERT_EQ(late.status, acquire_status::denied);
    EXPECT_GE(late.ready_at, at(2s));
    EXPECT_LE(late.ready_at, at(2100ms));
    clock.set(late.ready_at - 1ns);
    EXPECT_FALSE(gov.try_acquire(n_of(1), regular));
    clock.set(late.ready_at);
    EXPECT_TRUE(gov.try_acquire(n_of(1), regular)) << "ready_at was exact";
    EXPECT_GE(gov.available<tok>(), 19u); // 20 kept, but fewer than 20 whole tokens
}

TEST(PriorityHeadroom, RegularTakesEightyAtOnceButNotEightyOne) {
    {
        manual_clock clock;
        gov1_t gov(clock, q100);
        gov.set_priority_headroom(0.2);
        EXPECT_TRUE(gov.try_acquire(n_of(80), regular));
        EXPECT_EQ(gov.available<tok>(), 20u);
        EXPECT_TRUE(gov.try_acquire(n_of(20), priority));
    }
    {
        manual_clock clock;
        gov1_t gov(clock, q100);
        gov.set_priority_headroom(0.2);
        const auto r = gov.try_acquire(n_of(81), regular);
        EXPECT_EQ(r.status, acquire_status::exceeds_capacity);
        EXPECT_EQ(r.ready_at, time_point::max());
        EXPECT_EQ(r.metric, 0u);
        EXPECT_EQ(gov.available<tok>(), 100u);
        // Priority may take 81, and even the whole burst.
        EXPECT_TRUE(gov.try_acquire(n_of(81), priority));
        EXPECT_EQ(gov.available<tok>(), 19u);
    }
    {
        manual_clock clock;
        gov1_t gov(clock, q100);
        gov.set_priority_headroom(0.2);
        EXPECT_EQ(gov.try_acquire(n_of(101), regular).status, acquire_status::exceeds_capacity);
        EXPECT_EQ(gov.try_acquire(n_of(101), priority).status, acquire_status::exceeds_capacity);
        EXPECT_TRUE(gov.try_acquire(n_of(100), priority));
    }
}

TEST(PriorityHeadroom, ExceedsCapacityOfTheRegularPartAlsoOnAnEmptyBucket) {
    // Exceeding the regular part is decided before availability: waiting would not help.
    manual_clock clock;
    gov1_t gov(clock, q100);
    gov.set_priority_headroom(0.2);
    ASSERT_TRUE(gov.try_acquire(n_of(100)));
    EXPECT_EQ(gov.try_acquire(n_of(81), regular).status, acquire_status::exceeds_capacity);
    EXPECT_EQ(gov.try_acquire(n_of(81), priority).status, acquire_status::denied);
    auto r = gov.reserve(n_of(81), 1h, regular);
    EXPECT_EQ(r.status(), acquire_status::exceeds_capacity);
    EXPECT_FALSE(r.pending());
    EXPECT_EQ(gov.debts()[0], 0u);
}

TEST(PriorityHeadroom, WithZeroHeadroomRegularAndPriorityTryAcquireBehaveIdentically) {
    // Two twin governors fed the same requests and the same time steps, one as regular, one as
    // priority traffic: every decision is the same. The first governor had a headroom that
    // was set back to 0.
    manual_clock clock;
    gov1_t as_regular(clock, q100);
    gov1_t as_priority(clock, q100);
    as_regular.set_priority_headroom(0.4);
    as_regular.set_priority_headroom(0.0);
    std::mt19937_64 rng(7);
    std::uint64_t grants = 0, denials = 0;
    for (int k = 0; k < 5'000; ++k) {
        const std::uint64_t n = 1 + rng() % 30;
        const auto r = as_regular.try_acquire(n_of(n), regular);
        const auto p = as_priority.try_acquire(n_of(n), priority);
        ASSERT_EQ(r.status, p.status) << "request " << k;
        ASSERT_EQ(r.ready_at, p.ready_at) << "request " << k;
        ASSERT_EQ(r.metric, p.metric) << "request " << k;
        ASSERT_EQ(as_regular.available<tok>(), as_priority.available<tok>()) << "request " << k;
        (r ? grants : denials) += 1;
        clock.advance(std::chrono::nanoseconds(rng() % 300'000'000));
    }
    EXPECT_GT(grants, 100u);
    EXPECT_GT(denials, 100u);
}

TEST(PriorityHeadroom, ReadyAtOfARegularDenialIsExact) {
    // Wherever the bucket stands, a regular denial's ready_at is the first instant at which
    // the same request is granted.
    manual_clock clock;
    gov1_t gov(clock, q100);
    gov.set_priority_headroom(0.2);
    std::mt19937_64 rng(11);
    int checked = 0;
    for (int k = 0; k < 2'000; ++k) {
        const std::uint64_t n = 1 + rng() % 80;
        if (rng() % 2 == 0)
            (void)gov.try_acquire(n_of(1 + rng() % 40), priority);
        const auto r = gov.try_acquire(n_of(n), regular);
        if (r.status == acquire_status::denied) {
            ASSERT_GT(r.ready_at, clock.now());
            clock.set(r.ready_at - 1ns);
            ASSERT_FALSE(gov.try_acquire(n_of(n), regular)) << "request " << k;
            clock.set(r.ready_at);
            ASSERT_TRUE(gov.try_acquire(n_of(n), regular)) << "request " << k;
            ++checked;
        }
        clock.advance(std::chrono::nanoseconds(rng() % 2'000'000'000));
    }
    EXPECT_GT(checked, 100);
}

TEST(PriorityHeadroom, RegularPartIsAtLeastBurstMinusTheHeadroomAsGiven) {
    // "A regular part larger than burst − headroom is exceeds_capacity": a part of exactly
    // burst·(1 − share) tokens is not larger, and must be grantable from a full bucket — for
    // shares given as decimals, which are rarely whole numbers of 1/65536.
    struct row {
        std::uint64_t burst;
        double share;
        std::uint64_t part; // burst · (1 − share), a whole number
    };
    const row rows[] = {{10, 0.3, 7},     {10, 0.1, 9},   {10, 0.7, 3},
                        {100, 0.3, 70},   {100, 0.2, 80}, {100, 0.01, 99},
                        {1000, 0.3, 700}, {20, 0.35, 13}, {50, 0.22, 39}};
    for (const row& x : rows) {
        manual_clock clock;
        gov1_t gov(clock, rategov::per_second(10).with_burst(x.burst));
        gov.set_priority_headroom(x.share);
        const auto r = gov.try_acquire(n_of(x.part), regular);
        EXPECT_TRUE(r) << "burst " << x.burst << ", headroom " << x.share << ": a regular "
                       << x.part << " is "
                       << (r.status == acquire_status::exceeds_capacity ? "exceeds_capacity"
                                                                        : "denied")
                       << " (headroom stored as " << gov.priority_headroom(0) * 65536.0
                       << "/65536)";
        auto rr = gov.reserve(n_of(x.part), 1h, regular);
        EXPECT_NE(rr.status(), acquire_status::exceeds_capacity)
            << "reserve: burst " << x.burst << ", headroom " << x.share;
        rr.cancel();
    }
}

// =============================================================================================
// 3. Admission of regular reservations: burst 100, rate 10/s, headroom 0.25 (exact)
// =============================================================================================

TEST(PriorityAdmission, RegularReserveIsRefusedUntilThePriorityQueueIsWithinTheRegularPart) {
    manual_clock clock;
    gov1_t gov(clock, q100);
    gov.set_priority_headroom(0.25); // regular part: 75 tokens

    // Priority queues three bursts: ready at 0, 10 s and 20 s.
    std::vector<gov1_t::reservation_type> queued;
    for (int k = 0; k < 3; ++k) {
        queued.push_back(gov.reserve(n_of(100), 60s, priority));
        ASSERT_TRUE(queued.back()) << k;
        EXPECT_EQ(queued.back().ready_at(), at(std::chrono::seconds(10 * k)));
    }
    ASSERT_EQ(gov.debts()[0], 200u);

    // The queue reaches 300 tokens ahead; it is within the regular part (75 beyond what has
    // accrued) once 225 have accrued: at 22.5 s.
    for (const auto max_wait : {std::chrono::nanoseconds(60s), std::chrono::nanoseconds::max(),
                                std::chrono::nanoseconds(0)}) {
        auto r = gov.reserve(n_of(10), max_wait, regular);
        EXPECT_EQ(r.status(), acquire_status::denied);
        EXPECT_FALSE(r.pending());
        EXPECT_EQ(r.metric(), 0u);
        EXPECT_EQ(r.ready_at(), at(22500ms));
        EXPECT_EQ(gov.debts()[0], 200u) << "a refused reservation takes nothing";
        EXPECT_EQ(gov.available<tok>(), 0u);
    }

    clock.set(at(22500ms) - 1ns);
    {
        auto r = gov.reserve(n_of(10), 60s, regular);
        EXPECT_EQ(r.status(), acquire_status::denied);
        EXPECT_EQ(r.ready_at(), at(22500ms));
    }

    // Asking again at that time succeeds; the tokens are ready once 25 remain after them.
    clock.set(at(22500ms));
    auto first = gov.reserve(n_of(10), 60s, regular);
    ASSERT_TRUE(first);
    EXPECT_EQ(first.ready_at(), at(23500ms));

    // A second regular request right behind it is refused: at most one regular request's
    // worth is queued beyond the regular part. Ask again when the first is ready.
    {
        auto second = gov.reserve(n_of(10), 60s, regular);
        EXPECT_EQ(second.status(), acquire_status::denied);
        EXPECT_FALSE(second.pending());
        EXPECT_EQ(second.ready_at(), first.ready_at());
    }
    {
        auto small = gov.reserve(n_of(1), 60s, regular); // any size
        EXPECT_EQ(small.status(), acquire_status::denied);
        EXPECT_EQ(small.ready_at(), first.ready_at());
    }

    // Priority still queues: it waits at most (largest regular + its own − headroom) / rate
    // = (10 + 30 − 25) / 10 per s = 1.5 s.
    auto urgent = gov.reserve(n_of(30), 60s, priority);
    ASSERT_TRUE(urgent);
    EXPECT_EQ(urgent.ready_at(), at(24s));

    // At 23.5 s, the regular request told to come back then finds priority ahead again.
    first.wait();
    EXPECT_EQ(clock.now(), at(23500ms));
    {
        auto second = gov.reserve(n_of(10), 60s, regular);
        EXPECT_EQ(second.status(), acquire_status::denied);
        EXPECT_EQ(second.ready_at(), at(26500ms)); // 340 queued − 75 = 265 accrued
    }
    first.commit(n_of(10));
    urgent.commit(n_of(30));
    for (auto& r : queued)
        r.commit(n_of(100));
    clock.set(at(26500ms));
    auto second = gov.reserve(n_of(10), 60s, regular);
    ASSERT_TRUE(second);
    EXPECT_EQ(second.ready_at(), at(27500ms));
    second.commit(n_of(10));
}

TEST(PriorityAdmission, RegularReserveIsReadyNowWithinTheRegularPart) {
    manual_clock clock(at(3s));
    gov1_t gov(clock, q100);
    gov.set_priority_headroom(0.25);
    EXPECT_EQ(gov.reserve(n_of(76), 1h, regular).status(), acquire_status::exceeds_capacity);

    auto all = gov.reserve(n_of(75), 1h, regular);
    ASSERT_TRUE(all);
    EXPECT_EQ(all.ready_at(), at(3s));
    EXPECT_EQ(gov.available<tok>(), 25u);

    // Exactly at the edge of the regular part: admitted, ready once one more token accrued.
    auto next = gov.reserve(n_of(1), 1h, regular);
    ASSERT_TRUE(next);
    EXPECT_EQ(next.ready_at(), at(3100ms));
    // Now one request is beyond the regular part: the next regular waits for it.
    auto third = gov.reserve(n_of(1), 1h, regular);
    EXPECT_EQ(third.status(), acquire_status::denied);
    EXPECT_EQ(third.ready_at(), at(3100ms));
    // Priority takes the headroom now.
    EXPECT_TRUE(gov.try_acquire(n_of(24), priority));
    all.commit(n_of(75));
    next.commit(n_of(1));
}

TEST(PriorityAdmission, RegularReserveBeyondMaxWaitIsRefusedWithItsReadyTime) {
    manual_clock clock;
    gov1_t gov(clock, q100);
    gov.set_priority_headroom(0.25);
    ASSERT_TRUE(gov.try_acquire(n_of(60), regular)); // 40 left, 15 of them regular
    auto r = gov.reserve(n_of(30), 1s, regular);     // needs 15 more: 1.5 s
    EXPECT_EQ(r.status(), acquire_status::denied);
    EXPECT_EQ(r.ready_at(), at(1500ms));
    EXPECT_EQ(gov.available<tok>(), 40u);
    auto ok = gov.reserve(n_of(30), 1500ms, regular);
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok.ready_at(), at(1500ms));
    ok.wait();
    EXPECT_EQ(gov.available<tok>(), 25u);
    ok.commit(n_of(30));
}

TEST(PriorityAdmission, PriorityReservationsQueueWithoutBoundAheadOfRegular) {
    manual_clock clock;
    gov1_t gov(clock, q100);
    gov.set_priority_headroom(0.5);
    std::vector<gov1_t::reservation_type> held;
    for (int k = 0; k < 20; ++k) {
        held.push_back(gov.reserve(n_of(100), std::chrono::hours(1), priority));
        ASSERT_TRUE(held.back()) << k;
        EXPECT_EQ(held.back().ready_at(), at(std::chrono::seconds(10 * k)));
    }
    auto r = gov.reserve(n_of(1), std::chrono::hours(1), regular);
    EXPECT_EQ(r.status(), acquire_status::denied);
    EXPECT_EQ(r.ready_at(), at(195s)); // 2000 queued − 50
    // try_acquire of regular traffic is refused too, with the same horizon and its own size.
    const auto t = gov.try_acquire(n_of(1), regular);
    EXPECT_EQ(t.status, acquire_status::denied);
    EXPECT_EQ(t.ready_at, at(195100ms));
    for (auto& h : held)
        h.cancel();
}

TEST(PriorityAdmission, WithZeroHeadroomARegularReserveStillWaitsForTheQueueToEnd) {
    // The regular part is then the whole burst: regular traffic joins only when nothing is
    // queued beyond a full bucket — that is, only behind reservations that are ready now.
    manual_clock clock;
    gov1_t gov(clock, q100);
    auto a = gov.reserve(n_of(100), 1h, priority);
    auto b = gov.reserve(n_of(50), 1h, priority);
    ASSERT_TRUE(a && b);
    EXPECT_EQ(b.ready_at(), at(5s));
    auto r = gov.reserve(n_of(1), 1h, regular);
    EXPECT_EQ(r.status(), acquire_status::denied);
    EXPECT_EQ(r.ready_at(), at(5s));
    auto p = gov.reserve(n_of(1), 1h, priority);
    ASSERT_TRUE(p);
    EXPECT_EQ(p.ready_at(), at(5100ms));
    clock.set(at(5100ms));
    auto r2 = gov.reserve(n_of(1), 1h, regular);
    ASSERT_TRUE(r2);
    EXPECT_EQ(r2.ready_at(), at(5200ms));
}

TEST(PriorityAdmission, CallMachineDefaultsToRegularAndWaitsForAdmission) {
    manual_clock clock;
    gov1_t gov(clock, q100);
    gov.set_priority_headroom(0.25);
    auto ahead = gov.reserve(n_of(100), 1h, priority);
    auto ahead2 = gov.reserve(n_of(100), 1h, priority);
    ASSERT_TRUE(ahead && ahead2);

    using machine_t = rategov::call_machine<gov1_t>;
    rategov::call_options<gov1_t> opt;
    opt.seed = 1;
    EXPECT_EQ(opt.priority, regular);
    machine_t reg(gov, n_of(10), opt);
    auto s = reg.next();
    EXPECT_EQ(s.what, machine_t::action::wait);
    EXPECT_EQ(s.until, at(12500ms)); // 200 queued − 75
    EXPECT_EQ(gov.debts()[0], 100u) << "nothing taken for the waiting regular call";

    opt.priority = priority;
    machine_t pri(gov, n_of(10), opt);
    auto sp = pri.next();
    EXPECT_EQ(sp.what, machine_t::action::wait);
    EXPECT_EQ(sp.until, at(11s)); // queued behind the two priority bursts
    EXPECT_EQ(gov.debts()[0], 110u);

    clock.set(sp.until);
    EXPECT_EQ(pri.next().what, machine_t::action::send);
    rategov::response<one> ok;
    ok.status = 200;
    ok.usage = n_of(10);
    pri.on_response(ok);
    EXPECT_EQ(pri.next().what, machine_t::action::done);
    EXPECT_EQ(pri.result().status, rategov::call_status::success);
    EXPECT_EQ(pri.result().waited, 11s);

    // The regular call, told 12.5 s, finds the priority call's 10 tokens ahead: 210 queued,
    // within the regular part once 135 have accrued (13.5 s); then it is admitted, ready when
    // 75 remain queued beyond the accrual: at 14.5 s.
    clock.set(s.until);
    s = reg.next();
    EXPECT_EQ(s.what, machine_t::action::wait);
    EXPECT_EQ(s.until, at(13500ms));
    EXPECT_EQ(gov.available<tok>(), 15u) << "nothing taken: 210 queued, 125 accrued";
    clock.set(s.until);
    s = reg.next();
    EXPECT_EQ(s.what, machine_t::action::wait);
    EXPECT_EQ(s.until, at(14500ms));
    EXPECT_EQ(gov.available<tok>(), 15u) << "taken: 220 queued, 135 accrued";
    clock.set(s.until);
    EXPECT_EQ(reg.next().what, machine_t::action::send);
    reg.on_response(ok);
    EXPECT_EQ(reg.next().what, machine_t::action::done);
    EXPECT_EQ(reg.result().waited, 14500ms);
    ahead.commit(n_of(100));
    ahead2.commit(n_of(100));
}

// =============================================================================================
// 4. Without priority traffic, regular traffic gets the full rate
// =============================================================================================

struct full_rate_outcome {
    std::uint64_t tokens = 0; // ready within the span
    std::uint64_t requests = 0, refusals = 0;
};

/// A single regular client over `span` of virtual time: reserve, wait as told, commit, repeat.
full_rate_outcome regular_alone(gov1_t& gov, manual_clock& clock, std::chrono::seconds span,
                                std::uint64_t min_cost, std::uint64_t max_cost,
                                std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    full_rate_outcome out;
    const time_point end = clock.now() + span;
    while (clock.now() < end) {
        const std::uint64_t n = min_cost + rng() % (max_cost - min_cost + 1);
        auto r = gov.reserve(n_of(n), std::chrono::nanoseconds::max(), regular);
        ++out.requests;
        if (!r) {
            EXPECT_EQ(r.status(), acquire_status::denied);
            if (r.status() != acquire_status::denied || r.ready_at() <= clock.now()) {
                ADD_FAILURE() << "no progress at " << clock.now().time_since_epoch().count();
                break;
            }
            ++out.refusals;
            rategov::sleep_until(clock, r.ready_at());
            continue;
        }
        r.wait();
        if (r.ready_at() <= end)
            out.tokens += n;
        r.commit(n_of(n));
    }
    return out;
}

TEST(PriorityFullRate, RegularTrafficAloneGetsTheFullRateThroughReserve) {
    constexpr std::uint64_t rate = 10, burst = 10;
    constexpr auto span = 1000s;
    const std::uint64_t ideal = rate * static_cast<std::uint64_t>(span.count()) + burst;
    struct variant {
        std::uint64_t lo, hi;
    };
    for (const variant v : {variant{1, 1}, variant{1, 6}, variant{6, 6}, variant{3, 5}}) {
        manual_clock clock;
        gov1_t gov(clock, rategov::per_second(rate).with_burst(burst));
        gov.set_priority_headroom(0.3);
        const auto out = regular_alone(gov, clock, span, v.lo, v.hi, 99);
        EXPECT_GE(static_cast<double>(out.tokens), 0.99 * static_cast<double>(ideal))
            << "costs " << v.lo << ".." << v.hi << ": " << out.tokens << " tokens in "
            << span.count() << " s, " << out.requests << " requests, " << out.refusals
            << " refusals";
        EXPECT_LE(out.tokens, ideal) << "costs " << v.lo << ".." << v.hi;
    }
}

TEST(PriorityFullRate, RegularTrafficAloneGetsTheFullRateThroughCall) {
    constexpr std::uint64_t rate = 10, burst = 10;
    constexpr auto span = 1000s;
    manual_clock clock;
    gov1_t gov(clock, rategov::per_second(rate).with_burst(burst));
    gov.set_priority_headroom(0.3);
    std::uint64_t sent = 0;
    std::mt19937_64 rng(5);
    const time_point end = at(span);
    std::uint64_t tokens = 0, calls = 0;
    while (clock.now() < end) {
        const std::uint64_t n = 1 + rng() % 6;
        auto transport = [&](const int&) {
            ++sent;
            rategov::response<one> r;
            r.status = 200;
            r.usage = n_of(n);
            return r;
        };
        rategov::call_options<gov1_t> opt; // regular by default
        opt.seed = 1 + calls;
        const auto res = rategov::call(gov, 0, n_of(n), transport, opt);
        ++calls;
        ASSERT_TRUE(res) << "call " << calls;
        if (clock.now() <= end)
            tokens += n;
    }
    const std::uint64_t ideal = rate * static_cast<std::uint64_t>(span.count()) + burst;
    EXPECT_EQ(sent, calls);
    EXPECT_GE(static_cast<double>(tokens), 0.99 * static_cast<double>(ideal))
        << tokens << " tokens over " << calls << " calls";
    EXPECT_LE(tokens, ideal);
}

// =============================================================================================
// 5. Priority goes first and is never starved: a discrete-event simulation in virtual time
// =============================================================================================

// With no headroom a priority request waits up to (5 + 5) / 100 per s = 100 ms (one regular
// request ahead, then its own tokens), while a regular client waits about a round of the
// others: 40 clients × 3 tokens / 90 per s ≈ 1.3 s. (With 20 clients the regular p99 is
// about 0.9 s: not ten times the priority p99 at headroom 0, by the design's own bound.)
struct sim_params {
    double headroom = 0.0;
    unsigned regular_clients = 40;
    std::uint64_t rate = 100;  // tokens per second
    std::uint64_t burst = 100; // tokens
    std::uint64_t max_regular_cost = 5;
    std::uint64_t max_priority_cost = 5;
    double priority_share = 0.1; // of the rate
    std::chrono::seconds span = 2000s;
    std::uint64_t seed = 0x5EED;
    bool use_call_machine = false;
};

struct sim_stats {
    std::vector<std::int64_t> priority_waits, regular_waits; // ns
    std::uint64_t priority_asked = 0, priority_granted = 0;
    std::uint64_t priority_pending = 0; // call machines still waiting at the end
    std::uint64_t regular_refusals = 0;
    std::uint64_t tokens = 0; // ready within the span
    std::uint64_t errors = 0; // exceeds_capacity, no progress, a priority refusal
};

/// The 99th percentile (nearest rank).
std::int64_t p99(std::vector<std::int64_t> v) {
    if (v.empty())
        return 0;
    std::sort(v.begin(), v.end());
    const std::size_t rank = (v.size() * 99 + 99) / 100; // ceil(0.99 n)
    return v[rank - 1];
}

std::int64_t max_of(const std::vector<std::int64_t>& v) {
    return v.empty() ? 0 : *std::max_element(v.begin(), v.end());
}

double ms(std::int64_t ns) {
    return static_cast<double>(ns) / 1e6;
}

/// Uniform in [0, 1) from 53 bits, the same with every standard library.
double unit(std::mt19937_64& rng) {
    return static_cast<double>(rng() >> 11) * (1.0 / 9007199254740992.0);
}

/// Regular clients ask again as soon as allowed (after each grant, at its ready time; after
/// each refusal, at the time it names); priority requests arrive as a Poisson stream. One
/// thread, events in time order (ties in the order they were scheduled), the clock set to
/// each event's time. With `use_call_machine`, every request is a `call_machine` (regular
/// or priority by its options) driven by the events, each send answered at once with a 200.
sim_stats simulate(const sim_params& p) {
    manual_clock clock;
    gov1_t gov(clock, rategov::per_second(p.rate).with_burst(p.burst));
    gov.set_priority_headroom(p.headroom);
    std::mt19937_64 rng(p.seed);
    const time_point end = at(p.span);
    sim_stats st;

    // Who an event is for: the priority stream (a new arrival), or a request by its id.
    constexpr std::uint64_t priority_stream = std::numeric_limits<std::uint64_t>::max();
    struct event {
        time_point t;
        std::uint64_t seq;
        std::uint64_t who;
    };
    auto later = [](const event& x, const event& y) {
        return x.t != y.t ? x.t > y.t : x.seq > y.seq;
    };
    std::priority_queue<event, std::vector<event>, decltype(later)> events(later);
    std::uint64_t seq = 0;
    auto schedule = [&](time_point t, std::uint64_t who) { events.push({t, seq++, who}); };

    // The priority stream: mean cost (1 + max) / 2; arrivals at share · rate / mean cost.
    const double mean_cost = static_cast<double>(1 + p.max_priority_cost) / 2.0;
    const double arrivals_per_s = p.priority_share * static_cast<double>(p.rate) / mean_cost;
    auto next_arrival = [&](time_point from) {
        const double gap_s = -std::log1p(-unit(rng)) / arrivals_per_s;
        return from + std::chrono::nanoseconds(static_cast<std::int64_t>(gap_s * 1e9));
    };

    using machine_t = rategov::call_machine<gov1_t>;
    struct request {
        traffic_class who;
        time_point arrival;
        std::uint64_t cost;
        std::unique_ptr<machine_t> machine; // with use_call_machine
        bool sending = false;               // direct: granted, to be sent at the event
    };
    // Ids 0 .. regular_clients − 1: the regular clients' current requests; then priority
    // requests (only call machines wait as requests of their own).
    std::vector<request> requests;
    requests.reserve(p.regular_clients);
    std::uint64_t call_seed = 1;
    rategov::response<one> ok;
    ok.status = 200;

    auto begin_request = [&](request& q, traffic_class who, time_point t, std::uint64_t cost) {
        q.who = who;
        q.arrival = t;
        q.cost = cost;
        if (p.use_call_machine) {
            rategov::call_options<gov1_t> opt;
            opt.priority = who;
            opt.seed = call_seed++;
            opt.max_attempts = 1;
            q.machine.reset(); // done: holds nothing
            q.machine = std::make_unique<machine_t>(gov, n_of(cost), opt);
        }
    };
    auto record = [&](const request& q, time_point sent) {
        const std::int64_t wait = (sent - q.arrival).count();
        if (q.who == priority) {
            ++st.priority_granted;
            st.priority_waits.push_back(wait);
        } else {
            st.regular_waits.push_back(wait);
        }
        if (sent <= end)
            st.tokens += q.cost;
    };

    /// Moves request q on at the current time: either it is to be asked again at `t`
    /// (`sent` false), or it has been sent, or will be at `t` (a reservation's ready time),
    /// and is recorded.
    struct progress {
        bool sent;
        time_point t;
    };
    auto step_request = [&](request& q) -> progress {
        const time_point now = clock.now();
        if (p.use_call_machine) {
            for (;;) {
                const auto s = q.machine->next();
                if (s.what == machine_t::action::wait) {
                    if (s.until <= now)
                        ++st.errors; // no progress
                    return {false, s.until};
                }
                if (s.what == machine_t::action::done) {
                    const auto& res = q.machine->result();
                    if (res.status != rategov::call_status::success ||
                        res.waited != now - q.arrival)
                        ++st.errors;
                    record(q, now);
                    return {true, now};
                }
                ok.usage = n_of(q.cost);
                q.machine->on_response(ok);
            }
        }
        auto r = gov.reserve(n_of(q.cost), std::chrono::nanoseconds::max(), q.who);
        if (!r) {
            if (r.status() != acquire_status::denied || r.ready_at() <= now || q.who == priority)
                ++st.errors;
            ++st.regular_refusals;
            return {false, r.ready_at()};
        }
        record(q, r.ready_at());
        r.commit(n_of(q.cost));
        return {true, r.ready_at()};
    };

    for (std::uint64_t k = 0; k < p.regular_clients; ++k) {
        requests.emplace_back();
        begin_request(requests.back(), regular, at(0ns), 1 + rng() % p.max_regular_cost);
        schedule(at(0ns), k);
    }
    schedule(next_arrival(at(0ns)), priority_stream);
    std::vector<std::uint64_t> free_ids; // finished priority requests, for reuse

    while (!events.empty() && st.errors == 0) {
        const event ev = events.top();
        events.pop();
        if (ev.t >= end)
            break;
        if (ev.t > clock.now())
            clock.set(ev.t);

        std::uint64_t id = ev.who;
        if (ev.who == priority_stream) {
            ++st.priority_asked;
            if (free_ids.empty()) {
                id = requests.size();
                requests.emplace_back();
            } else {
                id = free_ids.back();
                free_ids.pop_back();
            }
            begin_request(requests[id], priority, ev.t, 1 + rng() % p.max_priority_cost);
            schedule(next_arrival(ev.t), priority_stream);
        }
        request& q = requests[id];
        if (q.sending) {
            // A regular client whose request is sent now asks again at once (behind the
            // clients already waiting for this instant, as a call machine would).
            q.sending = false;
            begin_request(q, regular, ev.t, 1 + rng() % p.max_regular_cost);
            schedule(ev.t, id);
            continue;
        }
        const progress pr = step_request(q);
        if (!pr.sent) {
            schedule(pr.t, id);
        } else if (q.who == regular) {
            if (p.use_call_machine) {
                begin_request(q, regular, pr.t, 1 + rng() % p.max_regular_cost);
            } else {
                q.sending = true; // sent at its ready time
            }
            schedule(pr.t, id);
        } else {
            free_ids.push_back(id);
        }
    }
    st.priority_pending = requests.size() - p.regular_clients - free_ids.size();
    return st;
}

class PrioritySimulation : public ::testing::TestWithParam<std::pair<double, bool>> {};

TEST_P(PrioritySimulation, PriorityGoesFirstAndIsNeverStarved) {
    sim_params p;
    p.headroom = GetParam().first;
    p.use_call_machine = GetParam().second;
    const sim_stats st = simulate(p);

    const std::int64_t pri99 = p99(st.priority_waits), reg99 = p99(st.regular_waits);
    const double limit = static_cast<double>(p.rate) * static_cast<double>(p.span.count());
    const double throughput = static_cast<double>(st.tokens) / limit;
    std::cout << "[ sim      ] " << p.regular_clients << " regular clients, headroom " << p.headroom
              << (p.use_call_machine ? " (call_machine)" : " (reserve)") << ": priority p99 "
              << ms(pri99) << " ms (max " << ms(max_of(st.priority_waits)) << " ms, "
              << st.priority_waits.size() << " requests), regular p99 " << ms(reg99) << " ms (max "
              << ms(max_of(st.regular_waits)) << " ms, " << st.regular_waits.size() << " requests";
    if (!p.use_call_machine)
        std::cout << ", " << st.regular_refusals << " refusals";
    std::cout << "), tokens " << throughput * 100.0 << " % of rate × span (the burst on top)\n";
    RecordProperty("priority_p99_ms", std::to_string(ms(pri99)));
    RecordProperty("regular_p99_ms", std::to_string(ms(reg99)));

    EXPECT_EQ(st.errors, 0u);
    ASSERT_GT(st.priority_asked, 1'000u);
    ASSERT_GT(st.regular_waits.size(), 10'000u);
    EXPECT_EQ(st.priority_granted + st.priority_pending, st.priority_asked)
        << "every priority request is granted";
    EXPECT_LE(st.priority_pending, 3u);
    EXPECT_GT(reg99, 0) << "regular traffic never waited: the clients do not saturate";
    EXPECT_LE(pri99 * 10, reg99) << "priority p99 " << ms(pri99) << " ms, regular p99 " << ms(reg99)
                                 << " ms";
    EXPECT_GE(throughput, 0.95);
    EXPECT_LE(st.tokens, p.burst + static_cast<std::uint64_t>(limit));
    // A priority request waits for at most one regular request and the priority requests
    // ahead of it; with arrivals at 10 % of the rate, a burst of those is rare: a generous
    // bound on the worst case, far below the regular p99.
    EXPECT_LT(max_of(st.priority_waits), reg99) << "max priority wait";
    // The documented bound, (largest regular + its own − headroom) / rate, plus one more
    // priority request's worth for the (rare) priority requests ahead.
    const double kept = p.headroom * static_cast<double>(p.burst);
    const double tokens_ahead =
        std::max(0.0, static_cast<double>(p.max_regular_cost + p.max_priority_cost) - kept) +
        static_cast<double>(p.max_priority_cost);
    EXPECT_LE(static_cast<double>(pri99), tokens_ahead / static_cast<double>(p.rate) * 1e9)
        << "priority p99 " << ms(pri99) << " ms";
}

std::string sim_name(const ::testing::TestParamInfo<std::pair<double, bool>>& param_info) {
    return std::string(param_info.param.first == 0.0 ? "Zero" : "Tenth") +
           (param_info.param.second ? "CallMachine" : "Reserve");
}

INSTANTIATE_TEST_SUITE_P(Headroom, PrioritySimulation,
                         ::testing::Values(std::pair{0.0, false}, std::pair{0.1, false},
                                           std::pair{0.0, true}, std::pair{0.1, true}),
                         sim_name);

// =============================================================================================
// 6. Several metrics: the headroom applies per metric, all-or-nothing
// =============================================================================================

TEST(PriorityMultiMetric, RegularDeniedByOneMetricsHeadroomTakesNothingOnTheOthers) {
    manual_clock clock;
    gov3_t gov(clock, qa, qb, qc);
    gov.set_priority_headroom<tag_b>(0.5); // b: 50 for regular traffic
    ASSERT_TRUE(gov.try_acquire(make(0, 40, 0), priority));
    ASSERT_EQ(gov.availability(), (avail_t{20, 60, 4}));

    // a (before b) and c (after b) could grant; b would be left with 40 < 50.
    const auto d = gov.try_acquire(make(5, 20, 1), regular);
    EXPECT_EQ(d.status, acquire_status::denied);
    EXPECT_EQ(d.metric, ib);
    EXPECT_EQ(gov.availability(), (avail_t{20, 60, 4}));
    EXPECT_EQ(gov.debts(), (avail_t{0, 0, 0}));
    // b needs 10 more tokens: 100 ms.
    EXPECT_EQ(d.ready_at, at(100ms));

    // The same request as priority traffic is granted.
    {
        manual_clock clock2;
        gov3_t twin(clock2, qa, qb, qc);
        twin.set_priority_headroom<tag_b>(0.5);
        ASSERT_TRUE(twin.try_acquire(make(0, 40, 0), priority));
        EXPECT_TRUE(twin.try_acquire(make(5, 20, 1), priority));
        EXPECT_EQ(twin.availability(), (avail_t{15, 40, 3}));
    }

    clock.set(d.ready_at - 1ns);
    const auto early = gov.try_acquire(make(5, 20, 1), regular);
    EXPECT_EQ(early.status, acquire_status::denied);
    EXPECT_EQ(early.metric, ib);
    EXPECT_EQ(gov.availability(), (avail_t{20, 69, 4}));
    clock.set(d.ready_at);
    EXPECT_TRUE(gov.try_acquire(make(5, 20, 1), regular));
    EXPECT_EQ(gov.availability(), (avail_t{15, 50, 3}));
}

TEST(PriorityMultiMetric, RegularPartExceededOnOneMetricTakesNothingAndNamesIt) {
    manual_clock clock;
    gov3_t gov(clock, qa, qb, qc);
    gov.set_priority_headroom<tag_b>(0.5);
    const auto r = gov.try_acquire(make(5, 51, 1), regular);
    EXPECT_EQ(r.status, acquire_status::exceeds_capacity);
    EXPECT_EQ(r.metric, ib);
    EXPECT_EQ(gov.availability(), (avail_t{20, 100, 4}));
    auto rr = gov.reserve(make(5, 51, 1), 1h, regular);
    EXPECT_EQ(rr.status(), acquire_status::exceeds_capacity);
    EXPECT_EQ(rr.metric(), ib);
    EXPECT_EQ(gov.availability(), (avail_t{20, 100, 4}));
    EXPECT_TRUE(gov.try_acquire(make(5, 51, 1), priority));

    // Exceeding the regular part on a later metric wins over an earlier metric's denial.
    gov.set_priority_headroom<tag_c>(0.5);                  // c: 2 for regular traffic
    ASSERT_TRUE(gov.try_acquire(make(15, 0, 0), priority)); // a empty
    const auto e = gov.try_acquire(make(1, 0, 3), regular);
    EXPECT_EQ(e.status, acquire_status::exceeds_capacity);
    EXPECT_EQ(e.metric, ic);
    EXPECT_EQ(e.ready_at, time_point::max());
}

TEST(PriorityMultiMetric, EachMetricKeepsItsOwnShare) {
    manual_clock clock;
    gov3_t gov(clock, qa, qb, qc);
    gov.set_priority_headroom(0.25);
    gov.set_priority_headroom<tag_b>(0.5);
    EXPECT_EQ(gov.try_acquire(make(16, 0, 0), regular).status, acquire_status::exceeds_capacity);
    EXPECT_EQ(gov.try_acquire(make(0, 0, 4), regular).status, acquire_status::exceeds_capacity);
    EXPECT_TRUE(gov.try_acquire(make(15, 50, 3), regular));
    EXPECT_EQ(gov.availability(), (avail_t{5, 50, 1}));
    const auto d = gov.try_acquire(make(1, 0, 0), regular);
    EXPECT_EQ(d.status, acquire_status::denied);
    EXPECT_EQ(d.metric, ia);
    EXPECT_TRUE(gov.try_acquire(make(5, 50, 1), priority));
    EXPECT_EQ(gov.availability(), (avail_t{0, 0, 0}));
}

TEST(PriorityMultiMetric, RegularReserveBlockedByOneMetricsQueueTakesNothingOnTheOthers) {
    manual_clock clock;
    gov3_t gov(clock, qa, qb, qc);
    gov.set_priority_headroom<tag_b>(0.5);
    auto p1 = gov.reserve(make(0, 100, 0), 1h, priority);
    auto p2 = gov.reserve(make(0, 100, 0), 1h, priority);
    ASSERT_TRUE(p1 && p2);
    EXPECT_EQ(p2.ready_at(), at(1s));
    const avail_t avail = gov.availability(), debts = gov.debts();
    ASSERT_EQ(avail, (avail_t{20, 0, 4}));
    ASSERT_EQ(debts, (avail_t{0, 100, 0}));

    auto r = gov.reserve(make(5, 1, 1), 1h, regular);
    EXPECT_EQ(r.status(), acquire_status::denied);
    EXPECT_EQ(r.metric(), ib);
    EXPECT_EQ(r.ready_at(), at(1500ms)); // 200 queued − 50 regular part
    EXPECT_FALSE(r.pending());
    EXPECT_EQ(gov.availability(), avail) << "a and c untouched";
    EXPECT_EQ(gov.debts(), debts);

    // Without b, the same regular request is granted at once: metrics not named are ignored.
    auto s = gov.reserve(make(5, 0, 1), 1h, regular);
    ASSERT_TRUE(s);
    EXPECT_EQ(s.ready_at(), at(0ns));
    EXPECT_EQ(gov.availability(), (avail_t{15, 0, 3}));
    s.cancel();
    EXPECT_EQ(gov.availability(), avail);

    // At 1.5 s it is admitted, ready when b keeps 50 free after it.
    clock.set(at(1500ms));
    auto t = gov.reserve(make(5, 1, 1), 1h, regular);
    ASSERT_TRUE(t);
    EXPECT_EQ(t.ready_at(), at(1510ms));
    t.commit(make(5, 1, 1));
    p1.commit(make(0, 100, 0));
    p2.commit(make(0, 100, 0));
}

TEST(PriorityMultiMetric, RegularReserveWaitsForTheSlowestMetricAndPlacesAllAtThatTime) {
    manual_clock clock;
    gov3_t gov(clock, qa, qb, qc);
    gov.set_priority_headroom(0.5); // a: 10, b: 50, c: 2 for regular traffic
    ASSERT_TRUE(gov.try_acquire(make(15, 60, 2), priority)); // a 5, b 40, c 2 left

    // Priority has used part of a's and b's headroom: regular traffic may join once each
    // metric has its headroom free again — a at 500 ms (5 more), b at 100 ms (10 more).
    auto early = gov.reserve(make(10, 20, 2), 1h, regular);
    EXPECT_EQ(early.status(), acquire_status::denied);
    EXPECT_EQ(early.metric(), ia);
    EXPECT_EQ(early.ready_at(), at(500ms));
    EXPECT_EQ(gov.availability(), (avail_t{5, 40, 2}));

    // At 500 ms: a needs 10 + 10 kept (1.5 s), b has 90 ≥ 20 + 50, c needs 2 + 2 (2 s).
    clock.set(at(500ms));
    auto r = gov.reserve(make(10, 20, 2), 1h, regular);
    ASSERT_TRUE(r);
    EXPECT_EQ(r.ready_at(), at(2s));
    r.wait();
    // Every metric placed at 2 s, as a request made then: each leaves at least its headroom.
    EXPECT_EQ(gov.availability(), (avail_t{10, 80, 2}));
    EXPECT_TRUE(gov.try_acquire(make(10, 80, 2), priority));
    r.commit(make(10, 20, 2));
}

} // namespace
