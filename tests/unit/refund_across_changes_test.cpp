// Exact refunds (with a receipt) across limit changes, in virtual time with hand-derived
// numbers: a surplus comes back in the new limit's tokens after one or two changes, never
// after more; reset and proportional inheritance; raising and lowering the rate; what time
// has restored is not given back; takes after ours keep their place; reservations queued
// behind ours keep their ready time; governor reservations settled after a change; the
// adaptive layer judges demand as before the reporting request's own refund.
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>

#include <rategov/adaptive/adaptive.hpp>
#include <rategov/rategov.hpp>

#include <gtest/gtest.h>

namespace {

using namespace std::chrono_literals;
using rategov::acquire_status;
using rategov::inheritance;
using rategov::quota;
using clk = rategov::testing::manual_clock;
using tp = clk::time_point;
using bucket = rategov::bucket<clk>;

/// The clocks start at T0; every bucket is built at T0 and used from T1 = T0 + 1 s (full by
/// then), so that changes have a real epoch to move from.
constexpr tp T0 = tp(1000s);
constexpr tp T1 = T0 + 1s;

// 10 per second: 1 unit per ns, 10^8 units per token. 20 per second: 5·10^7 units per
// token; 5 per second: 2·10^8. Every position below is a whole number of units.
const quota ten = rategov::per_second(10);                  // burst 10
const quota twenty = rategov::per_second(20);               // burst 20
const quota five_b8 = rategov::per_second(5).with_burst(8); // burst 8

/// A bucket of `q` on `clock`, built at T0, with the clock moved to T1.
struct at_t1 {
    clk clock{T0};
    bucket b;
    explicit at_t1(const quota& q)
        : b(q, clock) {
        clock.set(T1);
    }
};

// --- one, two, three, four changes ----------------------------------------------------------

TEST(RefundAcrossChanges, SurplusAfterOneKeepChangeComesBackInTheNewLimitsTokens) {
    at_t1 f(ten);
    const auto r = f.b.reserve(10); // the whole burst, ready now
    ASSERT_TRUE(r);
    ASSERT_EQ(r.ready_at, T1);
    ASSERT_EQ(f.b.available(), 0u);
    f.b.set_limit(twenty); // keep: 0 of 20
    ASSERT_EQ(f.b.available(), 0u);
    f.b.refund(6, r.receipt); // used 4 of the 10
    EXPECT_EQ(f.b.available(), 6u);
    EXPECT_FALSE(f.b.try_acquire(7)) << "more came back than the surplus";
    EXPECT_TRUE(f.b.try_acquire(6)) << "the surplus was lost";
    EXPECT_FALSE(f.b.try_acquire(1));
}

TEST(RefundAcrossChanges, SurplusAfterTwoKeepChangesComesBack) {
    at_t1 f(ten);
    const auto r = f.b.reserve(10);
    ASSERT_TRUE(r);
    f.b.set_limit(twenty);  // 0 of 20
    f.b.set_limit(five_b8); // 0 of 8
    ASSERT_EQ(f.b.available(), 0u);
    f.b.refund(6, r.receipt);
    EXPECT_EQ(f.b.available(), 6u);
    EXPECT_FALSE(f.b.try_acquire(7));
    EXPECT_TRUE(f.b.try_acquire(6));
}

TEST(RefundAcrossChanges, TwoChangesBackToTheSameLimitGiveTheSurplusBack) {
    at_t1 f(ten);
    const auto r = f.b.reserve(10);
    ASSERT_TRUE(r);
    f.b.set_limit(twenty);
    f.b.set_limit(ten);
    f.b.refund(3, r.receipt);
    EXPECT_EQ(f.b.available(), 3u);
}

TEST(RefundAcrossChanges, AfterThreeChangesNothingComesBack) {
    // Documented: a receipt is carried across at most two changes; beyond, the refund is
    // kept (lost), never guessed.
    at_t1 f(ten);
    const auto r = f.b.reserve(10);
    ASSERT_TRUE(r);
    f.b.set_limit(twenty);
    f.b.set_limit(five_b8);
    f.b.set_limit(ten);
    ASSERT_EQ(f.b.available(), 0u);
    f.b.refund(6, r.receipt);
    EXPECT_EQ(f.b.available(), 0u);
}

TEST(RefundAcrossChanges, AfterFourChangesNothingComesBackEither) {
    // Four changes bring the word back to the receipt's generation (four parameter slots):
    // the refund must still see that more than two changes happened. With nothing changed
    // in between, the surplus of an empty bucket would simply come back; here the receipt
    // would be read in the coordinates of four changes ago.
    at_t1 f(ten);
    const auto r = f.b.reserve(10);
    ASSERT_TRUE(r);
    f.b.set_limit(twenty);
    f.b.set_limit(five_b8);
    f.b.set_limit(twenty);
    f.b.set_limit(ten);
    ASSERT_EQ(f.b.available(), 0u);
    f.b.refund(6, r.receipt);
    EXPECT_EQ(f.b.available(), 0u) << "a receipt of four changes ago was given back";
}

TEST(RefundAcrossChanges, AReceiptTimeHasRestoredGivesNothingAfterFourChanges) {
    // The property of Interleaving.ARollbackAfterAnotherGrantReusedRestoredTokensGivesNothing,
    // with four limit changes in between. Ours: 10 at T1 (the whole burst). By T1 + 1 s time
    // has restored all of them and another caller has taken them again: the bucket is
    // empty, and our receipt must give nothing back — or a newcomer takes 9 more at
    // T1 + 1 s: 29 tokens in one second from a burst of 10 at 10/s.
    at_t1 f(ten);
    const auto ours = f.b.try_acquire(10);
    ASSERT_TRUE(ours);
    f.clock.set(T1 + 1s);
    ASSERT_EQ(f.b.available(), 10u);
    ASSERT_TRUE(f.b.try_acquire(10)); // another caller
    // Baseline without changes: nothing comes back.
    {
        at_t1 g(ten);
        const auto o = g.b.try_acquire(10);
        g.clock.set(T1 + 1s);
        ASSERT_TRUE(g.b.try_acquire(10));
        g.b.refund(10, o.receipt);
        EXPECT_EQ(g.b.available(), 0u);
    }
    // The same limit, changed four times (the burst alternates, so that none is a no-op).
    const quota ten_b11 = rategov::per_second(10).with_burst(11);
    f.b.set_limit(ten_b11);
    f.b.set_limit(ten);
    f.b.set_limit(ten_b11);
    f.b.set_limit(ten);
    ASSERT_EQ(f.b.available(), 0u);
    f.b.refund(10, ours.receipt);
    EXPECT_EQ(f.b.available(), 0u)
        << "a receipt whose tokens time had restored was given back after four limit changes";
    EXPECT_FALSE(f.b.try_acquire(1));
}

TEST(RefundAcrossChanges, AReceiptTimeHasRestoredGivesNothingAfterOneChange) {
    // The same with one change: carried, the receipt's end lies before the accrual.
    at_t1 f(ten);
    const auto ours = f.b.try_acquire(10);
    ASSERT_TRUE(ours);
    f.clock.set(T1 + 1s);
    ASSERT_TRUE(f.b.try_acquire(10));
    f.b.set_limit(twenty);
    f.b.refund(10, ours.receipt);
    EXPECT_EQ(f.b.available(), 0u);
}

// --- inheritance --------------------------------------------------------------------------

TEST(RefundAcrossChanges, ResetGivesNothingBackBeyondAFullBucket) {
    at_t1 f(ten);
    const auto r = f.b.reserve(10);
    ASSERT_TRUE(r);
    f.b.set_limit(twenty, inheritance::reset); // full: 20
    ASSERT_EQ(f.b.available(), 20u);
    f.b.refund(6, r.receipt);
    EXPECT_EQ(f.b.available(), 20u);
    // Whoever empties it after the reset took fresh tokens: ours are not among them.
    ASSERT_TRUE(f.b.try_acquire(20));
    f.b.refund(6, r.receipt);
    EXPECT_EQ(f.b.available(), 0u) << "reset already gave everything back";
}

TEST(RefundAcrossChanges, ProportionalRaiseGivesBackTheCountNotTheShare) {
    // Ours 4, then another 2: 4 of 10 left. Proportional to burst 20 (same rate, same units
    // per token): 8 of 20, 12 used, of which the last 2 (the other's) stay behind ours. Our
    // 4 come back as 4 tokens of the new limit — the count, not the share (which would be
    // 8): a refund may lose, never create.
    at_t1 f(ten);
    const auto ours = f.b.try_acquire(4);
    ASSERT_TRUE(ours);
    ASSERT_TRUE(f.b.try_acquire(2));
    f.b.set_limit(rategov::per_second(10).with_burst(20), inheritance::proportional);
    ASSERT_EQ(f.b.available(), 8u);
    f.b.refund(4, ours.receipt);
    EXPECT_EQ(f.b.available(), 12u);
}

TEST(RefundAcrossChanges, ProportionalLoweringGivesBackOnlyWhatIsInUseAheadOfTheOthers) {
    // Ours 4, another 2: 4 of 10 left. Proportional to burst 5: 2 of 5, 3 used. Keeping the
    // other's 2 tokens behind ours gives 1 back (3 of 5); keeping ours as a share of the
    // burst (40 % of 5) gives 2 back (4 of 5) — the most that creates nothing.
    at_t1 f(ten);
    const auto ours = f.b.try_acquire(4);
    ASSERT_TRUE(ours);
    ASSERT_TRUE(f.b.try_acquire(2));
    f.b.set_limit(rategov::per_second(10).with_burst(5), inheritance::proportional);
    ASSERT_EQ(f.b.available(), 2u);
    f.b.refund(4, ours.receipt);
    EXPECT_GE(f.b.available(), 3u) << "the surplus was lost";
    EXPECT_LE(f.b.available(), 4u) << "more than our share of the burst came back";
}

// --- the rate raised and lowered; time restoring part of ours; takes after ours ----------

/// Ours 4 at T1, another 6 after ours (empty); at T1 + 200 ms time has restored 2 tokens —
/// the first 2 of ours. The limit changes (keep, the same burst 10) to `q`: 2 of 10. Our
/// refund of 4 gives back only the 2 not yet restored: 4 available.
void time_restored_part_of_ours(const quota& q) {
    at_t1 f(ten);
    const auto ours = f.b.try_acquire(4);
    ASSERT_TRUE(ours);
    ASSERT_TRUE(f.b.try_acquire(6));
    f.clock.set(T1 + 200ms);
    ASSERT_EQ(f.b.available(), 2u);
    if (q != ten)
        f.b.set_limit(q);
    ASSERT_EQ(f.b.available(), 2u);
    f.b.refund(4, ours.receipt);
    EXPECT_EQ(f.b.available(), 4u) << q.to_string();
    EXPECT_FALSE(f.b.try_acquire(5));
    EXPECT_TRUE(f.b.try_acquire(4));
}

TEST(RefundAcrossChanges, TimeRestoredPartIsNotGivenBackWithoutAChange) {
    time_restored_part_of_ours(ten);
}
TEST(RefundAcrossChanges, TimeRestoredPartIsNotGivenBackAcrossARaiseOfTheRate) {
    time_restored_part_of_ours(rategov::per_second(20).with_burst(10));
}
TEST(RefundAcrossChanges, TimeRestoredPartIsNotGivenBackAcrossALoweringOfTheRate) {
    time_restored_part_of_ours(rategov::per_second(5).with_burst(10));
}

TEST(RefundAcrossChanges, TimeRestoredPartIsNotGivenBackAcrossARaiseOfTheBurst) {
    // As above, with the burst raised to 20 (keep: 2 of 20). A refund made before the
    // change gives 2 (4 of 10, then 4 of 20); made after it, it must not give more.
    {
        at_t1 f(ten);
        const auto ours = f.b.try_acquire(4);
        ASSERT_TRUE(f.b.try_acquire(6));
        f.clock.set(T1 + 200ms);
        f.b.refund(4, ours.receipt);
        f.b.set_limit(twenty);
        ASSERT_EQ(f.b.available(), 4u) << "refund, then change";
    }
    at_t1 f(ten);
    const auto ours = f.b.try_acquire(4);
    ASSERT_TRUE(f.b.try_acquire(6));
    f.clock.set(T1 + 200ms);
    f.b.set_limit(twenty);
    ASSERT_EQ(f.b.available(), 2u);
    f.b.refund(4, ours.receipt);
    EXPECT_EQ(f.b.available(), 4u)
        << "change, then refund: the 2 tokens time had restored came back a second time";
}

TEST(RefundAcrossChanges, ATakeAfterOursKeepsItsTokensAcrossTwoChanges) {
    // Ours 5, another 5 after ours: empty. Raise (20/s, burst 20): 0 of 20; at +100 ms two
    // tokens accrue (at 20/s), all of them ahead of ours; lower (5/s, burst 8): 2 of 8, 6
    // used: 5 of them the other's. Our refund of 5 gives back the 1 left: 3 available.
    at_t1 f(ten);
    const auto ours = f.b.try_acquire(5);
    ASSERT_TRUE(ours);
    ASSERT_TRUE(f.b.try_acquire(5));
    f.b.set_limit(twenty);
    f.clock.set(T1 + 100ms);
    ASSERT_EQ(f.b.available(), 2u);
    f.b.set_limit(five_b8);
    ASSERT_EQ(f.b.available(), 2u);
    f.b.refund(5, ours.receipt);
    EXPECT_EQ(f.b.available(), 3u);
}

TEST(RefundAcrossChanges, ARefundNeverGivesBackMoreThanTheReceiptTook) {
    // Ours 3 of 10, then the burst is lowered to 5 (keep: 5 of 5, 2 tokens lost) and two
    // others take 4: 1 of 5. A refund of 3 gives at most the 3 ours took — here only what
    // the chain ahead of the others still holds: the others' 4 stay, 1 comes back at most.
    at_t1 f(ten);
    const auto ours = f.b.try_acquire(3);
    ASSERT_TRUE(ours);
    f.b.set_limit(rategov::per_second(10).with_burst(5));
    ASSERT_EQ(f.b.available(), 5u);
    ASSERT_TRUE(f.b.try_acquire(4));
    f.b.refund(3, ours.receipt);
    EXPECT_LE(f.b.available(), 1u) << "tokens the lowering had already dropped came back";
}

// --- reservations queued behind ours --------------------------------------------------------

TEST(RefundAcrossChanges, ARefundWithAReservationQueuedBehindIsKept) {
    // Ours: 10 at T1, ready now. Queued behind: 5, ready at T1 + 500 ms (beyond a full
    // bucket). Giving our surplus back would let a newcomer use at T1 + 500 ms the tokens the
    // queued reservation uses then: it is kept. Nothing is free until the queued one's time,
    // and then no more than the rate brings.
    at_t1 f(ten);
    const auto ours = f.b.reserve(10);
    const auto queued = f.b.reserve(5);
    ASSERT_TRUE(ours);
    ASSERT_TRUE(queued);
    ASSERT_EQ(ours.ready_at, T1);
    ASSERT_EQ(queued.ready_at, T1 + 500ms);
    f.b.refund(6, ours.receipt);
    EXPECT_EQ(f.b.available(), 0u);
    EXPECT_EQ(f.b.debt(), 5u);
    f.clock.set(T1 + 500ms);
    EXPECT_FALSE(f.b.try_acquire(1)) << "a token promised to the queued reservation was lent";
    f.clock.set(T1 + 600ms);
    EXPECT_TRUE(f.b.try_acquire(1));
    EXPECT_FALSE(f.b.try_acquire(1));
}

TEST(RefundAcrossChanges, ARefundWithAReservationQueuedBehindAcrossAChangeIsKept) {
    // As above, then the rate doubles (keep, burst 10): the 5 queued beyond the burst stay
    // debt; our surplus stays taken. At T1 + 250 ms (5 tokens at 20/s) the debt is paid.
    at_t1 f(ten);
    const auto ours = f.b.reserve(10);
    const auto queued = f.b.reserve(5);
    ASSERT_TRUE(ours);
    ASSERT_TRUE(queued);
    ASSERT_EQ(queued.ready_at, T1 + 500ms);
    f.b.set_limit(rategov::per_second(20).with_burst(10));
    EXPECT_EQ(f.b.available(), 0u);
    EXPECT_EQ(f.b.debt(), 5u);
    f.b.refund(6, ours.receipt);
    EXPECT_EQ(f.b.debt(), 5u);
    EXPECT_EQ(f.b.available(), 0u);
    f.clock.set(T1 + 250ms);
    EXPECT_EQ(f.b.debt(), 0u);
    EXPECT_EQ(f.b.available(), 0u);
    f.clock.set(T1 + 300ms);
    EXPECT_EQ(f.b.available(), 1u);
}

// --- governor reservations -------------------------------------------------------------------

struct m0 {};
struct m1 {};
using two = rategov::metrics<m0, m1>;
using gov_t = rategov::governor<two, clk>;
using cost_t = rategov::cost<two>;

cost_t of(std::uint64_t a, std::uint64_t b) {
    return cost_t{rategov::amount<m0>{a}, rategov::amount<m1>{b}};
}

struct gov_at_t1 {
    clk clock{T0};
    gov_t gov{clock, ten, ten};
    gov_at_t1() { clock.set(T1); }
};

TEST(RefundAcrossChanges, GovernorCommitAfterOneSetLimitGivesTheSurplusBack) {
    gov_at_t1 f;
    auto r = f.gov.reserve(of(10, 3));
    ASSERT_TRUE(r);
    f.gov.set_limit<m0>(twenty);
    f.gov.set_limit<m1>(twenty);
    r.commit(of(4, 3));
    EXPECT_EQ(f.gov.availability(), (std::array<std::uint64_t, 2>{6, 7}));
}

TEST(RefundAcrossChanges, GovernorCommitAfterTwoSetLimitsGivesTheSurplusBack) {
    gov_at_t1 f;
    auto r = f.gov.reserve(of(10, 10));
    ASSERT_TRUE(r);
    f.gov.set_limit<m0>(twenty);
    f.gov.set_limit<m0>(five_b8);
    f.gov.set_limit<m1>(twenty);
    r.commit(of(3, 1));
    EXPECT_EQ(f.gov.availability(), (std::array<std::uint64_t, 2>{7, 9}));
}

TEST(RefundAcrossChanges, GovernorCommitAfterThreeSetLimitsKeepsTheSurplus) {
    gov_at_t1 f;
    auto r = f.gov.reserve(of(10, 10));
    ASSERT_TRUE(r);
    f.gov.set_limit<m0>(twenty);
    f.gov.set_limit<m0>(five_b8);
    f.gov.set_limit<m0>(ten);
    r.commit(of(3, 3));
    EXPECT_EQ(f.gov.availability(), (std::array<std::uint64_t, 2>{0, 7}));
}

TEST(RefundAcrossChanges, GovernorCommitWithADeficitAfterAChangeCharges) {
    gov_at_t1 f;
    auto r = f.gov.reserve(of(10, 2));
    ASSERT_TRUE(r);
    f.gov.set_limit<m0>(twenty);
    r.commit(of(13, 2));
    EXPECT_EQ(f.gov.availability(), (std::array<std::uint64_t, 2>{0, 8}));
    EXPECT_EQ(f.gov.debts(), (std::array<std::uint64_t, 2>{3, 0}));
}

TEST(RefundAcrossChanges, GovernorCancelOfAQueuedReservationAfterAChange) {
    // Two reservations of 10 on m0: the second queued until T1 + 1 s. The rate doubles (keep):
    // the queue is 10 tokens of debt at 20/s. Cancelling the second gives its 10 back (nobody
    // behind it), the first commits 4 of its 10: 6 available, no debt.
    gov_at_t1 f;
    auto first = f.gov.reserve(of(10, 0));
    auto second = f.gov.reserve(of(10, 0));
    ASSERT_TRUE(first);
    ASSERT_TRUE(second);
    ASSERT_EQ(second.ready_at(), T1 + 1s);
    f.gov.set_limit<m0>(rategov::per_second(20).with_burst(10));
    ASSERT_EQ(f.gov.debts()[0], 10u);
    second.cancel();
    EXPECT_EQ(f.gov.debts()[0], 0u);
    EXPECT_EQ(f.gov.availability()[0], 0u);
    first.commit(of(4, 0));
    EXPECT_EQ(f.gov.availability()[0], 6u);
}

TEST(RefundAcrossChanges, GovernorCommitAfterAChangeWithAReservationQueuedBehind) {
    // First 10 (ready now), second 5 queued (ready at T1 + 500 ms): 5 tokens of debt. The
    // limit changes (keep: the debt stays) to 20/s, burst 20. The first commits 2: its
    // surplus stays taken while the second is queued beyond a full bucket.
    gov_at_t1 f;
    auto first = f.gov.reserve(of(10, 0));
    auto second = f.gov.reserve(of(5, 0));
    ASSERT_TRUE(first);
    ASSERT_TRUE(second);
    ASSERT_EQ(second.ready_at(), T1 + 500ms);
    f.gov.set_limit<m0>(twenty);
    ASSERT_EQ(f.gov.debts()[0], 5u);
    first.commit(of(2, 0));
    EXPECT_EQ(f.gov.debts()[0], 5u);
    EXPECT_EQ(f.gov.availability()[0], 0u);
    EXPECT_EQ(second.ready_at(), T1 + 500ms);
    second.commit(of(5, 0));
    EXPECT_EQ(f.gov.availability()[0], 0u);
}

// --- adaptive growth judged before the request's own refund ---------------------------------

namespace m = rategov::metric;
namespace fb = rategov::feedback;
using llm = rategov::metrics<m::requests, m::generated>;
using llm_gov = rategov::governor<llm, clk>;
using adapt_t = rategov::adaptive_limits<llm_gov>;
constexpr std::size_t gen = llm::index_of<m::generated>;

/// A governor whose `generated` adapts from 36'000/min (burst 36'000), 1 s after its start,
/// holding exactly `left` generated tokens.
struct adaptive_fixture {
    clk clock{T0};
    llm_gov gov{clock, rategov::per_minute(600), rategov::per_minute(36'000)};
    adapt_t adapt{gov};
    explicit adaptive_fixture(std::uint64_t left) {
        adapt.bound<m::generated>({rategov::per_minute(12'000), rategov::per_minute(36'000),
                                   rategov::per_minute(360'000)});
        clock.set(T1);
        gov.charge(rategov::cost<llm>{rategov::amount<m::generated>{36'000 - left}});
    }
    std::uint64_t limit() const { return gov.limit<m::generated>().count(); }
    /// A success without a reported limit, for a request sent 100 ms ago whose settling
    /// gave back `given_back` generated tokens.
    std::size_t success(std::uint64_t given_back) {
        adapt_t::feedback_type f;
        f.kind = fb::outcome::success;
        std::array<std::uint64_t, 2> back{};
        back[gen] = given_back;
        return adapt.on_response(f, clock.now() - 100ms, back);
    }
};

TEST(RefundAcrossChanges, AdaptiveGrowsWhenAvailabilityBeforeTheRefundIsUnderATenth) {
    // 3'700 left; the request gave back 101: 3'599 before it, under a tenth of 36'000.
    adaptive_fixture f(3'700);
    ASSERT_EQ(f.gov.available<m::generated>(), 3'700u);
    EXPECT_EQ(f.success(101), 1u);
    EXPECT_GT(f.limit(), 36'000u);
}

TEST(RefundAcrossChanges, AdaptiveDoesNotGrowWhenAvailabilityBeforeTheRefundIsATenth) {
    // 3'700 left, 100 given back: 3'600 before it, exactly a tenth: not saturated.
    adaptive_fixture f(3'700);
    EXPECT_EQ(f.success(100), 0u);
    EXPECT_EQ(f.limit(), 36'000u);
    EXPECT_EQ(f.success(0), 0u);
    EXPECT_EQ(f.limit(), 36'000u);
    // A larger refund then shows demand at the limit: it grows.
    EXPECT_EQ(f.success(101), 1u);
    EXPECT_GT(f.limit(), 36'000u);
}

TEST(RefundAcrossChanges, AdaptiveWithoutRefundJudgesTheAvailabilityAsItIs) {
    adaptive_fixture below(3'599);
    EXPECT_EQ(below.success(0), 1u);
    adaptive_fixture at(3'600);
    EXPECT_EQ(at.success(0), 0u);
    EXPECT_EQ(at.limit(), 36'000u);
}

TEST(RefundAcrossChanges, AdaptiveGivenBackBeyondTheAvailabilityCountsAsEmpty) {
    adaptive_fixture f(5'000);
    EXPECT_EQ(f.success(0), 0u);
    EXPECT_EQ(f.success(9'000), 1u);
}

} // namespace
