#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <utility>

#include <rategov/rategov.hpp>

#include <gtest/gtest.h>

namespace {

using namespace std::chrono_literals;

using rategov::acquire_status;
using rategov::amount;
using rategov::inheritance;
using rategov::quota;
using manual_clock = rategov::testing::manual_clock;
using time_point = manual_clock::time_point;

// Three metrics of very different rates, listed in the order the governor takes them:
// a: 10/s (a token every 100 ms), b: 100/s, c: 1/s (burst 1).
struct tag_a {};
struct tag_b {};
struct tag_c {};
struct tag_absent {};
using abc = rategov::metrics<tag_a, tag_b, tag_c>;
using cost = rategov::cost<abc>;
using gov_t = rategov::governor<abc, manual_clock>;
using keep_gov_t = rategov::governor<abc, manual_clock, rategov::keep_on_drop>;

const quota qa = rategov::per_second(10);
const quota qb = rategov::per_second(100);
const quota qc = rategov::per_second(1);

constexpr std::size_t ia = abc::index_of<tag_a>;
constexpr std::size_t ib = abc::index_of<tag_b>;
constexpr std::size_t ic = abc::index_of<tag_c>;

using avail_t = std::array<std::uint64_t, 3>;

time_point at(std::chrono::nanoseconds d) {
    return time_point(d);
}

cost make(std::uint64_t a, std::uint64_t b, std::uint64_t c) {
    return cost{amount<tag_a>{a}, amount<tag_b>{b}, amount<tag_c>{c}};
}

/// ceil(count · elapsed / period), exactly, for a bound on what a limit may grant.
std::uint64_t accrued_ceil(const quota& q, std::chrono::nanoseconds elapsed) {
    const auto t = static_cast<std::uint64_t>(elapsed.count());
    const auto p = static_cast<std::uint64_t>(q.period().count());
    return rategov::detail::div_ceil(rategov::detail::mul_64x64(q.count(), t), p);
}

// --- metrics and cost ----------------------------------------------------------------------

static_assert(abc::size == 3);
static_assert(ia == 0 && ib == 1 && ic == 2);
static_assert(abc::contains<tag_b> && !abc::contains<tag_absent>);
static_assert(abc::index_of<tag_absent> == abc::size);
static_assert(cost{amount<tag_a>{1}, amount<tag_a>{2}}.get<tag_a>() == 3,
              "cost is usable in constant expressions");

TEST(GovernorCost, DefaultCostIsZeroForEveryMetric) {
    const cost c;
    EXPECT_EQ(c[0], 0u);
    EXPECT_EQ(c[1], 0u);
    EXPECT_EQ(c[2], 0u);
    EXPECT_EQ(c, make(0, 0, 0));
}

TEST(GovernorCost, AmountsByTagLandAtTheirMetricIndexInAnyOrder) {
    const cost c{amount<tag_c>{7}, amount<tag_a>{3}};
    EXPECT_EQ(c[ia], 3u);
    EXPECT_EQ(c[ib], 0u);
    EXPECT_EQ(c[ic], 7u);
    EXPECT_EQ(c.get<tag_a>(), 3u);
    EXPECT_EQ(c.get<tag_b>(), 0u);
    EXPECT_EQ(c.get<tag_c>(), 7u);
}

TEST(GovernorCost, NamingATagTwiceAddsTheAmounts) {
    const cost c{amount<tag_b>{5}, amount<tag_a>{1}, amount<tag_b>{11}};
    EXPECT_EQ(c.get<tag_b>(), 16u);
    EXPECT_EQ(c.get<tag_a>(), 1u);
    EXPECT_EQ(c.get<tag_c>(), 0u);
}

TEST(GovernorCost, SetOverwritesOneMetricAndChains) {
    cost c{amount<tag_a>{4}, amount<tag_b>{4}};
    c.set<tag_b>(9).set<tag_c>(2);
    EXPECT_EQ(c, make(4, 9, 2));
    c.set<tag_b>(1); // overwrites, does not add
    EXPECT_EQ(c.get<tag_b>(), 1u);
    EXPECT_EQ(c.get<tag_a>(), 4u);
}

TEST(GovernorCost, IndexOperatorReadsAndWritesTheSameStorageAsTags) {
    cost c;
    c[ib] = 12;
    c[ic] += 3;
    EXPECT_EQ(c.get<tag_b>(), 12u);
    EXPECT_EQ(c.get<tag_c>(), 3u);
    const cost& cr = c;
    EXPECT_EQ(cr[ib], 12u);
    EXPECT_EQ(cr[ia], 0u);
}

TEST(GovernorCost, EqualityComparesEveryMetric) {
    EXPECT_EQ(make(1, 2, 3), make(1, 2, 3));
    EXPECT_NE(make(1, 2, 3), make(1, 2, 4));
    EXPECT_NE(make(1, 2, 3), make(0, 2, 3));
}

// --- try_acquire ------------------------------------------------------------------------------

TEST(Governor, StartsFullWithTheGivenLimits) {
    manual_clock clock;
    gov_t gov(clock, qa, qb, qc);
    EXPECT_EQ(gov.availability(), (avail_t{10, 100, 1}));
    EXPECT_EQ(gov.debts(), (avail_t{0, 0, 0}));
    EXPECT_EQ(gov.limits(), (std::array<quota, 3>{qa, qb, qc}));
    EXPECT_EQ(gov.limit<tag_b>(), qb);
    EXPECT_EQ(gov.available<tag_a>(), 10u);
}

TEST(Governor, GrantTakesEveryPartAndNamesNoMetric) {
    manual_clock clock(at(5s));
    gov_t gov(clock, qa, qb, qc);
    const auto r = gov.try_acquire(make(3, 40, 1));
    EXPECT_TRUE(r);
    EXPECT_EQ(r.status, acquire_status::granted);
    EXPECT_EQ(r.metric, abc::size);
    EXPECT_EQ(r.ready_at, at(5s));
    EXPECT_EQ(gov.availability(), (avail_t{7, 60, 0}));
}

TEST(Governor, DenialOnALaterMetricTakesNothingFromTheEarlierOnes) {
    manual_clock clock;
    gov_t gov(clock, qa, qb, qc);
    ASSERT_TRUE(gov.try_acquire(make(3, 30, 1))); // c is now empty
    clock.advance(30ms);                          // a: 7.3 tokens, b: 73
    const avail_t before = gov.availability();
    ASSERT_EQ(before, (avail_t{7, 73, 0}));

    const auto r = gov.try_acquire(make(4, 25, 1)); // a and b could, c cannot
    EXPECT_FALSE(r);
    EXPECT_EQ(r.status, acquire_status::denied);
    EXPECT_EQ(r.metric, ic);
    EXPECT_EQ(gov.availability(), before);
    EXPECT_EQ(gov.debts(), (avail_t{0, 0, 0}));

    // The rollback was exact: the whole of a and b is still there to take.
    EXPECT_TRUE(gov.try_acquire(make(7, 73, 0)));
    EXPECT_EQ(gov.availability(), (avail_t{0, 0, 0}));
}

TEST(Governor, DenialOnTheFirstMetricTakesNothingAtAll) {
    manual_clock clock;
    gov_t gov(clock, qa, qb, qc);
    ASSERT_TRUE(gov.try_acquire(make(9, 0, 0)));
    const auto r = gov.try_acquire(make(2, 50, 1));
    EXPECT_EQ(r.status, acquire_status::denied);
    EXPECT_EQ(r.metric, ia);
    EXPECT_EQ(gov.availability(), (avail_t{1, 100, 1}));
}

TEST(Governor, DenialReadyAtIsTheLatestReadyTimeOverAllMetrics) {
    manual_clock clock;
    gov_t gov(clock, qa, qb, qc);
    ASSERT_TRUE(gov.try_acquire(make(10, 0, 1))); // a and c empty

    // a refuses first (it is listed first) and would be ready at 100 ms, but c needs 1 s.
    const auto r = gov.try_acquire(make(1, 5, 1));
    ASSERT_EQ(r.status, acquire_status::denied);
    EXPECT_EQ(r.metric, ia);
    EXPECT_EQ(r.ready_at, at(1s));

    clock.set(r.ready_at - 1ns);
    const auto early = gov.try_acquire(make(1, 5, 1));
    EXPECT_EQ(early.status, acquire_status::denied);
    EXPECT_EQ(early.metric, ic); // a has refilled by now; c is 1 ns short
    EXPECT_EQ(early.ready_at, at(1s));
    // (b, full here, is checked after a denial by FullMetricStaysExactlyFullAfterADenial.)
    EXPECT_EQ(gov.availability()[ia], 9u);
    EXPECT_EQ(gov.availability()[ic], 0u);

    clock.set(r.ready_at);
    EXPECT_TRUE(gov.try_acquire(make(1, 5, 1)));
    EXPECT_EQ(gov.availability(), (avail_t{9, 95, 0}));
}

TEST(Governor, DenialReadyAtOfTheDecidingMetricWhenItIsTheLatest) {
    manual_clock clock;
    gov_t gov(clock, qa, qb, qc);
    ASSERT_TRUE(gov.try_acquire(make(10, 0, 0)));
    const auto r = gov.try_acquire(make(3, 7, 1)); // b and c could grant now
    ASSERT_EQ(r.status, acquire_status::denied);
    EXPECT_EQ(r.metric, ia);
    EXPECT_EQ(r.ready_at, at(300ms));

    clock.set(at(300ms) - 1ns);
    EXPECT_FALSE(gov.try_acquire(make(3, 7, 1)));
    clock.set(at(300ms));
    EXPECT_TRUE(gov.try_acquire(make(3, 7, 1)));
}

TEST(Governor, FullMetricStaysExactlyFullAfterADenialAtAnyInstant) {
    // All-or-nothing on a metric that is full: the rollback must leave it exactly full, also
    // at instants where the accrued tokens are no whole number (1 ns after the epoch at
    // 100/s). Afterwards the whole burst is still there to take.
    for (const auto t : {1ns, 7ns, 123'456'789ns}) {
        manual_clock clock;
        gov_t gov(clock, qa, qb, qc);
        ASSERT_TRUE(gov.try_acquire(make(0, 0, 1))); // c empty
        clock.set(at(t));
        const auto before = gov.availability();
        ASSERT_EQ(before[ib], 100u) << "at " << t.count() << " ns";
        const auto r = gov.try_acquire(make(0, 5, 1)); // b grants 5, c refuses
        ASSERT_EQ(r.status, acquire_status::denied);
        ASSERT_EQ(r.metric, ic);
        EXPECT_EQ(gov.availability(), before) << "at " << t.count() << " ns";
        const auto all = gov.try_acquire(make(0, 100, 0));
        EXPECT_TRUE(all) << "the whole burst of b at " << t.count() << " ns; ready_at "
                         << all.ready_at.time_since_epoch().count() << " ns";
    }
}

TEST(Governor, ExceedsCapacityNamesTheMetricAndTakesNothing) {
    manual_clock clock;
    gov_t gov(clock, qa, qb, qc);
    const auto r = gov.try_acquire(make(2, 101, 0));
    EXPECT_EQ(r.status, acquire_status::exceeds_capacity);
    EXPECT_EQ(r.metric, ib);
    EXPECT_EQ(r.ready_at, time_point::max());
    EXPECT_EQ(gov.availability(), (avail_t{10, 100, 1}));
}

TEST(Governor, ExceedsCapacityOnALaterMetricWinsOverAnEarlierDenial) {
    manual_clock clock;
    gov_t gov(clock, qa, qb, qc);
    ASSERT_TRUE(gov.try_acquire(make(10, 0, 0)));
    // a denies (empty), but c could never grant 2: waiting would be pointless.
    const auto r = gov.try_acquire(make(1, 0, 2));
    EXPECT_EQ(r.status, acquire_status::exceeds_capacity);
    EXPECT_EQ(r.metric, ic);
    EXPECT_EQ(r.ready_at, time_point::max());
    EXPECT_EQ(gov.availability(), (avail_t{0, 100, 1}));
}

TEST(Governor, ZeroCostMetricsAreSkipped) {
    manual_clock clock;
    gov_t gov(clock, qa, qb, qc);
    gov.charge(make(0, 0, 4)); // c: 3 tokens in debt, would refuse anything for 4 s
    ASSERT_EQ(gov.debts(), (avail_t{0, 0, 3}));

    const auto r = gov.try_acquire(make(1, 1, 0));
    EXPECT_TRUE(r);
    EXPECT_EQ(gov.availability(), (avail_t{9, 99, 0}));

    // A denial by a ignores c's debt in its ready time: c is not part of the request.
    ASSERT_TRUE(gov.try_acquire(make(9, 0, 0)));
    const auto d = gov.try_acquire(make(2, 0, 0));
    EXPECT_EQ(d.status, acquire_status::denied);
    EXPECT_EQ(d.metric, ia);
    EXPECT_EQ(d.ready_at, at(200ms));

    // An all-zero cost is always granted, even with a and c empty.
    const auto z = gov.try_acquire(cost{});
    EXPECT_TRUE(z);
    EXPECT_EQ(z.metric, abc::size);
    EXPECT_EQ(gov.debts(), (avail_t{0, 0, 3}));
}

TEST(Governor, TryAcquireAtUsesTheGivenTime) {
    manual_clock clock;
    gov_t gov(clock, qa, qb, qc);
    ASSERT_TRUE(gov.try_acquire(make(10, 0, 0)));
    EXPECT_FALSE(gov.try_acquire_at(make(1, 0, 0), at(100ms) - 1ns));
    const auto r = gov.try_acquire_at(make(1, 0, 0), at(100ms));
    EXPECT_TRUE(r);
    EXPECT_EQ(r.ready_at, at(100ms));
}

// --- reservations ----------------------------------------------------------------------------

TEST(GovernorReservation, OnAFullGovernorIsReadyNow) {
    manual_clock clock(at(2s));
    gov_t gov(clock, qa, qb, qc);
    auto r = gov.reserve(make(4, 10, 1));
    EXPECT_TRUE(r);
    EXPECT_EQ(r.status(), acquire_status::granted);
    EXPECT_TRUE(r.pending());
    EXPECT_EQ(r.ready_at(), at(2s));
    EXPECT_EQ(r.metric(), abc::size);
    EXPECT_EQ(r.estimate(), make(4, 10, 1));
    EXPECT_EQ(gov.availability(), (avail_t{6, 90, 0}));
    r.commit(make(4, 10, 1));
}

TEST(GovernorReservation, ReadyAtIsWhenEveryMetricHasItsPartAndWaitAdvancesVirtualTime) {
    manual_clock clock;
    gov_t gov(clock, qa, qb, qc);
    ASSERT_TRUE(gov.try_acquire(make(10, 0, 0)));
    auto r = gov.reserve(make(2, 50, 0));
    ASSERT_TRUE(r);
    EXPECT_EQ(r.ready_at(), at(200ms));
    EXPECT_EQ(gov.debts(), (avail_t{2, 0, 0})); // paid forward
    // b's 50 are placed at 200 ms, as a request made then: b keeps back what it accrues by
    // then (20), so that the 50 are certain to be there.
    EXPECT_EQ(gov.availability(), (avail_t{0, 30, 1}));
    // A later caller queues behind the reservation.
    EXPECT_EQ(gov.try_acquire(make(1, 0, 0)).ready_at, at(300ms));

    r.wait();
    EXPECT_EQ(clock.now(), at(200ms));
    EXPECT_EQ(gov.debts(), (avail_t{0, 0, 0}));
    EXPECT_EQ(gov.availability()[ia], 0u);
    r.commit(make(2, 50, 0));
    EXPECT_FALSE(r.pending());
    EXPECT_EQ(gov.availability()[ia], 0u);
}

TEST(GovernorReservation, ReadyAtIsTheLatestOverMetrics) {
    manual_clock clock;
    gov_t gov(clock, qa, qb, qc);
    ASSERT_TRUE(gov.try_acquire(make(10, 0, 1)));
    auto r = gov.reserve(make(1, 0, 1)); // a ready at 100 ms, c at 1 s
    ASSERT_TRUE(r);
    EXPECT_EQ(r.ready_at(), at(1s));
    r.wait();
    EXPECT_EQ(clock.now(), at(1s));
}

TEST(GovernorReservation, WaitOnARefusedReservationReturnsAtOnce) {
    manual_clock clock;
    gov_t gov(clock, qa, qb, qc);
    ASSERT_TRUE(gov.try_acquire(make(10, 0, 0)));
    auto r = gov.reserve(make(1, 0, 0), 10ms);
    ASSERT_FALSE(r);
    r.wait();
    EXPECT_EQ(clock.now(), at(0ns));
}

TEST(GovernorReservation, CommitRefundsTheSurplus) {
    manual_clock clock;
    gov_t gov(clock, qa, qb, qc);
    auto r = gov.reserve(make(5, 20, 1));
    ASSERT_EQ(gov.availability(), (avail_t{5, 80, 0}));
    r.commit(make(2, 20, 0));
    EXPECT_FALSE(r.pending());
    EXPECT_EQ(gov.availability(), (avail_t{8, 80, 1}));
    EXPECT_EQ(gov.debts(), (avail_t{0, 0, 0}));
}

TEST(GovernorReservation, CommitChargesTheDeficitIntoDebt) {
    manual_clock clock;
    gov_t gov(clock, qa, qb, qc);
    auto r = gov.reserve(make(5, 10, 0));
    r.commit(make(12, 10, 1)); // 7 more of a than estimated (2 beyond empty), 1 of c
    EXPECT_EQ(gov.availability(), (avail_t{0, 90, 0}));
    EXPECT_EQ(gov.debts(), (avail_t{2, 0, 0}));

    clock.advance(200ms - 1ns);
    EXPECT_EQ(gov.debts()[ia], 1u); // rounded up: not yet fully paid
    clock.advance(1ns);
    EXPECT_EQ(gov.debts()[ia], 0u);
    EXPECT_EQ(gov.availability()[ia], 0u);
    EXPECT_FALSE(gov.try_acquire(make(1, 0, 0)));
    clock.advance(100ms);
    EXPECT_EQ(gov.availability()[ia], 1u);
    EXPECT_TRUE(gov.try_acquire(make(1, 0, 0)));
}

TEST(GovernorReservation, CancelRefundsTheWholeEstimate) {
    manual_clock clock;
    gov_t gov(clock, qa, qb, qc);
    ASSERT_TRUE(gov.try_acquire(make(3, 0, 0)));
    auto r = gov.reserve(make(4, 60, 1));
    ASSERT_EQ(gov.availability(), (avail_t{3, 40, 0}));
    r.cancel();
    EXPECT_FALSE(r.pending());
    EXPECT_EQ(gov.availability(), (avail_t{7, 100, 1}));
}

TEST(GovernorReservation, SettlingTwiceIsANoOp) {
    manual_clock clock;
    gov_t gov(clock, qa, qb, qc);
    ASSERT_TRUE(gov.try_acquire(make(2, 0, 0)));
    {
        auto r = gov.reserve(make(4, 0, 0)); // a: 4 left
        r.commit(make(3, 0, 0));             // a: 5 left
        ASSERT_EQ(gov.availability()[ia], 5u);
        r.commit(make(8, 0, 0)); // would charge 4 more
        EXPECT_EQ(gov.availability()[ia], 5u);
        r.cancel(); // would refund 4
        EXPECT_EQ(gov.availability()[ia], 5u);
    } // and dropping it refunds nothing either
    EXPECT_EQ(gov.availability()[ia], 5u);
    {
        auto r = gov.reserve(make(3, 0, 0)); // a: 2 left
        r.cancel();                          // a: 5 left
        ASSERT_EQ(gov.availability()[ia], 5u);
        r.commit(make(5, 0, 0)); // would take 5 (charge the whole deficit)
        EXPECT_EQ(gov.availability()[ia], 5u);
        r.cancel();
        EXPECT_EQ(gov.availability()[ia], 5u);
    }
    EXPECT_EQ(gov.availability()[ia], 5u);
}

TEST(GovernorReservation, DroppedUnsettledIsRefundedByDefault) {
    manual_clock clock;
    gov_t gov(clock, qa, qb, qc);
    ASSERT_TRUE(gov.try_acquire(make(3, 10, 0)));
    {
        auto r = gov.reserve(make(4, 30, 1));
        ASSERT_TRUE(r.pending());
        ASSERT_EQ(gov.availability(), (avail_t{3, 60, 0}));
    }
    EXPECT_EQ(gov.availability(), (avail_t{7, 90, 1}));
}

TEST(GovernorReservation, KeepOnDropCommitsTheEstimate) {
    manual_clock clock;
    keep_gov_t gov(clock, qa, qb, qc);
    {
        auto r = gov.reserve(make(4, 30, 1));
        ASSERT_EQ(gov.availability(), (avail_t{6, 70, 0}));
    }
    EXPECT_EQ(gov.availability(), (avail_t{6, 70, 0}));
    {
        auto r = gov.reserve(make(1, 1, 0));
        r.cancel(); // settled: the policy does not apply
    }
    EXPECT_EQ(gov.availability(), (avail_t{6, 70, 0}));
    {
        auto r = gov.reserve(make(6, 0, 0));
        r.commit(make(2, 0, 0)); // settled at 2, not at the estimate
    }
    EXPECT_EQ(gov.availability(), (avail_t{4, 70, 0}));
}

TEST(GovernorReservation, MoveConstructionTransfersOwnershipExactlyOnce) {
    manual_clock clock;
    gov_t gov(clock, qa, qb, qc);
    ASSERT_TRUE(gov.try_acquire(make(6, 0, 0))); // a: 4 left
    auto r1 = gov.reserve(make(3, 0, 0));        // a: 1 left
    {
        auto r2 = std::move(r1);
        EXPECT_TRUE(r2.pending());
        EXPECT_FALSE(r1.pending()); // NOLINT(bugprone-use-after-move): the moved-from state
        EXPECT_EQ(r2.estimate(), make(3, 0, 0));
        EXPECT_EQ(r2.status(), acquire_status::granted);
        r1.cancel(); // NOLINT(bugprone-use-after-move): must not refund
        EXPECT_EQ(gov.availability()[ia], 1u);
    } // r2 dropped: refunded once
    EXPECT_EQ(gov.availability()[ia], 4u);
}

TEST(GovernorReservation, MoveAssignmentSettlesThePendingTargetFirst) {
    manual_clock clock;
    gov_t gov(clock, qa, qb, qc);
    auto target = gov.reserve(make(2, 0, 0));
    auto source = gov.reserve(make(3, 0, 0));
    ASSERT_EQ(gov.availability()[ia], 5u);
    target = std::move(source); // the old target (2) is refunded
    EXPECT_EQ(gov.availability()[ia], 7u);
    EXPECT_TRUE(target.pending());
    EXPECT_EQ(target.estimate(), make(3, 0, 0));
    EXPECT_FALSE(source.pending()); // NOLINT(bugprone-use-after-move)
    source.cancel();                // NOLINT(bugprone-use-after-move): holds nothing
    EXPECT_EQ(gov.availability()[ia], 7u);
    target.commit(make(3, 0, 0));
    EXPECT_EQ(gov.availability()[ia], 7u);
}

TEST(GovernorReservation, MoveAssignmentUnderKeepOnDropCommitsTheOldEstimate) {
    manual_clock clock;
    keep_gov_t gov(clock, qa, qb, qc);
    auto target = gov.reserve(make(2, 0, 0));
    auto source = gov.reserve(make(3, 0, 0));
    target = std::move(source); // the old target keeps its 2
    EXPECT_EQ(gov.availability()[ia], 5u);
    target.cancel(); // the 3 come back
    EXPECT_EQ(gov.availability()[ia], 8u);
}

TEST(GovernorReservation, MoveAssignmentOverASettledTargetTakesTheSource) {
    manual_clock clock;
    gov_t gov(clock, qa, qb, qc);
    auto target = gov.reserve(make(2, 0, 0));
    target.commit(make(2, 0, 0));
    auto source = gov.reserve(make(3, 0, 0));
    ASSERT_EQ(gov.availability()[ia], 5u);
    target = std::move(source); // nothing to settle: the 2 stay taken
    EXPECT_EQ(gov.availability()[ia], 5u);
    target = gov.reserve(make(1, 0, 0)); // the 3 are refunded, 1 is taken
    EXPECT_EQ(gov.availability()[ia], 7u);
}

TEST(GovernorReservation, DeniedWhenMaxWaitIsExceededAndHoldsNothing) {
    manual_clock clock;
    gov_t gov(clock, qa, qb, qc);
    ASSERT_TRUE(gov.try_acquire(make(0, 0, 1))); // c empty: ready again at 1 s
    ASSERT_TRUE(gov.try_acquire(make(2, 0, 0)));
    const avail_t before = gov.availability();

    auto r = gov.reserve(make(3, 10, 1), 999ms); // a and b reserve, then c refuses
    EXPECT_FALSE(r);
    EXPECT_EQ(r.status(), acquire_status::denied);
    EXPECT_EQ(r.metric(), ic);
    EXPECT_EQ(r.ready_at(), at(1s)); // the ready time that exceeded max_wait
    EXPECT_FALSE(r.pending());
    EXPECT_EQ(gov.availability(), before);
    EXPECT_EQ(gov.debts(), (avail_t{0, 0, 0}));
    r.cancel(); // nothing to give back
    EXPECT_EQ(gov.availability(), before);

    // Exactly max_wait away is accepted.
    auto ok = gov.reserve(make(3, 10, 1), 1s);
    EXPECT_TRUE(ok);
    EXPECT_EQ(ok.ready_at(), at(1s));
    // Every part is placed at 1 s: a and b keep back what they accrue until then.
    EXPECT_EQ(gov.availability(), (avail_t{0, 0, 0}));
    clock.set(at(1s));
    EXPECT_EQ(gov.availability(), (avail_t{7, 90, 0}));
}

TEST(GovernorReservation, RefusedCommitChargesTheActualUsage) {
    manual_clock clock;
    gov_t gov(clock, qa, qb, qc);
    ASSERT_TRUE(gov.try_acquire(make(0, 0, 1)));
    auto r = gov.reserve(make(3, 10, 1), 500ms);
    ASSERT_EQ(r.status(), acquire_status::denied);
    r.commit(make(4, 20, 0)); // the request was sent anyway
    EXPECT_EQ(gov.availability(), (avail_t{6, 80, 0}));
    r.commit(make(4, 20, 0)); // once
    EXPECT_EQ(gov.availability(), (avail_t{6, 80, 0}));
}

TEST(GovernorReservation, ExceedsCapacityNamesTheMetricHoldsNothingAndCommitCharges) {
    manual_clock clock;
    keep_gov_t gov(clock, qa, qb, qc);
    {
        auto r = gov.reserve(make(5, 101, 0));
        EXPECT_EQ(r.status(), acquire_status::exceeds_capacity);
        EXPECT_EQ(r.metric(), ib);
        EXPECT_EQ(r.ready_at(), time_point::max());
        EXPECT_FALSE(r.pending());
        EXPECT_EQ(gov.availability(), (avail_t{10, 100, 1}));
    } // dropped: nothing held, so keep_on_drop takes nothing
    EXPECT_EQ(gov.availability(), (avail_t{10, 100, 1}));
    auto r = gov.reserve(make(5, 0, 2));
    EXPECT_EQ(r.status(), acquire_status::exceeds_capacity);
    EXPECT_EQ(r.metric(), ic);
    r.commit(make(1, 0, 2));
    EXPECT_EQ(gov.availability(), (avail_t{9, 100, 0}));
    EXPECT_EQ(gov.debts(), (avail_t{0, 0, 1}));
}

TEST(GovernorReservation, ZeroCostMetricsAreSkipped) {
    manual_clock clock;
    gov_t gov(clock, qa, qb, qc);
    gov.charge(make(0, 0, 5)); // c: 4 in debt
    auto r = gov.reserve(make(1, 0, 0), 0ns);
    EXPECT_TRUE(r);
    EXPECT_EQ(r.ready_at(), at(0ns));
}

// --- limits -----------------------------------------------------------------------------------

TEST(GovernorLimits, SetLimitKeepCarriesTheAvailableTokensToTheNewLimit) {
    manual_clock clock;
    gov_t gov(clock, qa, qb, qc);
    ASSERT_TRUE(gov.try_acquire(make(4, 0, 0)));
    clock.advance(50ms); // a: 6.5
    gov.set_limit<tag_a>(rategov::per_second(20));
    EXPECT_EQ(gov.limit<tag_a>(), rategov::per_second(20));
    EXPECT_EQ(gov.limits(), (std::array<quota, 3>{rategov::per_second(20), qb, qc}));
    EXPECT_EQ(gov.availability(), (avail_t{6, 100, 1}));
    // The new rate applies from now: 20/s fills the bucket in 1 s (the fraction is dropped).
    clock.advance(50ms);
    EXPECT_EQ(gov.availability()[ia], 7u);
    clock.advance(1s);
    EXPECT_EQ(gov.availability()[ia], 20u);
}

TEST(GovernorLimits, SetLimitKeepCapsAtTheNewBurst) {
    manual_clock clock;
    gov_t gov(clock, qa, qb, qc);
    ASSERT_TRUE(gov.try_acquire(make(4, 0, 0)));
    gov.set_limit<tag_a>(rategov::per_second(4), inheritance::keep);
    EXPECT_EQ(gov.availability()[ia], 4u);
    EXPECT_EQ(gov.limit<tag_a>().burst(), 4u);
}

TEST(GovernorLimits, SetLimitProportionalKeepsTheFillRatio) {
    manual_clock clock;
    gov_t gov(clock, qa, qb, qc);
    ASSERT_TRUE(gov.try_acquire(make(4, 0, 0)));
    gov.set_limit<tag_a>(rategov::per_second(50), inheritance::proportional);
    EXPECT_EQ(gov.availability()[ia], 30u);
}

TEST(GovernorLimits, SetLimitResetStartsFull) {
    manual_clock clock;
    gov_t gov(clock, qa, qb, qc);
    ASSERT_TRUE(gov.try_acquire(make(10, 0, 0)));
    gov.set_limit<tag_a>(rategov::per_second(20), inheritance::reset);
    EXPECT_EQ(gov.availability()[ia], 20u);
    ASSERT_TRUE(gov.try_acquire(make(20, 0, 0)));
    const auto r = gov.try_acquire(make(1, 0, 0));
    EXPECT_EQ(r.ready_at, at(50ms)); // 20/s from now on
}

TEST(GovernorLimits, SetLimitKeepCarriesDebt) {
    manual_clock clock;
    gov_t gov(clock, qa, qb, qc);
    gov.charge(make(13, 0, 0));
    ASSERT_EQ(gov.debts()[ia], 3u);
    gov.set_limit<tag_a>(rategov::per_second(100));
    EXPECT_EQ(gov.debts()[ia], 3u);
    EXPECT_EQ(gov.availability()[ia], 0u);
    clock.advance(30ms); // 3 tokens at 100/s pay the debt off
    EXPECT_EQ(gov.debts()[ia], 0u);
    EXPECT_EQ(gov.availability()[ia], 0u);
    clock.advance(10ms);
    EXPECT_EQ(gov.availability()[ia], 1u);
}

TEST(GovernorLimits, SetLimitByIndexAndOutOfRangeIndexIsIgnored) {
    manual_clock clock;
    gov_t gov(clock, qa, qb, qc);
    gov.set_limit(ib, rategov::per_second(7), inheritance::reset);
    EXPECT_EQ(gov.limit<tag_b>(), rategov::per_second(7));
    gov.set_limit(abc::size, rategov::per_second(3), inheritance::reset);
    EXPECT_EQ(gov.limits(), (std::array<quota, 3>{qa, rategov::per_second(7), qc}));
    EXPECT_EQ(gov.availability(), (avail_t{10, 7, 1}));
}

TEST(GovernorLimits, SetLimitKeepsTheBurstGivenWithTheQuota) {
    manual_clock clock;
    gov_t gov(clock, qa, qb, qc);
    const quota smooth = rategov::per_second(100).with_burst(5);
    gov.set_limit<tag_b>(smooth);
    EXPECT_EQ(gov.limit<tag_b>(), smooth);
    EXPECT_EQ(gov.availability()[ib], 5u);
    EXPECT_EQ(gov.try_acquire(make(0, 6, 0)).status, acquire_status::exceeds_capacity);
}

// --- an LLM-shaped scenario -------------------------------------------------------------------

namespace m = rategov::metric;
using llm = rategov::metrics<m::requests, m::total_prompt, m::uncached_prompt, m::generated>;
using llm_cost = rategov::cost<llm>;
constexpr std::uint64_t max_generated = 1500;

const std::array<quota, 4> llm_limits{rategov::per_minute(600), rategov::per_minute(3'600'000),
                                      rategov::per_minute(900'000), rategov::per_minute(36'000)};

llm_cost random_llm_cost(std::mt19937_64& rng) {
    std::uniform_int_distribution<std::uint64_t> prompt(500, 30'000);
    std::uniform_int_distribution<std::uint64_t> generated(50, max_generated);
    const std::uint64_t p = prompt(rng);
    std::uniform_int_distribution<std::uint64_t> uncached(0, p);
    return llm_cost{amount<m::requests>{1}, amount<m::total_prompt>{p},
                    amount<m::uncached_prompt>{uncached(rng)},
                    amount<m::generated>{generated(rng)}};
}

TEST(GovernorScenario, SaturatingLlmCallerStaysWithinBurstPlusRateOverTenMinutes) {
    manual_clock clock;
    rategov::governor<llm, manual_clock> gov(clock, llm_limits[0], llm_limits[1], llm_limits[2],
                                             llm_limits[3]);
    const auto end = at(10min);
    std::mt19937_64 rng(20240601);
    std::array<std::uint64_t, 4> granted{};
    std::uint64_t denials = 0, late_grants = 0, early_grants = 0;

    llm_cost c = random_llm_cost(rng);
    while (clock.now() <= end) {
        const auto r = gov.try_acquire(c);
        if (r) {
            for (std::size_t i = 0; i < 4; ++i)
                granted[i] += c[i];
            c = random_llm_cost(rng);
            continue;
        }
        ASSERT_EQ(r.status, acquire_status::denied);
        ASSERT_GT(r.ready_at, clock.now());
        ++denials;
        if (r.ready_at > end)
            break;
        // The caller retries the same request as early as allowed: never earlier, and at
        // ready_at exactly (nobody else takes tokens) it must succeed.
        clock.set(r.ready_at - 1ns);
        if (gov.try_acquire(c))
            ++early_grants;
        clock.set(r.ready_at);
        if (!gov.try_acquire(c)) {
            ++late_grants;
            continue;
        }
        for (std::size_t i = 0; i < 4; ++i)
            granted[i] += c[i];
        c = random_llm_cost(rng);
    }
    EXPECT_EQ(early_grants, 0u);
    EXPECT_EQ(late_grants, 0u);
    EXPECT_GT(denials, 100u);

    const auto elapsed = 10min;
    for (std::size_t i = 0; i < 4; ++i) {
        EXPECT_LE(granted[i], llm_limits[i].burst() + accrued_ceil(llm_limits[i], elapsed))
            << "metric " << i;
    }
    // Generated tokens are the scarce metric: a saturating caller gets all but the tail.
    const std::uint64_t gen_bound = 36'000 + 360'000;
    EXPECT_EQ(accrued_ceil(llm_limits[3], elapsed), 360'000u);
    EXPECT_GE(granted[3] + max_generated, gen_bound);
    EXPECT_LE(granted[3], gen_bound);
}

TEST(GovernorScenario, LlmReservationsSettledWithActualUsageStayWithinBurstPlusRate) {
    manual_clock clock;
    rategov::governor<llm, manual_clock> gov(clock, llm_limits[0], llm_limits[1], llm_limits[2],
                                             llm_limits[3]);
    const auto end = at(10min);
    std::mt19937_64 rng(7);
    std::array<std::uint64_t, 4> used{};
    std::uint64_t sent = 0;

    for (;;) {
        // Estimate the worst case for generated tokens; settle with what was generated.
        llm_cost estimate = random_llm_cost(rng);
        estimate.set<m::generated>(max_generated);
        auto r = gov.reserve(estimate);
        ASSERT_TRUE(r);
        if (r.ready_at() > end) {
            r.cancel();
            break;
        }
        r.wait();
        ASSERT_EQ(clock.now(), r.ready_at());
        std::uniform_int_distribution<std::uint64_t> gen(50, max_generated);
        llm_cost actual = estimate;
        actual.set<m::generated>(gen(rng));
        r.commit(actual);
        for (std::size_t i = 0; i < 4; ++i)
            used[i] += actual[i];
        ++sent;
    }
    EXPECT_LE(clock.now(), end);
    EXPECT_GT(sent, 400u); // 36'000/min of ~775 on average: ~46 per minute
    for (std::size_t i = 0; i < 4; ++i) {
        EXPECT_LE(used[i], llm_limits[i].burst() + accrued_ceil(llm_limits[i], 10min))
            << "metric " << i;
    }
    // Nothing outstanding: no debt anywhere at the end.
    EXPECT_EQ(gov.debts(), (std::array<std::uint64_t, 4>{}));
}

} // namespace
