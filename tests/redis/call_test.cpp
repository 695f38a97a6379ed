// rategov::call, call_machine and adaptive_limits against both Redis governors: the same
// interface as rategov::governor, checked at compile time and by running a call with a fake
// transport (virtual time, a 429 then a success that reports its usage).
#include <array>
#include <chrono>
#include <cstdint>

#include <rategov/client/call.hpp>
#include <rategov/redis/redis.hpp>

#include <gtest/gtest.h>

#include "redis_test_util.hpp"

namespace {

using namespace rtest;
using rategov::amount;
using two = rategov::metrics<m::requests, m::generated>;
using cost_t = rategov::cost<two>;
using resp_t = rategov::response<two>;
using plain_t = rr::governor<two, manual_clock>;
using leased_t = rr::leased_governor<two, manual_clock>;

struct request_t {
    int id = 0;
};

/// Answers 429 to the first attempt, then 200 with a usage of {1, 30}.
struct fake_transport {
    unsigned calls = 0;
    resp_t operator()(const request_t&, const rategov::attempt_info<time_point>&) {
        resp_t r;
        r.status = ++calls == 1 ? 429 : 200;
        if (r.status == 200)
            r.usage = cost_t{amount<m::requests>{1}, amount<m::generated>{30}};
        return r;
    }
};

/// What call(), call_machine and adaptive_limits use of a governor.
template <class G>
concept governs = requires(G& g, const G& cg, const typename G::cost_type& c,
                           typename G::time_point at, typename G::duration d,
                           const typename G::receipts& rc, rategov::quota q) {
    typename G::metrics_type;
    typename G::clock_type;
    typename G::result;
    { g.try_acquire(c, rategov::traffic_class::regular) } -> std::same_as<typename G::result>;
    { g.try_acquire_at(c, at) } -> std::same_as<typename G::result>;
    {
        g.reserve(c, d, rategov::traffic_class::regular)
        } -> std::same_as<typename G::reservation_type>;
    { g.reserve_at(c, at, d) } -> std::same_as<typename G::reservation_type>;
    g.refund(c);
    g.charge(c);
    g.cap_available(std::size_t{0}, std::uint64_t{1});
    g.reconcile(c, c, rc);
    g.give_back(c, rc);
    g.set_limit(std::size_t{0}, q, rategov::inheritance::keep);
    { cg.limit(std::size_t{0}) } -> std::same_as<rategov::quota>;
    { g.available(std::size_t{0}) } -> std::same_as<std::uint64_t>;
    g.availability();
    g.debts();
    cg.limits();
    { cg.clock() } -> std::same_as<const typename G::clock_type&>;
    { cg.now() } -> std::same_as<typename G::time_point>;
};

static_assert(governs<rategov::governor<two, manual_clock>>);
static_assert(governs<plain_t>);
static_assert(governs<leased_t>);
static_assert(std::same_as<plain_t::reservation_type,
                           rategov::reservation<plain_t, rategov::refund_on_drop>>);
static_assert(std::same_as<leased_t::result, rategov::governor_result<time_point>>);

template <class G>
using call_of =
    decltype(rategov::call(std::declval<G&>(), std::declval<const request_t&>(),
                           std::declval<const cost_t&>(), std::declval<fake_transport&>()));
static_assert(requires { typename call_of<plain_t>; });
static_assert(requires { typename call_of<leased_t>; });
static_assert(requires { sizeof(rategov::call_machine<plain_t>); });
static_assert(requires { sizeof(rategov::adaptive_limits<leased_t>); });

template <class G>
struct RedisCall : server_fixture {};
using kinds = ::testing::Types<plain_t, leased_t>;
TYPED_TEST_SUITE(RedisCall, kinds);

TYPED_TEST(RedisCall, CallRetriesA429AndSettlesTheUsage) {
    TypeParam gov(this->clock, this->opts(), "call", rategov::per_second(10),
                  rategov::per_second(1000));
    rategov::adaptive_limits<TypeParam> adaptive(gov);
    rategov::call_options<TypeParam> o;
    o.seed = 42;
    o.adaptive = &adaptive;
    fake_transport t;
    const cost_t estimate{amount<m::requests>{1}, amount<m::generated>{100}};
    const auto r = rategov::call(gov, request_t{1}, estimate, t, o);
    EXPECT_EQ(r.status, rategov::call_status::success);
    EXPECT_EQ(r.attempts, 2u);
    EXPECT_EQ(t.calls, 2u);
    EXPECT_GE(gov.status().round_trips, 2u);
    if constexpr (requires { gov.return_unused(); }) {
        EXPECT_TRUE(gov.return_unused());
    }
    // The 429 without usage was refunded, then emptied nothing it did not report; the
    // success kept 30 of the 100 generated tokens estimated.
    EXPECT_LE(gov.availability()[1], 1000u - 30u);
    EXPECT_EQ(gov.status().failures, 0u);
}

} // namespace
