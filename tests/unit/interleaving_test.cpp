// Interleavings of concurrent operations, replayed deterministically in one thread: the
// orders in which a grant, a rollback, a refund, a reservation or a limit change can land
// must never grant more than the limit allows.
#include <chrono>
#include <cstdint>

#include <rategov/rategov.hpp>

#include <gtest/gtest.h>

namespace {

using namespace std::chrono;
using rategov::acquire_status;
using rategov::detail::gcra;
using rategov::testing::manual_clock;

TEST(Interleaving, ARollbackAfterAnotherGrantReusedRestoredTokensGivesNothing) {
    // T1 takes the whole burst at 0 and stalls; by 2000 ns the bucket has refilled and T2
    // takes the burst again; T1 then rolls back. Giving T1's tokens back would let a third
    // caller take a burst at 2000 ns too.
    gcra b(rategov::per_second(1'000'000'000).with_burst(1000));
    gcra::word state{gcra::initial_word};
    const auto t1 = b.try_acquire(state, 1000, 0);
    ASSERT_EQ(t1.status, acquire_status::granted);
    ASSERT_EQ(b.try_acquire(state, 1000, 2000).status, acquire_status::granted);
    b.undo(state, t1.taken, 1000, [] { return std::uint64_t{2000}; });
    EXPECT_EQ(b.try_acquire(state, 1, 2000).status, acquire_status::denied);
}

TEST(Interleaving, ARollbackRightAfterTheGrantGivesEverythingBack) {
    gcra b(rategov::per_second(10));
    gcra::word state{gcra::initial_word};
    const auto t = b.try_acquire(state, 7, 5);
    ASSERT_EQ(t.status, acquire_status::granted);
    b.undo(state, t.taken, 7, [] { return std::uint64_t{5}; });
    EXPECT_EQ(b.available(state, 5), 10u);
}

TEST(Interleaving, ASetLimitJudgedAtAStaleTimeDoesNotCountAccrualTwice) {
    manual_clock clock;
    rategov::bucket<manual_clock> b(
        rategov::per(nanoseconds(1'000'000'000), 999'999'999).with_burst(1000), clock);
    clock.set(manual_clock::time_point(seconds(2)));
    ASSERT_TRUE(b.try_acquire(1000)); // empties the bucket at 2 s (and rebases the epoch)
    clock.set(manual_clock::time_point(seconds(1))); // the setter's clock is behind
    b.set_limit(rategov::per(nanoseconds(1'000'000'000), 999'999'999).with_burst(999));
    clock.set(manual_clock::time_point(seconds(2)));
    EXPECT_FALSE(b.try_acquire(999)) << "the accrual between 1 s and 2 s was counted twice";
}

TEST(Interleaving, AMultiMetricReservationKeepsEveryPartForItsReadyTime) {
    struct fast {};
    struct slow {};
    using two = rategov::metrics<fast, slow>;
    manual_clock clock;
    rategov::governor<two, manual_clock> gov(clock, rategov::per_second(10).with_burst(1),
                                             rategov::per_second(1).with_burst(1));
    const rategov::cost<two> both{rategov::amount<fast>{1}, rategov::amount<slow>{1}};
    ASSERT_TRUE(gov.try_acquire(both)); // both empty now
    auto r = gov.reserve(both);
    ASSERT_TRUE(r);
    EXPECT_EQ(r.ready_at(), manual_clock::time_point(seconds(1)));
    r.wait();
    // The reservation uses `fast` at 1 s: nobody else may take it then.
    EXPECT_FALSE(gov.try_acquire(rategov::cost<two>{rategov::amount<fast>{1}}));
    r.commit(both);
}

TEST(Interleaving, CancellingAReservationWithAnotherQueuedBehindKeepsTheLaterPromise) {
    manual_clock clock;
    rategov::bucket<manual_clock> b(rategov::per_second(1), clock);
    const auto first = b.reserve(1);  // ready now
    const auto second = b.reserve(1); // ready at 1 s
    ASSERT_TRUE(first);
    ASSERT_TRUE(second);
    ASSERT_EQ(second.ready_at, manual_clock::time_point(seconds(1)));
    b.refund(1, first.receipt); // the first is cancelled
    clock.set(second.ready_at);
    EXPECT_FALSE(b.try_acquire(1)) << "the token promised to the second reservation was lent";
}

TEST(Interleaving, CancellingTheLastReservationRestoresTheBucketExactly) {
    // A reservation placed at its ready tick keeps back the accrual until then; cancelling
    // it, with nobody behind it, gives all of that back too.
    struct fast {};
    struct slow {};
    using two = rategov::metrics<fast, slow>;
    manual_clock clock;
    rategov::governor<two, manual_clock> gov(clock, rategov::per_second(100),
                                             rategov::per_second(1).with_burst(1));
    ASSERT_TRUE(gov.try_acquire(rategov::cost<two>{rategov::amount<slow>{1}}));
    const auto before = gov.availability();
    auto r = gov.reserve(rategov::cost<two>{rategov::amount<fast>{10}, rategov::amount<slow>{1}});
    ASSERT_TRUE(r);
    EXPECT_LT(gov.availability()[0], before[0]);
    r.cancel();
    EXPECT_EQ(gov.availability(), before);
}

TEST(Interleaving, AStateWordDoesNotComeBackAfterFourLimitChanges) {
    // The parameter slots are reused every four changes; a reader still holding the word of
    // four changes ago must fail its CAS, so the word must differ even for a full bucket.
    manual_clock clock(manual_clock::time_point(seconds(5)));
    rategov::bucket<manual_clock> b(rategov::per_second(1'000'000'000).with_burst(1000), clock);
    gcra::word probe{gcra::initial_word};
    gcra core(rategov::per_second(1'000'000'000).with_burst(1000));
    std::uint64_t seen[5]{};
    seen[0] = probe.load();
    for (int k = 1; k <= 4; ++k) {
        core.set_limit(probe, k % 2 ? rategov::per_second(1) : rategov::per_second(1'000'000'000),
                       rategov::inheritance::reset, [] { return std::uint64_t{5'000'000'000}; });
        seen[k] = probe.load();
    }
    EXPECT_NE(seen[4], seen[0]);
    EXPECT_NE(seen[3] & ((std::uint64_t{1} << 62) - 1), seen[1] & ((std::uint64_t{1} << 62) - 1));
    (void)b;
}

} // namespace
