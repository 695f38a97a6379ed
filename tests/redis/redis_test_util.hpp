// Shared by the Redis tests: a fixture that starts its own redis-server, and options for a
// governor on it that reads the caller's (manual) clock.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include <rategov/redis/redis.hpp>
#include <rategov/testing/manual_clock.hpp>
#include <rategov/testing/redis_server.hpp>

#include <gtest/gtest.h>

namespace rtest {

using namespace std::chrono_literals;
using manual_clock = rategov::testing::manual_clock;
using time_point = manual_clock::time_point;
namespace m = rategov::metric;
namespace rr = rategov::redis;

/// The time tests start at (µs since the manual clock's epoch: well above 0).
inline const time_point t0 = time_point(std::chrono::seconds(1000));

struct server_fixture : ::testing::Test {
    std::unique_ptr<rategov::testing::redis_server> server;
    manual_clock clock{t0};

    virtual rategov::testing::redis_server_options server_options() const { return {}; }

    void SetUp() override {
        if (!rategov::testing::redis_server::available())
            GTEST_SKIP() << "redis-server not found";
        server = std::make_unique<rategov::testing::redis_server>(server_options());
    }

    /// Options for a governor on this server in client time, generous timeouts (the
    /// sanitizers slow everything down).
    [[nodiscard]] rr::options opts(rr::failure_policy p = rr::failure_policy::fail_closed) const {
        rr::options o;
        o.endpoint.port = server->port();
        o.endpoint.connect_timeout = 2000ms;
        o.endpoint.command_timeout = 2000ms;
        o.on_failure = p;
        o.time = rr::time_source::client;
        return o;
    }
};

} // namespace rtest
