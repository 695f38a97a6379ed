// Adaptive limits in virtual time: the limit follows the server, shrinks on 429, recovers on
// saturated success, never leaves its bounds, ignores load shedding and stale feedback.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

#include <rategov/adaptive/adaptive.hpp>
#include <rategov/rategov.hpp>

#include <gtest/gtest.h>

namespace {

using namespace std::chrono;
using rategov::adaptive_bounds;
using rategov::per_minute;
using rategov::per_second;
using rategov::testing::manual_clock;
namespace m = rategov::metric;
namespace fb = rategov::feedback;

using llm = rategov::metrics<m::requests, m::generated>;
using gov_t = rategov::governor<llm, manual_clock>;
using adapt_t = rategov::adaptive_limits<gov_t>;
using feedback_t = adapt_t::feedback_type;
constexpr std::size_t gen = llm::index_of<m::generated>;

const adaptive_bounds gen_bounds{per_minute(12'000), per_minute(36'000), per_minute(360'000)};

feedback_t outcome_only(fb::outcome kind) {
    feedback_t f;
    f.kind = kind;
    return f;
}

feedback_t reported(std::uint64_t limit, nanoseconds period,
                    fb::outcome kind = fb::outcome::success) {
    feedback_t f = outcome_only(kind);
    f.metrics[gen].limit = limit;
    f.metrics[gen].period = period;
    return f;
}

struct fixture {
    manual_clock clock;
    gov_t gov{clock, per_minute(600), per_minute(36'000)};
    adapt_t adapt{gov};
    fixture() { adapt.bound<m::generated>(gen_bounds); }

    std::uint64_t limit() const { return gov.limit<m::generated>().count(); }
    /// A request sent now and answered `flight` later.
    std::size_t respond(const feedback_t& f, milliseconds flight = 100ms) {
        const auto started = clock.now();
        clock.advance(flight);
        return adapt.on_response(f, started);
    }
    /// Takes most of the generated bucket, so that demand is at the limit.
    void saturate() {
        const auto left = gov.available<m::generated>();
        if (left > 0)
            gov.charge(rategov::cost<llm>{rategov::amount<m::generated>{left}});
    }
};

TEST(Adaptive, BoundStartsAtTheStartLimit) {
    manual_clock clock;
    gov_t gov(clock, per_minute(600), per_minute(99'000));
    adapt_t adapt(gov);
    adapt.bound<m::generated>(gen_bounds);
    EXPECT_EQ(gov.limit<m::generated>(), per_minute(36'000));
    EXPECT_EQ(gov.limit<m::requests>(), per_minute(600)); // no bounds: fixed
}

TEST(Adaptive, FollowsTheServersReportInAnyUnit) {
    fixture f;
    EXPECT_EQ(f.respond(reported(1'000, seconds(1))), 1u); // 1000/s = 60000/min
    EXPECT_EQ(f.limit(), 60'000u);
    EXPECT_EQ(f.respond(reported(50'000, minutes(1))), 1u);
    EXPECT_EQ(f.limit(), 50'000u);
    EXPECT_EQ(f.respond(reported(50'000, minutes(1))), 0u); // the same again: no change
    EXPECT_EQ(f.adapt.current(gen), per_minute(50'000));
}

TEST(Adaptive, AReportIsClampedToTheBounds) {
    fixture f;
    f.respond(reported(1'000'000'000'000, seconds(1)));
    EXPECT_EQ(f.limit(), 360'000u);
    f.respond(reported(1, minutes(1)));
    EXPECT_EQ(f.limit(), 12'000u);
    f.respond(reported(~std::uint64_t{0}, nanoseconds(1))); // absurd: clamped, no overflow
    EXPECT_EQ(f.limit(), 360'000u);
}

TEST(Adaptive, The429ShrinksMultiplicativelyDownToTheLowerBound) {
    fixture f;
    f.respond(outcome_only(fb::outcome::over_limit));
    EXPECT_EQ(f.limit(), 25'200u); // 36000 · 0.7
    f.respond(outcome_only(fb::outcome::over_limit));
    EXPECT_EQ(f.limit(), 17'640u);
    for (int i = 0; i < 20; ++i)
        f.respond(outcome_only(fb::outcome::over_limit));
    EXPECT_EQ(f.limit(), 12'000u);
}

TEST(Adaptive, LoadSheddingAndOtherOutcomesLeaveTheLimitAlone) {
    fixture f;
    for (auto kind : {fb::outcome::load_shed, fb::outcome::quota_exhausted, fb::outcome::fatal,
                      fb::outcome::retryable}) {
        EXPECT_EQ(f.respond(outcome_only(kind)), 0u);
        EXPECT_EQ(f.limit(), 36'000u);
    }
}

TEST(Adaptive, 429sOfRequestsSentBeforeTheDecreaseCutOnce) {
    fixture f;
    const auto sent = f.clock.now(); // three requests in flight at the old rate
    f.clock.advance(200ms);
    EXPECT_EQ(f.adapt.on_response(outcome_only(fb::outcome::over_limit), sent), 1u);
    f.clock.advance(10ms);
    EXPECT_EQ(f.adapt.on_response(outcome_only(fb::outcome::over_limit), sent), 0u);
    EXPECT_EQ(f.adapt.on_response(outcome_only(fb::outcome::over_limit), sent + 100ms), 0u);
    EXPECT_EQ(f.limit(), 25'200u);
    // A request sent after the decrease counts again.
    EXPECT_EQ(f.respond(outcome_only(fb::outcome::over_limit)), 1u);
    EXPECT_EQ(f.limit(), 17'640u);
}

TEST(Adaptive, AnOldReportDoesNotUndoANewerOne) {
    fixture f;
    const auto old_start = f.clock.now();
    f.clock.advance(1s);
    const auto new_start = f.clock.now();
    f.clock.advance(1s);
    EXPECT_EQ(f.adapt.on_response(reported(20'000, minutes(1)), new_start), 1u);
    EXPECT_EQ(f.adapt.on_response(reported(90'000, minutes(1)), old_start), 0u); // stale
    EXPECT_EQ(f.limit(), 20'000u);
}

TEST(Adaptive, RecoversOnSaturatedSuccessAndStopsAtTheUpperBound) {
    fixture f;
    f.respond(outcome_only(fb::outcome::over_limit));
    ASSERT_EQ(f.limit(), 25'200u);
    // 2 % of 36000 = 720 per saturated second at full speed, slowing near 36000 (the limit
    // of the 429): most of the way back within 15 s, all of it within 90 s.
    auto saturated_seconds = [&](int n) {
        for (int s = 0; s < n; ++s) {
            f.saturate();
            f.respond(outcome_only(fb::outcome::success), 1000ms);
        }
    };
    saturated_seconds(15);
    EXPECT_GE(f.limit(), 31'000u);
    EXPECT_LT(f.limit(), 36'000u);
    saturated_seconds(75);
    EXPECT_GE(f.limit(), 36'000u);
    EXPECT_LE(f.limit(), 38'000u); // careful around the level of the last 429
    for (int s = 0; s < 1000; ++s) {
        f.saturate();
        f.respond(outcome_only(fb::outcome::success), 1000ms);
    }
    EXPECT_EQ(f.limit(), 360'000u);
}

TEST(Adaptive, SuccessWithoutDemandAtTheLimitDoesNotGrow) {
    fixture f;
    for (int s = 0; s < 100; ++s)
        f.respond(outcome_only(fb::outcome::success), 1000ms); // bucket stays full
    EXPECT_EQ(f.limit(), 36'000u);
}

TEST(Adaptive, AnIdleSpellIsNoEvidenceOfDemand) {
    fixture f;
    f.clock.advance(minutes(30));
    f.saturate();
    f.respond(outcome_only(fb::outcome::success), 100ms); // credits 5 s at most: +3600
    EXPECT_LE(f.limit(), 36'000u + 3'600u);
    EXPECT_GT(f.limit(), 36'000u);
}

TEST(Adaptive, RemainingTightensTheLocalBucketButNeverLoosensIt) {
    fixture f;
    feedback_t r = outcome_only(fb::outcome::success);
    r.metrics[gen].remaining = 1'000;
    r.metrics[gen].period = minutes(1);
    f.respond(r, 0ms);
    EXPECT_LE(f.gov.available<m::generated>(), 1'000u);
    const auto after = f.gov.available<m::generated>();
    r.metrics[gen].remaining = 30'000;
    f.respond(r, 0ms);
    EXPECT_EQ(f.gov.available<m::generated>(), after);
}

TEST(Adaptive, NothingRemainingEmptiesTheBucketAndRepeatedReportsDoNotAddUp) {
    fixture f;
    feedback_t r = outcome_only(fb::outcome::success);
    r.metrics[gen].remaining = 0;
    r.metrics[gen].reset = seconds(10); // the window refills continuously: no extra hold
    r.metrics[gen].period = minutes(1);
    f.respond(r, 0ms);
    f.respond(r, 0ms); // the same report again (another response): idempotent
    EXPECT_EQ(f.gov.available<m::generated>(), 0u);
    EXPECT_EQ(f.gov.debts()[gen], 0u);
    const auto denied = f.gov.try_acquire(rategov::cost<llm>{rategov::amount<m::generated>{1}});
    ASSERT_FALSE(denied);
    EXPECT_LE(denied.ready_at - f.clock.now(), milliseconds(2)); // one token at 600/s
}

TEST(Adaptive, FeedbackStillCountsAfterAMonthWithoutChanges) {
    fixture f;
    f.clock.advance(hours(24) * 30);
    EXPECT_EQ(f.respond(outcome_only(fb::outcome::over_limit)), 1u);
    EXPECT_EQ(f.limit(), 25'200u);
    f.clock.advance(hours(24) * 60);
    EXPECT_EQ(f.respond(reported(20'000, minutes(1))), 1u);
    EXPECT_EQ(f.limit(), 20'000u);
}

TEST(Adaptive, SmallLimitsGrowToo) {
    manual_clock clock;
    gov_t gov(clock, per_minute(600), per_minute(100));
    adapt_t adapt(gov);
    adapt.bound<m::generated>({per_minute(60), per_minute(100), per_minute(1'000)});
    const auto started = clock.now();
    clock.advance(1ms);
    adapt.on_response(outcome_only(fb::outcome::over_limit), started); // 70, at the 429's level
    ASSERT_EQ(gov.limit<m::generated>().count(), 70u);
    for (int k = 0; k < 3000; ++k) { // 10 minutes of saturated successes every 200 ms
        if (const auto left = gov.available<m::generated>(); left > 0)
            gov.charge(rategov::cost<llm>{rategov::amount<m::generated>{left}});
        const auto s = clock.now();
        clock.advance(200ms);
        adapt.on_response(outcome_only(fb::outcome::success), s);
    }
    EXPECT_GE(adapt.current(gen).count(), 150u);
}

TEST(Adaptive, GrowthDoesNotHideThe429sOfRequestsInFlight) {
    fixture f;
    const auto a_sent = f.clock.now(); // request A is in flight
    f.clock.advance(100ms);
    f.saturate();
    EXPECT_EQ(f.respond(outcome_only(fb::outcome::success), 1000ms), 1u); // B grows the limit
    const auto grown = f.limit();
    ASSERT_GT(grown, 36'000u);
    EXPECT_EQ(f.adapt.on_response(outcome_only(fb::outcome::over_limit), a_sent), 1u);
    EXPECT_LT(f.limit(), grown);
}

TEST(Adaptive, A429AtTheLowerBoundStillEmptiesTheBucket) {
    fixture f;
    for (int k = 0; k < 10; ++k)
        f.respond(outcome_only(fb::outcome::over_limit));
    ASSERT_EQ(f.limit(), 12'000u);
    f.clock.advance(minutes(5)); // the bucket refills
    ASSERT_GT(f.gov.available<m::generated>(), 0u);
    EXPECT_EQ(f.respond(outcome_only(fb::outcome::over_limit), 0ms), 0u); // cannot fall further
    EXPECT_EQ(f.gov.available<m::generated>(), 0u);
}

TEST(Adaptive, EveryCountWithinTheBoundsIsAValidQuota) {
    // A burst far above the count, at a slow rate: the burst is clamped to what a quota of
    // each count accepts, instead of throwing inside on_response.
    const adaptive_bounds b{rategov::per_hour(1'000), rategov::per_hour(2'000).with_burst(20'000),
                            rategov::per_hour(4'000'000)};
    b.validate();
    for (std::uint64_t n : {1'000ull, 1'001ull, 2'000ull, 371'375ull, 4'000'000ull})
        EXPECT_NO_THROW((void)b.quota_for(n)) << n;
}

TEST(Adaptive, BadBoundsAreConfigErrorsNamingTheValues) {
    manual_clock clock;
    gov_t gov(clock, per_minute(600), per_minute(36'000));
    adapt_t adapt(gov);
    auto message = [&](const adaptive_bounds& b) {
        try {
            adapt.bound<m::generated>(b);
        } catch (const rategov::config_error& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    EXPECT_NE(message({per_minute(40'000), per_minute(36'000), per_minute(50'000)}).find("40000"),
              std::string::npos);
    EXPECT_NE(message({per_second(10), per_minute(36'000), per_minute(50'000)}).find("period"),
              std::string::npos);
    adaptive_bounds b = gen_bounds;
    b.decrease = 1.5;
    EXPECT_NE(message(b).find("decrease"), std::string::npos);
    b = gen_bounds;
    b.increase_per_second = 0;
    EXPECT_NE(message(b).find("increase_per_second"), std::string::npos);
    EXPECT_THROW(adapt.bound(7, gen_bounds), rategov::config_error);
}

// --- measurement ---------------------------------------------------------------------------

/// A provider that does not report its limit: generated tokens limited by a token bucket of
/// `server_limit` per minute with a burst of 10 s' worth; a saturating client of 500-token
/// requests (1 s flight) with a local governor, fixed or adaptive. Returns the share of the
/// server's limit used and the share of requests answered 429, over 10 virtual minutes.
struct sim_result {
    double utilisation;
    double rejected;
};
sim_result simulate(std::uint64_t server_limit, bool adaptive) {
    manual_clock clock;
    gov_t gov(clock, per_minute(100'000), per_minute(36'000));
    rategov::bucket<manual_clock> server(per_minute(server_limit).with_burst(server_limit / 6),
                                         clock);
    adapt_t adapt(gov);
    if (adaptive)
        adapt.bound<m::generated>(gen_bounds);
    std::uint64_t accepted = 0, requests = 0, rejected = 0;
    const rategov::cost<llm> cost{rategov::amount<m::requests>{1},
                                  rategov::amount<m::generated>{500}};
    while (clock.now() < manual_clock::time_point(minutes(10))) {
        auto r = gov.reserve(cost);
        r.wait();
        const auto started = clock.now();
        ++requests;
        const bool ok = server.try_acquire(500).granted();
        clock.advance(10ms); // responses come back quickly relative to the token rate
        if (ok) {
            accepted += 500;
            r.commit(cost);
        } else {
            ++rejected;
            r.commit(cost); // the attempt counted locally
        }
        adapt.on_response(outcome_only(ok ? fb::outcome::success : fb::outcome::over_limit),
                          started);
    }
    const double allowed = static_cast<double>(server_limit) * (10 + 1.0 / 6);
    return {static_cast<double>(accepted) / allowed,
            static_cast<double>(rejected) / static_cast<double>(requests)};
}

TEST(AdaptiveSimulation, UsesMoreOfAGrownLimitThanAFixedOneWithFew429s) {
    // The server's limit has grown to 90000/min; the client starts at 36000.
    const sim_result fixed = simulate(90'000, false);
    const sim_result adaptive = simulate(90'000, true);
    std::printf("server 90000/min: fixed uses %.1f%% (429s %.2f%%), adaptive uses %.1f%% "
                "(429s %.2f%%)\n",
                100 * fixed.utilisation, 100 * fixed.rejected, 100 * adaptive.utilisation,
                100 * adaptive.rejected);
    EXPECT_LT(fixed.utilisation, 0.45);
    EXPECT_GT(adaptive.utilisation, 0.80);
    EXPECT_LT(adaptive.rejected, 0.02);
}

TEST(AdaptiveSimulation, BacksOffWhenTheServersLimitIsBelowTheStart) {
    const sim_result fixed = simulate(20'000, false);
    const sim_result adaptive = simulate(20'000, true);
    std::printf("server 20000/min: fixed uses %.1f%% (429s %.2f%%), adaptive uses %.1f%% "
                "(429s %.2f%%)\n",
                100 * fixed.utilisation, 100 * fixed.rejected, 100 * adaptive.utilisation,
                100 * adaptive.rejected);
    EXPECT_GT(fixed.rejected, 0.30);
    EXPECT_LT(adaptive.rejected, 0.08);
    EXPECT_GT(adaptive.utilisation, 0.90);
}

} // namespace
