// Nested limits (`level`, `path`, `nested_limits`) and the in-flight cap, in virtual time:
// all-or-nothing across levels with exact rollback, the combined ready time, reconciliation
// at every level, the too-large refusal naming level and metric, slots given back on every
// way a reservation ends, `call()` through a path (waiting for slots, feeding each level),
// and levels created per key on first use.
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>

#include <rategov/rategov.hpp>

#include <gtest/gtest.h>

namespace {

using namespace std::chrono_literals;

namespace m = rategov::metric;
using rategov::acquire_status;
using rategov::amount;
using rategov::at_most;
using rategov::call_status;
using rategov::per_second;
using rategov::traffic_class;
using manual_clock = rategov::testing::manual_clock;
using time_point = manual_clock::time_point;

const time_point t0 = time_point(100s);

// account: requests 10/s (burst 10). model: total_prompt 1000/s, uncached 900/s with a
// burst of 900'000 (the example), generated 500/s, at most 2 in flight. variant:
// generated 200/s.
using account_t = rategov::level<rategov::metrics<m::requests>, manual_clock>;
using model_t = rategov::level<
    rategov::metrics<m::total_prompt, m::uncached_prompt, m::generated, m::in_flight>,
    manual_clock>;
using variant_t = rategov::level<rategov::metrics<m::generated>, manual_clock>;
using path_t = rategov::path<account_t, model_t, variant_t>;
using cost_t = path_t::cost_type;

static_assert(std::is_same_v<path_t::metrics_type,
                             rategov::metrics<m::requests, m::total_prompt, m::uncached_prompt,
                                              m::generated, m::in_flight>>,
              "a path's metrics are its levels', each once, in order of first appearance");
static_assert(model_t::has_cap && model_t::has_rates && !account_t::has_cap);

using resp_t = rategov::response<path_t::metrics_type>;

constexpr std::size_t i_req = path_t::metrics_type::index_of<m::requests>;
constexpr std::size_t i_prompt = path_t::metrics_type::index_of<m::total_prompt>;
constexpr std::size_t i_uncached = path_t::metrics_type::index_of<m::uncached_prompt>;
constexpr std::size_t i_gen = path_t::metrics_type::index_of<m::generated>;
constexpr std::size_t i_flight = path_t::metrics_type::index_of<m::in_flight>;

cost_t make(std::uint64_t r, std::uint64_t p, std::uint64_t g, std::uint64_t u = 0) {
    return cost_t{amount<m::requests>{r}, amount<m::total_prompt>{p}, amount<m::uncached_prompt>{u},
                  amount<m::generated>{g}};
}

struct fixture : ::testing::Test {
    manual_clock clock{t0};
    account_t account{clock, per_second(10)};
    model_t model{clock, per_second(1000), per_second(900).with_burst(900'000), per_second(500),
                  at_most(2)};
    variant_t variant{clock, per_second(200)};
    path_t route{account, model, variant};

    std::uint64_t req() const { return account.governor.available<m::requests>(); }
    std::uint64_t prompt() const { return model.governor.available<m::total_prompt>(); }
    std::uint64_t gen() const { return model.governor.available<m::generated>(); }
    std::uint64_t vgen() const { return variant.governor.available<m::generated>(); }
    std::uint64_t flying() const { return model.slots.in_use(); }
};

using NestedPath = fixture;

TEST_F(NestedPath, TryAcquireTakesEveryLevelItsOwnPart) {
    auto a = route.try_acquire(make(1, 100, 50));
    ASSERT_TRUE(a);
    EXPECT_EQ(a.ready_at(), t0);
    EXPECT_EQ(a.level(), 3u);
    EXPECT_EQ(req(), 9u);
    EXPECT_EQ(prompt(), 900u);
    EXPECT_EQ(gen(), 450u);
    EXPECT_EQ(vgen(), 150u); // the variant's own generated tokens
    EXPECT_EQ(flying(), 1u);
    a.release();
    EXPECT_EQ(flying(), 0u);
    a.release(); // once only
    EXPECT_EQ(flying(), 0u);
}

TEST_F(NestedPath, ADenialAtTheDeepestLevelLeavesTheOuterLevelsExactlyAsTheyWere) {
    ASSERT_TRUE(variant.governor.try_acquire({amount<m::generated>{180}}));
    const auto before = std::tuple{req(), prompt(), gen(), vgen()};
    auto a = route.try_acquire(make(1, 300, 50));
    ASSERT_FALSE(a);
    EXPECT_EQ(a.status(), acquire_status::denied);
    EXPECT_EQ(a.level(), 2u);
    EXPECT_EQ(a.metric(), i_gen);
    // The variant needs 30 more generated tokens: 150 ms at 200/s.
    EXPECT_EQ(a.ready_at(), t0 + 150ms);
    EXPECT_EQ(std::tuple(req(), prompt(), gen(), vgen()), before);
    EXPECT_EQ(flying(), 0u); // the slot taken first was given back
}

TEST_F(NestedPath, ADeniedRequestIsToldWhenEveryLevelCouldGrant) {
    // The account runs out first, the model later: the earliest time is the model's.
    ASSERT_TRUE(account.governor.try_acquire({amount<m::requests>{10}}));
    ASSERT_TRUE(model.governor.try_acquire({amount<m::total_prompt>{1000}}));
    auto a = route.try_acquire(make(1, 400, 0));
    ASSERT_FALSE(a);
    EXPECT_EQ(a.level(), 0u); // the first level to refuse
    EXPECT_EQ(a.ready_at(), t0 + 400ms) << "the model needs 400 ms, the account 100 ms";
    clock.advance(400ms);
    EXPECT_TRUE(route.try_acquire(make(1, 400, 0)));
}

TEST_F(NestedPath, AReservationIsReadyWhenEveryLevelIsAndHoldsEachLevelAtThatTime) {
    ASSERT_TRUE(account.governor.try_acquire({amount<m::requests>{10}}));
    ASSERT_TRUE(model.governor.try_acquire({amount<m::total_prompt>{1000}}));
    auto r = route.reserve(make(1, 500, 0));
    ASSERT_TRUE(r);
    EXPECT_EQ(r.ready_at(), t0 + 500ms); // account: 100 ms, model: 500 ms
    EXPECT_EQ(flying(), 1u) << "the slot is held from the reservation on";
    clock.advance(500ms);
    // The account accrued 5 requests by then, one of them the reservation's.
    EXPECT_EQ(req(), 4u);
    EXPECT_EQ(prompt(), 0u);
    r.commit(make(1, 300, 0));
    EXPECT_EQ(prompt(), 200u) << "the surplus goes back exactly";
    EXPECT_EQ(req(), 4u);
    EXPECT_EQ(flying(), 0u);
}

TEST_F(NestedPath, AWaitBeyondMaxWaitIsRefusedWithTheCombinedTimeAndTakesNothing) {
    ASSERT_TRUE(model.governor.try_acquire({amount<m::total_prompt>{1000}}));
    auto r = route.reserve(make(1, 500, 0), 200ms);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.status(), acquire_status::denied);
    EXPECT_EQ(r.ready_at(), t0 + 500ms);
    EXPECT_EQ(r.level(), 1u);
    EXPECT_EQ(r.metric(), i_prompt);
    EXPECT_EQ(req(), 10u);
    EXPECT_EQ(flying(), 0u);
    EXPECT_EQ(r.describe(), "denied by the model's prompt tokens: ready at ready_at()");
}

TEST_F(NestedPath, CommitReconcilesEveryLevelSurplusAndDeficit) {
    auto r = route.reserve(make(1, 400, 100));
    ASSERT_TRUE(r);
    r.commit(make(1, 100, 300)); // 300 prompt given back, 200 generated charged
    EXPECT_EQ(prompt(), 900u);
    EXPECT_EQ(gen(), 200u);
    EXPECT_EQ(vgen(), 0u);
    EXPECT_EQ(variant.governor.debts()[0], 100u) << "the variant's deficit is a debt";
    EXPECT_EQ(req(), 9u);
    r.commit(make(1, 0, 0)); // settles once
    EXPECT_EQ(prompt(), 900u);
}

TEST_F(NestedPath, ARequestLargerThanABurstIsRefusedAtOnceNamingLevelAndMetric) {
    const cost_t big = make(1, 0, 0, 1'200'000);
    auto r = route.reserve(big);
    ASSERT_EQ(r.status(), acquire_status::exceeds_capacity);
    EXPECT_EQ(r.ready_at(), time_point::max());
    EXPECT_EQ(r.level(), 1u);
    EXPECT_EQ(r.metric(), i_uncached);
    EXPECT_EQ(r.refusal().amount, 1'200'000u);
    EXPECT_EQ(r.refusal().limit, 900'000u);
    EXPECT_TRUE(r.describe().starts_with(
        "a request of 1.2M uncached prompt tokens exceeds the model's burst of 900k"))
        << r.describe();
    EXPECT_NE(r.describe().find("split it"), std::string::npos);
    EXPECT_EQ(flying(), 0u);
    auto a = route.try_acquire(big);
    EXPECT_EQ(a.status(), acquire_status::exceeds_capacity);
    EXPECT_EQ(a.level(), 1u);
    EXPECT_EQ(a.metric(), i_uncached);
    EXPECT_EQ(clock.now(), t0) << "never a wait";
}

TEST_F(NestedPath, LevelsCanBeRenamedForMessages) {
    route.named({"org", "deployment", "shard"});
    auto r = route.reserve(make(11, 0, 0));
    EXPECT_TRUE(r.describe().starts_with("a request of 11 requests exceeds the org's burst"))
        << r.describe();
}

TEST_F(NestedPath, TheInFlightCapRefusesAtOnceWithATicketThatARelease) {
    auto a = route.reserve(make(1, 1, 1));
    auto b = route.reserve(make(1, 1, 1));
    ASSERT_TRUE(a && b);
    auto c = route.reserve(make(1, 1, 1));
    ASSERT_FALSE(c);
    EXPECT_EQ(c.status(), acquire_status::denied);
    EXPECT_EQ(c.ready_at(), time_point::max()) << "no time is known for a slot";
    EXPECT_EQ(c.level(), 1u);
    EXPECT_EQ(c.metric(), i_flight);
    ASSERT_TRUE(c.slot());
    EXPECT_FALSE(c.slot().released());
    EXPECT_EQ(c.describe(),
              "all 2 of the model's slots for requests in flight are in use: ask again when one "
              "is released");
    EXPECT_EQ(req(), 8u) << "the refused request took nothing";
    a.cancel();
    EXPECT_TRUE(c.slot().released());
    EXPECT_TRUE(c.slot().wait(clock, t0 + 1s)) << "a release already seen ends the wait at once";
    EXPECT_EQ(clock.now(), t0);
}

TEST_F(NestedPath, SlotsGoBackOnceOnEveryWayAReservationEnds) {
    {
        auto r = route.reserve(make(1, 1, 1));
        EXPECT_EQ(flying(), 1u);
    } // dropped
    EXPECT_EQ(flying(), 0u);
    auto r = route.reserve(make(1, 1, 1));
    r.commit(make(1, 1, 1));
    r.commit(make(1, 1, 1));
    r.cancel();
    EXPECT_EQ(flying(), 0u);
    auto a = route.reserve(make(1, 1, 1));
    auto b = route.reserve(make(1, 1, 1));
    EXPECT_EQ(flying(), 2u);
    a = std::move(b); // a's slot goes back, b's moves
    EXPECT_EQ(flying(), 1u);
    auto c = std::move(a);
    EXPECT_EQ(flying(), 1u);
    EXPECT_FALSE(a.pending()); // NOLINT(bugprone-use-after-move): moved-from holds nothing
    a.cancel();
    EXPECT_EQ(flying(), 1u);
    c.cancel();
    EXPECT_EQ(flying(), 0u);
}

TEST_F(NestedPath, ARateRefusalAfterTheSlotsWereTakenGivesThemBack) {
    ASSERT_TRUE(account.governor.try_acquire({amount<m::requests>{10}}));
    auto r = route.reserve(make(1, 1, 1), 0ms);
    EXPECT_FALSE(r);
    auto a = route.try_acquire(make(1, 1, 1));
    EXPECT_FALSE(a);
    EXPECT_EQ(flying(), 0u);
}

TEST_F(NestedPath, AnInFlightAmountHoldsThatManySlots) {
    cost_t c = make(1, 1, 1);
    c.set<m::in_flight>(2);
    auto r = route.reserve(c);
    ASSERT_TRUE(r);
    EXPECT_EQ(flying(), 2u);
    c.set<m::in_flight>(3);
    r.cancel();
    auto big = route.reserve(c);
    EXPECT_EQ(big.status(), acquire_status::exceeds_capacity);
    EXPECT_EQ(big.metric(), i_flight);
    EXPECT_TRUE(big.describe().starts_with(
        "a request of 3 requests in flight exceeds the model's cap of 2: it can"))
        << big.describe();
}

TEST_F(NestedPath, RegularTrafficLeavesThePriorityHeadroomOfTheCap) {
    model_t wide{clock, per_second(1000), per_second(1000), per_second(1000), at_most(4)};
    wide.set_priority_headroom(0.25);
    rategov::path p(account, wide);
    using c2 = decltype(p)::cost_type;
    const c2 one{amount<m::requests>{1}};
    auto r1 = p.reserve(one, 1s, traffic_class::regular);
    auto r2 = p.reserve(one, 1s, traffic_class::regular);
    auto r3 = p.reserve(one, 1s, traffic_class::regular);
    ASSERT_TRUE(r1 && r2 && r3);
    auto r4 = p.reserve(one, 1s, traffic_class::regular);
    EXPECT_FALSE(r4);
    EXPECT_TRUE(r4.slot());
    EXPECT_EQ(r4.refusal().limit, 3u) << "what regular traffic may hold";
    auto p4 = p.reserve(one, 1s, traffic_class::priority);
    EXPECT_TRUE(p4);
    EXPECT_THROW(wide.set_priority_headroom(1.0), rategov::config_error);
}

TEST_F(NestedPath, KeepOnDropKeepsTheTokensButStillGivesTheSlotBack) {
    using keep_model = rategov::level<rategov::metrics<m::total_prompt, m::in_flight>, manual_clock,
                                      rategov::keep_on_drop>;
    using keep_account =
        rategov::level<rategov::metrics<m::requests>, manual_clock, rategov::keep_on_drop>;
    keep_account acct{clock, per_second(10)};
    keep_model mdl{clock, per_second(1000), at_most(1)};
    rategov::path p(acct, mdl);
    {
        auto r = p.reserve({amount<m::requests>{1}, amount<m::total_prompt>{100}});
        ASSERT_TRUE(r);
    }
    EXPECT_EQ(mdl.governor.available<m::total_prompt>(), 900u);
    EXPECT_EQ(mdl.slots.in_use(), 0u);
}

TEST_F(NestedPath, ABareGovernorCanBeALevel) {
    rategov::governor<rategov::metrics<m::requests>, manual_clock> org(clock, per_second(3));
    rategov::path p(org, model);
    using c2 = decltype(p)::cost_type;
    for (int i = 0; i < 3; ++i)
        EXPECT_TRUE(p.try_acquire(c2{amount<m::requests>{1}}));
    auto a = p.try_acquire(c2{amount<m::requests>{1}});
    EXPECT_FALSE(a);
    EXPECT_EQ(a.level(), 0u);
    EXPECT_EQ(a.ready_at(), t0 + 333'333'334ns);
}

TEST_F(NestedPath, ALevelWithOnlyACap) {
    using cap_only = rategov::level<rategov::metrics<m::in_flight>, manual_clock>;
    static_assert(!cap_only::has_rates && cap_only::has_cap);
    cap_only account_cap{clock, at_most(1)};
    rategov::path p(account_cap, model);
    using c2 = decltype(p)::cost_type;
    auto a = p.try_acquire(c2{amount<m::total_prompt>{10}});
    ASSERT_TRUE(a);
    auto b = p.try_acquire(c2{amount<m::total_prompt>{10}});
    EXPECT_FALSE(b);
    EXPECT_EQ(b.level(), 0u);
    EXPECT_EQ(b.describe(), "all 1 of the account's slots for requests in flight are in use: ask "
                            "again when one is released");
    EXPECT_EQ(p.now(), t0);
}

TEST_F(NestedPath, ALevelMayAppearOnceInAPath) {
    try {
        rategov::path p(account, model, model);
        FAIL() << "a level twice accepted";
    } catch (const rategov::config_error& e) {
        EXPECT_NE(std::string(e.what()).find("levels 1 and 2"), std::string::npos) << e.what();
    }
}

TEST_F(NestedPath, ANegativeMaxWaitMeansNoWait) {
    EXPECT_TRUE(route.reserve(make(1, 1, 1), -1s)); // dropped: given back
    ASSERT_TRUE(account.governor.try_acquire({amount<m::requests>{10}}));
    auto r = route.reserve(make(1, 1, 1), -1s);
    EXPECT_FALSE(r);
    EXPECT_EQ(r.ready_at(), t0 + 100ms);
    EXPECT_EQ(r.level(), 0u);
}

// A request too large for some level is refused at once, whatever else would make it wait.
TEST_F(NestedPath, TooLargeIsReportedBeforeAQueueElsewhere) {
    auto q1 = account.governor.reserve({amount<m::requests>{10}});
    auto q2 = account.governor.reserve({amount<m::requests>{10}}); // a queue at the account
    const cost_t too_big = make(1, 0, 0, 1'200'000);
    auto r = route.reserve(too_big, 1h, traffic_class::regular);
    EXPECT_EQ(r.status(), acquire_status::exceeds_capacity) << r.describe();
    EXPECT_EQ(r.level(), 1u);
    auto res = rategov::call(route, 1, too_big, [&](int, const auto&) {
        return resp_t{200, {}, {}, {}};
    });
    EXPECT_EQ(res.status, call_status::exceeds_capacity);
    EXPECT_EQ(res.waited, manual_clock::duration::zero());
    EXPECT_EQ(clock.now(), t0);
}

TEST_F(NestedPath, TooManySlotsIsReportedBeforeAWaitForTokens) {
    ASSERT_TRUE(account.governor.try_acquire({amount<m::requests>{10}}));
    cost_t c = make(1, 1, 1);
    c.set<m::in_flight>(3); // the cap is 2
    auto r = route.reserve(c, 0s);
    EXPECT_EQ(r.status(), acquire_status::exceeds_capacity);
    EXPECT_EQ(r.metric(), i_flight);
}

TEST_F(NestedPath, TooLargeIsReportedRatherThanAWaitForASlot) {
    auto h1 = route.try_acquire(make(1, 1, 1));
    auto h2 = route.try_acquire(make(1, 1, 1)); // every slot held
    auto a = route.try_acquire(make(1, 0, 0, 1'200'000));
    EXPECT_EQ(a.status(), acquire_status::exceeds_capacity);
    EXPECT_FALSE(a.slot());
    EXPECT_EQ(a.metric(), i_uncached);
    EXPECT_EQ(flying(), 2u);
}

TEST_F(NestedPath, RegularTrafficIsToldTheBurstItMayUse) {
    account_t acct{clock, rategov::per_second(1'000'000'000).with_burst(10)};
    model_t wide{clock, per_second(1000), per_second(1000), per_second(1000), at_most(10)};
    acct.set_priority_headroom(0.25);
    wide.set_priority_headroom(0.25);
    rategov::path p(acct, wide);
    using c2 = decltype(p)::cost_type;
    // 10 less ⌊10 · 0.25⌋: 8, for the requests and for the slots alike.
    EXPECT_TRUE(p.reserve(c2{amount<m::requests>{8}}, 0s, traffic_class::regular));
    auto r = p.reserve(c2{amount<m::requests>{9}}, 0s, traffic_class::regular);
    EXPECT_EQ(r.status(), acquire_status::exceeds_capacity);
    EXPECT_EQ(r.refusal().limit, 8u) << r.describe();
    EXPECT_EQ(wide.slots.allowed(traffic_class::regular), 8u);
}

TEST_F(NestedPath, OneModelsQueueDoesNotHoldTheSharedAccountFromTheOthers) {
    // The account: 100 requests a second (a burst of 100). Model A: 10 generated tokens a
    // second; model B idle.
    account_t acct{clock, per_second(100)};
    using gen_t = rategov::level<rategov::metrics<m::generated>, manual_clock>;
    gen_t a_model{clock, per_second(10).with_burst(100)}, b_model{clock, per_second(10)};
    rategov::path a(acct, a_model), b(acct, b_model);
    using c2 = decltype(a)::cost_type;
    const c2 big{amount<m::requests>{1}, amount<m::generated>{100}};
    ASSERT_TRUE(a.try_acquire(big));
    // A second request on A is 10 s away; placing the account's request 10 s ahead would
    // hold the account from B for 9 s. A is told to ask again when the lead fits.
    auto ra = a.reserve(big);
    EXPECT_FALSE(ra);
    EXPECT_EQ(ra.status(), acquire_status::denied);
    EXPECT_EQ(ra.level(), 1u);
    EXPECT_EQ(ra.ready_at(), t0 + 10s - 990ms) << "10 s, less the account's reach of 99/100 s";
    auto rb = b.reserve(c2{amount<m::requests>{1}, amount<m::generated>{5}});
    ASSERT_TRUE(rb);
    EXPECT_EQ(rb.ready_at(), t0) << "B is not held back";
    clock.advance(10s - 990ms);
    auto again = a.reserve(big);
    ASSERT_TRUE(again);
    EXPECT_EQ(again.ready_at(), t0 + 10s);
}

TEST_F(NestedPath, RegularTrafficAskingAgainWhenToldIsGranted) {
    // Regular traffic behind a queue at the model is told when to ask again; at that time
    // the lead at the account must fit too, so that asking then succeeds.
    account_t acct{clock, per_second(100)};
    using gen_t = rategov::level<rategov::metrics<m::generated>, manual_clock>;
    gen_t mdl{clock, per_second(10).with_burst(100)};
    mdl.set_priority_headroom(0.5);
    rategov::path p(acct, mdl);
    using c2 = decltype(p)::cost_type;
    ASSERT_TRUE(mdl.governor.try_acquire({amount<m::generated>{100}})); // priority, directly
    const c2 c{amount<m::requests>{1}, amount<m::generated>{10}};
    auto r1 = p.reserve(c, manual_clock::duration::max(), traffic_class::regular);
    ASSERT_FALSE(r1);
    EXPECT_EQ(r1.ready_at(), t0 + 5010ms);
    clock.set(r1.ready_at() - 1ns);
    EXPECT_FALSE(p.reserve(c, manual_clock::duration::max(), traffic_class::regular));
    clock.set(r1.ready_at());
    auto r2 = p.reserve(c, manual_clock::duration::max(), traffic_class::regular);
    EXPECT_TRUE(r2) << r2.describe();
    EXPECT_EQ(r2.ready_at(), t0 + 6s);
}

TEST_F(NestedPath, ACapOfAMetricIndexBeyondThePathIsIgnored) {
    route.cap_available(99, 0);
    EXPECT_EQ(req(), 10u);
}

TEST_F(NestedPath, TheEarliestTimeDoesNotOverflow) {
    auto r = route.reserve_at(make(1, 1, 1), time_point::min(), 1s);
    EXPECT_NE(r.status(), acquire_status::exceeds_capacity);
    EXPECT_EQ(flying(), r ? 1u : 0u);
}

TEST(NestedConfig, BadCapsAreConfigErrorsNamingTheValue) {
    try {
        static_cast<void>(at_most(0));
        FAIL() << "at_most(0) accepted";
    } catch (const rategov::config_error& e) {
        EXPECT_NE(std::string(e.what()).find("at_most(0)"), std::string::npos) << e.what();
    }
    EXPECT_THROW(static_cast<void>(at_most((std::uint64_t{1} << 31) + 1)), rategov::config_error);
    EXPECT_NO_THROW(static_cast<void>(at_most(std::uint64_t{1} << 31)));
}

// --- feedback ----------------------------------------------------------------------------------

TEST_F(NestedPath, FeedbackGoesToTheDeepestLevelThatLimitsTheMetric) {
    rategov::feedback::response_feedback<path_t::metrics_type::size> fb;
    fb.kind = rategov::feedback::outcome::success;
    fb.metrics[i_gen].remaining = 20;     // the variant's (the deepest with generated)
    fb.metrics[i_prompt].remaining = 100; // the model's
    fb.metrics[i_req].remaining = 3;      // the account's
    route.learn(fb, t0, {}, make(1, 1, 1));
    EXPECT_EQ(vgen(), 20u);
    EXPECT_EQ(gen(), 500u) << "the model's generated tokens are not what the response reports";
    EXPECT_EQ(prompt(), 100u);
    EXPECT_EQ(req(), 3u);
    const auto av = route.availability();
    EXPECT_EQ(av[i_gen], 20u);
    EXPECT_EQ(av[i_flight], 2u);
}

TEST_F(NestedPath, AdaptiveLimitsOfALevelLearnFromItsMetricsAndA429IsTheDeepestLevels) {
    model.adaptive.bound<m::total_prompt>(
        {.lower = per_second(100), .start = per_second(1000), .upper = per_second(2000)});
    variant.adaptive.bound<m::generated>(
        {.lower = per_second(50), .start = per_second(200), .upper = per_second(400)});
    rategov::feedback::response_feedback<path_t::metrics_type::size> fb;
    fb.kind = rategov::feedback::outcome::success;
    fb.metrics[i_prompt].limit = 1500;
    fb.metrics[i_prompt].period = 1s;
    route.learn(fb, t0, {}, make(1, 1, 1));
    EXPECT_EQ(model.governor.limit<m::total_prompt>().count(), 1500u);
    // A 429 without reports: the variant (the deepest level, the deployment addressed)
    // slows down and is emptied; the model and the account, shared with other paths, not.
    fb.kind = rategov::feedback::outcome::over_limit;
    fb.metrics[i_prompt] = {};
    clock.advance(1s);
    route.learn(fb, t0 + 1s, {}, make(1, 1, 1));
    EXPECT_LT(variant.governor.limit<m::generated>().count(), 200u) << "a 429 decreases";
    EXPECT_EQ(vgen(), 0u);
    EXPECT_EQ(model.governor.limit<m::total_prompt>().count(), 1500u);
    EXPECT_EQ(prompt(), 1500u);
    EXPECT_EQ(req(), 10u);
}

// --- call() -------------------------------------------------------------------------------------

TEST_F(NestedPath, CallSettlesEveryLevelAndHoldsTheSlotOnlyWhileInFlight) {
    std::uint64_t inside = 0;
    auto r = rategov::call(route, 1, make(1, 400, 100), [&](int, const auto&) {
        inside = flying();
        return resp_t{200, {}, make(1, 100, 50), {}};
    });
    ASSERT_TRUE(r) << static_cast<int>(r.status);
    EXPECT_EQ(inside, 1u);
    EXPECT_EQ(flying(), 0u);
    EXPECT_EQ(prompt(), 900u);
    EXPECT_EQ(gen(), 450u);
    EXPECT_EQ(vgen(), 150u);
    EXPECT_EQ(req(), 9u);
}

TEST_F(NestedPath, CallOfARequestTooLargeEndsAtOnceWithTheReason) {
    int sent = 0;
    auto r = rategov::call(route, 1, make(1, 0, 0, 1'200'000), [&](int, const auto&) {
        ++sent;
        return resp_t{200, {}, {}, {}};
    });
    EXPECT_EQ(r.status, call_status::exceeds_capacity);
    EXPECT_EQ(r.level, 1u);
    EXPECT_EQ(r.metric, i_uncached);
    EXPECT_TRUE(r.refusal.starts_with(
        "a request of 1.2M uncached prompt tokens exceeds the model's burst of 900k"))
        << r.refusal;
    EXPECT_EQ(sent, 0);
    EXPECT_EQ(clock.now(), t0);
}

TEST_F(NestedPath, CallReleasesTheSlotWhenTheTransportThrows) {
    auto r = rategov::call(route, 1, make(1, 1, 1),
                           [&](int, const auto&) -> resp_t { throw std::runtime_error("boom"); });
    EXPECT_EQ(r.status, call_status::error);
    EXPECT_EQ(flying(), 0u);
}

TEST_F(NestedPath, CallWaitingForASlotEndsAtItsDeadlineInVirtualTime) {
    auto a = route.reserve(make(1, 1, 1));
    auto b = route.reserve(make(1, 1, 1));
    rategov::call_options<path_t> opt;
    opt.deadline = t0 + 2s;
    int sent = 0;
    auto r = rategov::call(
        route, 1, make(1, 1, 1),
        [&](int, const auto&) {
            ++sent;
            return resp_t{200, {}, {}, {}};
        },
        opt);
    EXPECT_EQ(r.status, call_status::deadline);
    EXPECT_EQ(r.level, 1u);
    EXPECT_EQ(r.metric, i_flight);
    EXPECT_EQ(sent, 0);
    EXPECT_EQ(clock.now(), t0 + 2s) << "the wait advanced virtual time to the deadline";
    EXPECT_EQ(flying(), 2u);
}

TEST_F(NestedPath, CallWaitingForASlotIsWokenByARelease) {
    clock.set_wait_mode(rategov::testing::wait_mode::block);
    auto a = route.reserve(make(1, 1, 1));
    auto b = route.reserve(make(1, 1, 1));
    std::optional<rategov::call_result<resp_t, time_point>> result;
    std::thread caller([&] {
        result = rategov::call(route, 1, make(1, 1, 1), [&](int, const auto&) {
            return resp_t{200, {}, {}, {}};
        });
    });
    a.commit(make(1, 1, 1)); // before or after the caller starts waiting: never missed
    caller.join();
    ASSERT_TRUE(result && *result);
    EXPECT_EQ(flying(), 1u);
}

TEST_F(NestedPath, CallWaitingForASlotStopsWhenCancelled) {
    clock.set_wait_mode(rategov::testing::wait_mode::block);
    auto a = route.reserve(make(1, 1, 1));
    auto b = route.reserve(make(1, 1, 1));
    std::stop_source stop;
    rategov::call_options<path_t> opt;
    opt.stop = stop.get_token();
    std::optional<rategov::call_result<resp_t, time_point>> result;
    std::thread caller([&] {
        result = rategov::call(
            route, 1, make(1, 1, 1),
            [&](int, const auto&) {
                return resp_t{200, {}, {}, {}};
            },
            opt);
    });
    stop.request_stop();
    caller.join();
    ASSERT_TRUE(result);
    EXPECT_EQ(result->status, call_status::cancelled);
    EXPECT_EQ(flying(), 2u);
}

TEST_F(NestedPath, TheMachineSaysToWaitForASlot) {
    auto a = route.reserve(make(1, 1, 1));
    auto b = route.reserve(make(1, 1, 1));
    rategov::call_machine<path_t> mach(route, make(1, 1, 1), {});
    auto s = mach.next();
    EXPECT_EQ(s.what, decltype(mach)::action::wait);
    EXPECT_EQ(s.until, time_point::max());
    ASSERT_TRUE(s.slot);
    EXPECT_EQ(s.slot.slots, &model.slots);
    b.cancel();
    EXPECT_TRUE(s.slot.released());
    s = mach.next();
    EXPECT_EQ(s.what, decltype(mach)::action::send);
    mach.on_response(resp_t{200, {}, {}, {}});
    EXPECT_TRUE(mach.done());
    EXPECT_EQ(flying(), 1u);
}

struct counting_listener final : rategov::release_listener {
    int told = 0;
    void on_release() noexcept override { ++told; }
};

TEST_F(NestedPath, AListenerIsToldOfEveryRelease) {
    counting_listener l;
    model.slots.listen(&l);
    auto a = route.reserve(make(1, 1, 1));
    a.commit(make(1, 1, 1));
    auto b = route.try_acquire(make(1, 1, 1));
    b.release();
    EXPECT_EQ(l.told, 2);
    model.slots.listen(nullptr);
}

// --- levels per key ------------------------------------------------------------------------------

using two_t = rategov::nested_limits<account_t, model_t>;

two_t make_limits(manual_clock clock, std::size_t max_keys = 16) {
    return two_t(
        clock, {.max_keys = max_keys},
        std::tuple{[clock](const rategov::model_key&) { return account_t(clock, per_second(10)); },
                   [clock](const rategov::model_key& k) {
                       return model_t(clock, per_second(k.model() == "big" ? 2000 : 1000),
                                      per_second(900), per_second(500), at_most(2));
                   }});
}

TEST(NestedLimits, LevelsAreCreatedOnFirstUseAndTheAccountIsSharedAcrossModels) {
    manual_clock clock{t0};
    auto limits = make_limits(clock);
    const rategov::nested_key small("acct", "small"), big("acct", "big");
    auto h1 = limits.get(small);
    ASSERT_TRUE(h1);
    EXPECT_EQ(h1.status(), rategov::keyed_status::created);
    auto h2 = limits.get(big);
    EXPECT_EQ(h2.status(), rategov::keyed_status::created);
    EXPECT_EQ(limits.get(small).status(), rategov::keyed_status::found);
    EXPECT_EQ(limits.registry<0>().size(), 1u);
    EXPECT_EQ(limits.registry<1>().size(), 2u);
    EXPECT_EQ(h2->at<1>().governor.limit<m::total_prompt>().count(), 2000u);
    using c2 = two_t::path_type::cost_type;
    const c2 one{amount<m::requests>{1}};
    for (int i = 0; i < 10; ++i) {
        auto a = (i % 2 ? h1 : h2).path().try_acquire(one);
        EXPECT_TRUE(a);
    }
    auto a = h1->try_acquire(one);
    EXPECT_FALSE(a) << "the account's 10 requests are used across both models";
    EXPECT_EQ(a.level(), 0u);
    EXPECT_EQ(limits.find(rategov::nested_key("acct", "other")).status(),
              rategov::keyed_status::absent);
}

TEST(NestedLimits, CallCreatesTheLevelsAndAFullRegistryIsUnavailable) {
    manual_clock clock{t0};
    auto limits = make_limits(clock, 1);
    using c2 = two_t::path_type::cost_type;
    const c2 one{amount<m::requests>{1}, amount<m::total_prompt>{10}};
    using r2 = rategov::response<two_t::path_type::metrics_type>;
    auto send = [](int, const auto&) { return r2{200, {}, {}, {}}; };
    EXPECT_TRUE(rategov::call(limits, rategov::nested_key("acct", "a"), 1, one, send));
    auto held = limits.get(rategov::nested_key("acct", "a"));
    auto r = rategov::call(limits, rategov::nested_key("acct", "b"), 1, one, send);
    EXPECT_EQ(r.status, call_status::unavailable) << "one model per depth, and it is held";
    EXPECT_EQ(held->at<1>().slots.in_use(), 0u);
}

TEST(NestedLimits, OnCreateFinishesEachLevelAndCallFeedsItsAdaptiveLimits) {
    manual_clock clock{t0};
    int created = 0;
    two_t limits(
        clock, {.max_keys = 4},
        std::tuple{[clock](const rategov::model_key&) { return account_t(clock, per_second(10)); },
                   [clock](const rategov::model_key&) {
                       return model_t(clock, per_second(1000), per_second(900), per_second(500),
                                      at_most(2));
                   }},
        [&](const rategov::model_key&, auto& lv) {
            ++created;
            if constexpr (std::is_same_v<std::remove_cvref_t<decltype(lv)>, model_t>)
                lv.adaptive.template bound<m::generated>(
                    {.lower = per_second(100), .start = per_second(500), .upper = per_second(800)});
        });
    using c2 = two_t::path_type::cost_type;
    using r2 = rategov::response<two_t::path_type::metrics_type>;
    const rategov::nested_key key("acct", "llama");
    // The response reports the model's generated limit (the seed provider's headers).
    rategov::call_options<two_t::path_type,
                          rategov::feedback::fireworks_profile<two_t::path_type::metrics_type>>
        opt;
    auto r = rategov::call(
        limits, key, 1, c2{amount<m::requests>{1}, amount<m::generated>{10}},
        [](int, const auto&) {
            r2 out{200, {}, {}, {}};
            out.headers.add("x-ratelimit-limit-tokens-generated", "600");
            return out;
        },
        opt);
    EXPECT_TRUE(r) << static_cast<int>(r.status);
    EXPECT_EQ(created, 2);
    auto h = limits.get(key);
    EXPECT_TRUE(h->at<1>().adaptive.bounded(2));
    EXPECT_EQ(h->at<1>().governor.limit<m::generated>().count(), 600u)
        << "the model's adaptive limit took the reported limit";
    EXPECT_EQ(h->at<0>().governor.limit<m::requests>().count(), 10u);
}

TEST(NestedLimits, AFullInnerRegistryCreatesNothingOutsideIt) {
    manual_clock clock{t0};
    auto limits = make_limits(clock, 2);
    auto h1 = limits.get(rategov::nested_key("a1", "m1"));
    auto h2 = limits.get(rategov::nested_key("a1", "m2")); // the model registry is full, held
    ASSERT_TRUE(h1 && h2);
    auto h3 = limits.get(rategov::nested_key("a2", "m3"));
    EXPECT_FALSE(h3);
    EXPECT_EQ(h3.status(), rategov::keyed_status::full);
    EXPECT_EQ(limits.registry<0>().size(), 1u) << "no account made for a model that has no room";
    EXPECT_FALSE(limits.registry<0>().find(rategov::model_key("a2", "", "")));
}

} // namespace
