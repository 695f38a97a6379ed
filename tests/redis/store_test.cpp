// The Redis store through redis::governor in client time: all-or-nothing across metrics,
// reservations settled through Redis, limits shared between governors, idle expiry, a
// restart with an append-only file, and bad configuration.
#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>

#include <rategov/redis/redis.hpp>

#include <gtest/gtest.h>

#include "redis_test_util.hpp"

namespace {

using namespace rtest;
using rategov::acquire_status;
using rategov::amount;
using rategov::quota;

// requests: 10/s, burst 10; total_prompt: 1000/s, burst 1000.
using two = rategov::metrics<m::requests, m::total_prompt>;
using gov_t = rr::governor<two, manual_clock>;
using leased_t = rr::leased_governor<two, manual_clock>;
using cost_t = rategov::cost<two>;
using avail_t = std::array<std::uint64_t, 2>;

cost_t make(std::uint64_t r, std::uint64_t p) {
    return cost_t{amount<m::requests>{r}, amount<m::total_prompt>{p}};
}
const quota q_req = rategov::per_second(10);
const quota q_prompt = rategov::per_second(1000);

using RedisConnection = server_fixture;

TEST_F(RedisConnection, CommandsAndErrorsAreValues) {
    rr::connection c({"127.0.0.1", server->port(), 2000ms, 2000ms});
    auto r = c.command({"PING"});
    ASSERT_TRUE(r);
    EXPECT_EQ(r.value->text, "PONG");
    auto bad = c.command({"NO-SUCH-COMMAND"});
    EXPECT_FALSE(bad);
    EXPECT_EQ(bad.error.kind, rr::error_kind::server);
    EXPECT_TRUE(c.command({"PING"})); // the connection survives an error reply
}

TEST_F(RedisConnection, ScriptIsReloadedAfterScriptFlush) {
    rr::connection c({"127.0.0.1", server->port(), 2000ms, 2000ms});
    static constexpr std::string_view script = "return 7";
    auto r = c.eval(script, {}, {});
    ASSERT_TRUE(r);
    EXPECT_EQ(r.value->integer, 7);
    EXPECT_EQ(c.script_loads(), 1u);
    ASSERT_TRUE(c.command({"SCRIPT", "FLUSH"}));
    r = c.eval(script, {}, {});
    ASSERT_TRUE(r);
    EXPECT_EQ(c.script_loads(), 2u);
}

TEST(RedisConnectionNoServer, NothingListeningIsUnreachableNotAHang) {
    rategov::testing::redis_server dead; // take a free port, then stop the server on it
    const int port = dead.port();
    dead.stop();
    rr::connection c({"127.0.0.1", port, 50ms, 50ms});
    const auto start = std::chrono::steady_clock::now();
    auto r = c.command({"PING"});
    EXPECT_FALSE(r);
    EXPECT_EQ(r.error.kind, rr::error_kind::unreachable);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
}

// --- (a) all-or-nothing across metrics --------------------------------------------------------

using RedisAtomicity = server_fixture;

TEST_F(RedisAtomicity, ARefusedTakeLeavesEveryMetricUntouched) {
    gov_t gov(clock, opts(), "all-or-nothing", q_req, q_prompt);
    ASSERT_TRUE(gov.try_acquire(make(1, 900)));
    EXPECT_EQ(gov.availability(), (avail_t{9, 100}));

    const auto r = gov.try_acquire(make(1, 200)); // requests could, total_prompt cannot
    EXPECT_EQ(r.status, acquire_status::denied);
    EXPECT_EQ(r.metric, 1u);
    EXPECT_EQ(r.ready_at, t0 + 100ms); // 100 more prompt tokens at 1000/s
    EXPECT_EQ(gov.availability(), (avail_t{9, 100})) << "the refused take took nothing";

    const auto big = gov.try_acquire(make(11, 0));
    EXPECT_EQ(big.status, acquire_status::exceeds_capacity);
    EXPECT_EQ(big.metric, 0u);
    EXPECT_EQ(gov.availability(), (avail_t{9, 100}));

    clock.advance(100ms);
    EXPECT_TRUE(gov.try_acquire(make(1, 200)));
    EXPECT_EQ(gov.availability(), (avail_t{9, 0})); // 8 left + 1 accrued in 100 ms
    EXPECT_EQ(gov.status().failures, 0u);
}

// --- (c) reservations ---------------------------------------------------------------------------

using RedisReservation = server_fixture;

TEST_F(RedisReservation, CommitGivesTheSurplusBackAndChargesTheDeficit) {
    gov_t gov(clock, opts(), "reserve", q_req, q_prompt);
    {
        auto r = gov.reserve(make(1, 500));
        ASSERT_TRUE(r);
        EXPECT_EQ(r.ready_at(), t0);
        EXPECT_EQ(gov.availability(), (avail_t{9, 500}));
        r.commit(make(1, 300));
    }
    EXPECT_EQ(gov.availability(), (avail_t{9, 700}));
    {
        auto r = gov.reserve(make(1, 500));
        r.cancel();
    }
    EXPECT_EQ(gov.availability(), (avail_t{9, 700}));
    {
        auto r = gov.reserve(make(1, 500));
        ASSERT_TRUE(r);
    } // dropped: refund_on_drop
    EXPECT_EQ(gov.availability(), (avail_t{9, 700}));
    {
        auto r = gov.reserve(make(1, 500));
        r.commit(make(1, 900));
    }
    EXPECT_EQ(gov.availability(), (avail_t{8, 0}));
    EXPECT_EQ(gov.debts(), (avail_t{0, 200}));

    // Queued: ready when 200 (debt) + 100 tokens have accrued; refused beyond max_wait.
    auto late = gov.reserve(make(0, 100), 200ms);
    EXPECT_FALSE(late);
    EXPECT_EQ(late.ready_at(), t0 + 300ms);
    auto ok = gov.reserve(make(0, 100), 300ms);
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok.ready_at(), t0 + 300ms);
    ok.commit(make(0, 100));
}

TEST_F(RedisReservation, LeasedSettlesThroughItsPool) {
    leased_t gov(clock, opts(), "leased-reserve", q_req, q_prompt);
    auto r = gov.reserve(make(1, 500));
    ASSERT_TRUE(r);
    r.commit(make(1, 300)); // the surplus goes to the pool
    EXPECT_EQ(gov.leased()[1], 200);
    EXPECT_EQ(gov.availability(), (avail_t{9, 700}));
    ASSERT_TRUE(gov.return_unused());
    EXPECT_EQ(gov.leased()[1], 0);
    EXPECT_EQ(gov.availability(), (avail_t{9, 700}));
}

// A surplus in the pool serves the next reservations without a round trip while it is fresh,
// and goes back to Redis once it is older than the lease horizon; a server's report of what
// is left caps the pool and Redis together, and leaves the pool what fits.
TEST_F(RedisReservation, LeasedReusesItsSurplusThenReturnsIt) {
    leased_t gov(clock, opts(), "leased-surplus", q_req, q_prompt);
    auto r = gov.reserve(make(1, 500));
    ASSERT_TRUE(r);
    r.commit(make(1, 300)); // pool {0, 200}, Redis {9, 500}
    const std::uint64_t trips = gov.status().round_trips;
    auto from_pool = gov.reserve(make(0, 150), 0ms);
    ASSERT_TRUE(from_pool);
    EXPECT_EQ(gov.status().round_trips, trips); // served locally
    from_pool.commit(make(0, 150));
    EXPECT_EQ(gov.leased()[1], 50);
    gov.cap_available(1, 1000); // more than there is: nothing changes
    EXPECT_EQ(gov.leased()[1], 50);
    EXPECT_EQ(gov.availability()[1], 550u);
    gov.cap_available(1, 20); // the pool keeps 20, Redis nothing
    EXPECT_EQ(gov.leased()[1], 20);
    EXPECT_EQ(gov.availability()[1], 20u);
    clock.advance(101ms); // Redis accrues 101; the pool is past the 100 ms horizon
    auto later = gov.reserve(make(0, 10), 0ms);
    ASSERT_TRUE(later);
    EXPECT_EQ(gov.leased()[1], 0); // given back before Redis was asked
    later.commit(make(0, 10));
    EXPECT_EQ(gov.availability()[1], 111u); // 101 + 20 given back − 10
}

// --- (d) shared limits and expiry ---------------------------------------------------------------

using RedisSharedLimits = server_fixture;

TEST_F(RedisSharedLimits, SetLimitOnOneGovernorIsSeenByAnother) {
    gov_t a(clock, opts(), "shared", q_req, q_prompt);
    gov_t b(clock, opts(), "shared", rategov::per_second(5), q_prompt); // adopts Redis' limits
    ASSERT_TRUE(a.try_acquire(make(4, 0)));
    EXPECT_EQ(b.availability(), (avail_t{6, 1000}));
    EXPECT_EQ(b.limit(0), q_req);

    ASSERT_TRUE(a.set_limit<m::requests>(rategov::per_second(20)));
    EXPECT_EQ(b.availability(), (avail_t{6, 1000})); // keep: the available tokens stay
    EXPECT_EQ(b.limit<m::requests>(), rategov::per_second(20));

    ASSERT_TRUE(b.set_limit(1, rategov::per_second(2000), rategov::inheritance::proportional));
    EXPECT_EQ(a.availability()[1], 2000u);
    ASSERT_TRUE(b.set_limit(0, rategov::per_second(10), rategov::inheritance::reset));
    EXPECT_EQ(a.availability()[0], 10u);
    EXPECT_EQ(a.limits()[0], rategov::per_second(10));
}

TEST_F(RedisSharedLimits, IdleKeyExpiresOnceItWouldBeFull) {
    rr::options o = opts();
    o.time = rr::time_source::server;
    o.expiry_margin = 50ms;
    rr::governor<rategov::metrics<m::requests>> gov(o, "expiry",
                                                    rategov::per(200ms, 10)); // 200 ms to refill
    ASSERT_TRUE(
        gov.try_acquire(rategov::cost<rategov::metrics<m::requests>>{amount<m::requests>{10}}));
    const std::string key = gov.redis_key();
    EXPECT_EQ(server->query({"EXISTS", key}), ":1");
    const std::string pttl = server->query({"PTTL", key});
    ASSERT_EQ(pttl.substr(0, 1), ":");
    const long ttl = std::stol(pttl.substr(1));
    EXPECT_GT(ttl, 0);
    EXPECT_LE(ttl, 250);
    std::this_thread::sleep_for(400ms); // a real wait: the expiry is Redis' own timer
    EXPECT_EQ(server->query({"EXISTS", key}), ":0");
}

// --- (e) restart
// ----------------------------------------------------------------------------------

struct RedisRestart : server_fixture {
    rategov::testing::redis_server_options server_options() const override {
        rategov::testing::redis_server_options o;
        o.append_only = true;
        o.fsync_always = true;
        return o;
    }
};

TEST_F(RedisRestart, StateSurvivesAndTheScriptIsReloaded) {
    gov_t gov(clock, opts(), "restart", q_req, q_prompt);
    for (int i = 0; i < 10; ++i)
        ASSERT_TRUE(gov.try_acquire(make(1, 10)));
    EXPECT_FALSE(gov.try_acquire(make(1, 10)));
    EXPECT_EQ(gov.status().script_loads, 1u);

    server->restart();
    EXPECT_FALSE(gov.try_acquire(make(1, 10))) << "the drained bucket survived the restart";
    EXPECT_EQ(gov.status().script_loads, 2u) << "NOSCRIPT made the governor load it again";
    EXPECT_EQ(gov.status().failures, 0u) << "the dead connection was replaced at once";

    clock.advance(100ms); // exactly one request accrues
    EXPECT_TRUE(gov.try_acquire(make(1, 10)));
    EXPECT_FALSE(gov.try_acquire(make(1, 10)));
}

// --- (h) bad configuration -----------------------------------------------------------------------

template <class F>
std::string config_error_of(F f) {
    try {
        f();
    } catch (const rategov::config_error& e) {
        return e.what();
    }
    return "<no config_error>";
}

TEST(RedisConfig, BadValuesThrowConfigErrorNamingThem) {
    using rr::endpoint;
    EXPECT_NE(config_error_of([] {
                  rr::connection c(endpoint{"127.0.0.1", 0, 50ms, 50ms});
              }).find("port 0"),
              std::string::npos);
    EXPECT_NE(config_error_of([] {
                  rr::connection c(endpoint{"127.0.0.1", 70000, 50ms, 50ms});
              }).find("70000"),
              std::string::npos);
    EXPECT_NE(config_error_of([] {
                  rr::connection c(endpoint{"", 6379, 50ms, 50ms});
              }).find("empty host"),
              std::string::npos);
    EXPECT_NE(config_error_of([] {
                  rr::connection c(endpoint{"127.0.0.1", 6379, 0ms, 50ms});
              }).find("connect_timeout of 0"),
              std::string::npos);
    EXPECT_NE(config_error_of([] {
                  rr::connection c(endpoint{"127.0.0.1", 6379, 50ms, -5ms});
              }).find("command_timeout of -5"),
              std::string::npos);

    using one = rategov::metrics<m::requests>;
    const quota q = rategov::per_second(10);
    EXPECT_NE(config_error_of([&] { rr::governor<one> g(rr::options{}, "", q); }).find("empty key"),
              std::string::npos);
    rr::options o;
    o.expected_processes = 0;
    EXPECT_NE(config_error_of([&] { rr::governor<one> g(o, "k", q); }).find("expected_processes 0"),
              std::string::npos);
    o = {};
    o.retry_interval = 0ms;
    EXPECT_NE(
        config_error_of([&] { rr::leased_governor<one> g(o, "k", q); }).find("retry_interval of 0"),
        std::string::npos);
    o = {};
    o.lease_horizon = -1ms;
    EXPECT_NE(
        config_error_of([&] { rr::leased_governor<one> g(o, "k", q); }).find("lease_horizon of -1"),
        std::string::npos);
    o = {};
    o.expiry_margin = std::chrono::milliseconds(std::int64_t{1} << 41); // PEXPIRE 2e12: kept exact
    EXPECT_NE(
        config_error_of([&] { rr::governor<one> g(o, "k", q); }).find("expiry_margin of 2199"),
        std::string::npos);
    // 2^49 tokens at 1 per ns: a burst passes 2^48 units (a level holds 16 bursts, 2^52).
    const quota huge = rategov::per_second(1'000'000'000).with_burst(std::uint64_t{1} << 49);
    EXPECT_NE(config_error_of([&] { rr::governor<one> g(rr::options{}, "k", huge); }).find("2^48"),
              std::string::npos);
    // set_limit reports an unrepresentable quota by its return value.
    rr::governor<one> g(rr::options{}, "k", q);
    EXPECT_FALSE(g.set_limit(0, huge));
    EXPECT_FALSE(g.set_limit(5, q));
    EXPECT_EQ(g.limit(0), q);
}

} // namespace
