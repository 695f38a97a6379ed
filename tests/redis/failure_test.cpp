// Redis stalled (SIGSTOP) or unreachable: every failure policy answers within the command
// timeout plus slack, for both governors; fail_closed denies, fail_open grants, local_share
// grants at most its share; after the stall, calls go to Redis again. Real time here: the
// point is the timeouts (rates are never checked against real time).
#include <chrono>
#include <cstdint>
#include <memory>
#include <thread>

#include <rategov/redis/redis.hpp>

#include <gtest/gtest.h>

#include "redis_test_util.hpp"

namespace {

using namespace rtest;
using rategov::amount;
using one = rategov::metrics<m::requests>;
using cost_t = rategov::cost<one>;
const cost_t one_request{amount<m::requests>{1}};

// 100 per second, burst 100; 4 expected processes: a local share of 25.
const rategov::quota limit = rategov::per_second(100);
constexpr std::uint64_t share = 25;

template <class G>
struct RedisFailure : server_fixture {
    rr::options stall_opts(rr::failure_policy p) const {
        rr::options o = opts(p);
        o.endpoint.connect_timeout = 50ms;
        o.endpoint.command_timeout = 50ms;
        o.retry_interval = 100ms;
        o.expected_processes = 4;
        return o;
    }

    /// Calls try_acquire `n` times at one instant; checks each answers within 1 s; returns
    /// how many were granted.
    std::uint64_t granted_of(G& gov, int n) {
        std::uint64_t granted = 0;
        for (int i = 0; i < n; ++i) {
            const auto start = std::chrono::steady_clock::now();
            const auto r = gov.try_acquire(one_request);
            EXPECT_LT(std::chrono::steady_clock::now() - start, 1s) << "call " << i;
            if (r)
                ++granted;
        }
        return granted;
    }

    void run(rr::failure_policy p, bool unreachable) {
        std::unique_ptr<G> gov;
        std::uint64_t pooled = 0;
        if (unreachable) {
            const rr::options o = stall_opts(p);
            server.reset(); // nothing listens on the port any more
            gov = std::make_unique<G>(clock, o, "failure", limit);
        } else {
            gov = std::make_unique<G>(clock, stall_opts(p), "failure", limit);
            ASSERT_TRUE(gov->try_acquire(one_request)); // Redis answers
            if constexpr (requires { gov->leased(); })
                pooled = static_cast<std::uint64_t>(gov->leased()[0]);
            server->pause();
        }
        const auto first = std::chrono::steady_clock::now();
        const auto r = gov->try_acquire(one_request);
        EXPECT_LT(std::chrono::steady_clock::now() - first, 1s);
        const std::uint64_t granted = (r ? 1u : 0u) + granted_of(*gov, 199);
        switch (p) {
        case rr::failure_policy::fail_closed:
            EXPECT_EQ(granted, pooled) << "only tokens leased before the stall";
            EXPECT_FALSE(gov->try_acquire(one_request));
            EXPECT_EQ(gov->try_acquire(one_request).ready_at, clock.now() + 100ms);
            break;
        case rr::failure_policy::fail_open:
            EXPECT_EQ(granted, 200u);
            break;
        case rr::failure_policy::local_share:
            EXPECT_EQ(granted, share + pooled);
            break;
        }
        const auto st = gov->status();
        EXPECT_FALSE(st.healthy);
        EXPECT_GE(st.failures, 1u);
        EXPECT_LE(st.failures, 3u) << "the circuit breaker keeps calls away from Redis";
        EXPECT_GE(st.fallbacks, 100u);
        if (unreachable) {
            EXPECT_EQ(st.last_error.kind, rr::error_kind::unreachable);
            return;
        }
        EXPECT_EQ(st.last_error.kind, rr::error_kind::timeout);
        server->resume();
        std::this_thread::sleep_for(150ms); // a real wait: past the retry interval
        const std::uint64_t before = gov->status().round_trips;
        clock.advance(10s); // the bucket is full again
        if constexpr (requires { gov->return_unused(); }) {
            ASSERT_TRUE(gov->return_unused());
        }
        EXPECT_TRUE(gov->try_acquire(one_request));
        EXPECT_GT(gov->status().round_trips, before) << "Redis answers again";
        EXPECT_TRUE(gov->status().healthy);
    }
};

using kinds =
    ::testing::Types<rr::governor<one, manual_clock>, rr::leased_governor<one, manual_clock>>;
TYPED_TEST_SUITE(RedisFailure, kinds);

TYPED_TEST(RedisFailure, StallFailClosed) {
    this->run(rr::failure_policy::fail_closed, false);
}
TYPED_TEST(RedisFailure, StallFailOpen) {
    this->run(rr::failure_policy::fail_open, false);
}
TYPED_TEST(RedisFailure, StallLocalShare) {
    this->run(rr::failure_policy::local_share, false);
}
TYPED_TEST(RedisFailure, UnreachableFailClosed) {
    this->run(rr::failure_policy::fail_closed, true);
}
TYPED_TEST(RedisFailure, UnreachableFailOpen) {
    this->run(rr::failure_policy::fail_open, true);
}
TYPED_TEST(RedisFailure, UnreachableLocalShare) {
    this->run(rr::failure_policy::local_share, true);
}

TEST(RedisFailureDefaults, DefaultPolicyIsLocalShare) {
    EXPECT_EQ(rr::options{}.on_failure, rr::failure_policy::local_share);
}

} // namespace
