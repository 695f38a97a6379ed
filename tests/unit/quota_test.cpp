// quota: the makers, burst, display, equality, and validation (every bad value throws
// config_error naming the value).
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <string>

#include <rategov/quota/quota.hpp>

#include <gtest/gtest.h>

namespace {

using namespace std::chrono_literals;
using rategov::quota;
using std::chrono::nanoseconds;

constexpr std::uint64_t max_burst = quota::max_burst;

/// Runs `make` and returns what() of the config_error it throws, or a marker.
template <class F>
std::string config_error_of(F make) {
    try {
        (void)make();
    } catch (const rategov::config_error& e) {
        return e.what();
    } catch (...) {
        return "<an exception other than config_error>";
    }
    return "<no exception>";
}

/// Expects `make` to throw config_error whose message contains every one of `parts`.
template <class F>
void expect_config_error(F make, std::initializer_list<std::string> parts) {
    const std::string what = config_error_of(make);
    EXPECT_NE(what, "<no exception>");
    EXPECT_NE(what, "<an exception other than config_error>");
    for (const auto& part : parts)
        EXPECT_NE(what.find(part), std::string::npos)
            << "message \"" << what << "\" does not contain \"" << part << "\"";
}

// --- the makers -----------------------------------------------------------------------------

TEST(Quota, PerSecond) {
    const auto q = rategov::per_second(10);
    EXPECT_EQ(q.count(), 10u);
    EXPECT_EQ(q.period(), 1s);
    EXPECT_EQ(q.burst(), 10u);
}

TEST(Quota, PerMinute) {
    const auto q = rategov::per_minute(3'600'000);
    EXPECT_EQ(q.count(), 3'600'000u);
    EXPECT_EQ(q.period(), 60s);
    EXPECT_EQ(q.burst(), 3'600'000u);
}

TEST(Quota, PerHour) {
    const auto q = rategov::per_hour(7);
    EXPECT_EQ(q.count(), 7u);
    EXPECT_EQ(q.period(), 3600s);
    EXPECT_EQ(q.burst(), 7u);
}

TEST(Quota, PerDuration) {
    const auto q = rategov::per(10s, 50);
    EXPECT_EQ(q.count(), 50u);
    EXPECT_EQ(q.period(), 10s);
    EXPECT_EQ(q.burst(), 50u);
    EXPECT_EQ(rategov::per(1500ms, 3).period(), 1500ms);
    EXPECT_EQ(rategov::per(90min, 1).period(), 5400s);
    EXPECT_EQ(rategov::per(std::chrono::duration<double>(0.5), 2).period(), 500ms);
    EXPECT_EQ(rategov::per(std::chrono::duration<double, std::milli>(2.5), 1).period(),
              2'500'000ns);
}

TEST(Quota, AcceptsAnyIntegerType) {
    EXPECT_EQ(rategov::per_second(std::uint8_t{200}).count(), 200u);
    EXPECT_EQ(rategov::per_second(short{300}).count(), 300u);
    EXPECT_EQ(rategov::per_minute(std::size_t{7}).count(), 7u);
    EXPECT_EQ(rategov::per_hour(5LL).count(), 5u);
    EXPECT_EQ(rategov::per(1s, std::uint64_t{1'000'000'000}).count(), 1'000'000'000u);
}

TEST(Quota, DefaultBurstIsTheCount) {
    for (const std::uint64_t n : {std::uint64_t{1}, std::uint64_t{60}, std::uint64_t{3'600'000}})
        EXPECT_EQ(rategov::per_minute(n).burst(), n);
    EXPECT_EQ(quota(42, 1s).burst(), 42u);
}

TEST(Quota, WithBurstChangesOnlyTheBurst) {
    const auto base = rategov::per_minute(36'000);
    const auto q = base.with_burst(6'000);
    EXPECT_EQ(q.count(), 36'000u);
    EXPECT_EQ(q.period(), 60s);
    EXPECT_EQ(q.burst(), 6'000u);
    EXPECT_EQ(base.burst(), 36'000u); // the original is unchanged
    // A burst may also exceed the count.
    EXPECT_EQ(rategov::per_second(1).with_burst(100).burst(), 100u);
    EXPECT_EQ(q.with_burst(1).burst(), 1u);
}

TEST(Quota, BoundaryValuesAreAccepted) {
    EXPECT_EQ(rategov::per(1ns, 1).count(), 1u); // 10^9 per second: exactly the finest rate
    EXPECT_EQ(rategov::per(1s, 1'000'000'000).count(), 1'000'000'000u);
    EXPECT_EQ(rategov::per(1ns, 1).with_burst(max_burst).burst(), max_burst);
    // The largest count: one per nanosecond over the longest period.
    const auto n = static_cast<std::uint64_t>(quota::max_period.count());
    const auto big = rategov::per(quota::max_period, n);
    EXPECT_EQ(big.count(), n);
    EXPECT_EQ(big.burst(), n);
}

TEST(Quota, LongestPeriodIsAccepted) {
    // "a period longer than max_period throws": max_period itself, and anything shorter, is a
    // valid period, with the default burst.
    EXPECT_EQ(rategov::per(quota::max_period, 1).period(), quota::max_period);
    EXPECT_EQ(rategov::per(quota::max_period / 2, 1).period(), quota::max_period / 2);
    EXPECT_EQ(quota(3, quota::max_period).period(), quota::max_period);
}

TEST(Quota, PerSecondValue) {
    EXPECT_DOUBLE_EQ(rategov::per_minute(60).per_second_value(), 1.0);
    EXPECT_DOUBLE_EQ(rategov::per(500ms, 1).per_second_value(), 2.0);
    EXPECT_DOUBLE_EQ(rategov::per_hour(36).per_second_value(), 0.01);
    EXPECT_DOUBLE_EQ(rategov::per(1ns, 1).per_second_value(), 1e9);
}

TEST(Quota, UsableInConstantExpressions) {
    static_assert(rategov::per_second(10).count() == 10);
    static_assert(rategov::per_minute(36'000).with_burst(6'000).burst() == 6'000);
    static_assert(rategov::per(2s, 5).period() == 2s);
    constexpr auto q = rategov::per_hour(3);
    EXPECT_EQ(q, rategov::per_hour(3));
}

// --- display and equality ----------------------------------------------------------------------

TEST(Quota, ToStringPicksTheLargestExactUnit) {
    EXPECT_EQ(rategov::per_second(10).to_string(), "10 per 1s, burst 10");
    EXPECT_EQ(rategov::per_minute(3'600'000).to_string(), "3600000 per 1min, burst 3600000");
    EXPECT_EQ(rategov::per_hour(2).to_string(), "2 per 1h, burst 2");
    EXPECT_EQ(rategov::per(24h, 1).to_string(), "1 per 24h, burst 1");
    EXPECT_EQ(rategov::per(90min, 5).to_string(), "5 per 90min, burst 5");
    EXPECT_EQ(rategov::per(90s, 5).to_string(), "5 per 90s, burst 5");
    EXPECT_EQ(rategov::per(1500ms, 3).to_string(), "3 per 1500ms, burst 3");
    EXPECT_EQ(rategov::per(1500ns, 3).to_string(), "3 per 1500ns, burst 3");
    EXPECT_EQ(rategov::per(1ns, 1).to_string(), "1 per 1ns, burst 1");
}

TEST(Quota, ToStringShowsTheBurst) {
    EXPECT_EQ(rategov::per_minute(36'000).with_burst(6'000).to_string(),
              "36000 per 1min, burst 6000");
    EXPECT_EQ(rategov::per(1ns, 1).with_burst(max_burst).to_string(),
              "1 per 1ns, burst " + std::to_string(max_burst));
}

TEST(Quota, Equality) {
    EXPECT_EQ(rategov::per_second(60), rategov::per(1s, 60));
    EXPECT_EQ(rategov::per_minute(60), rategov::per(60s, 60));
    EXPECT_EQ(rategov::per_minute(60), quota(60, 60s));
    EXPECT_EQ(rategov::per_second(10).with_burst(5), rategov::per_second(10).with_burst(5));
    // Same rate, different burst.
    EXPECT_NE(rategov::per_second(1), rategov::per_minute(60));
    EXPECT_NE(rategov::per_minute(60), rategov::per_minute(60).with_burst(1));
    // Same count and burst, different period.
    EXPECT_NE(rategov::per_second(5), rategov::per_minute(5));
    // Same period and burst, different count.
    EXPECT_NE(rategov::per_second(5).with_burst(5), rategov::per_second(6).with_burst(5));
    EXPECT_FALSE(rategov::per_second(5) == rategov::per_second(6));
    EXPECT_TRUE(rategov::per_second(5) != rategov::per_second(6));
}

// --- validation
// -----------------------------------------------------------------------------------

TEST(QuotaValidation, ZeroCount) {
    expect_config_error([] { return rategov::per_second(0); }, {"per_second", "0"});
    expect_config_error([] { return rategov::per_minute(0u); }, {"per_minute", "0"});
    expect_config_error([] { return rategov::per_hour(0LL); }, {"per_hour", "0"});
    expect_config_error([] { return rategov::per(1s, 0); }, {"0"});
    expect_config_error([] { return quota(0, 1s); }, {"count 0"});
}

TEST(QuotaValidation, NegativeCountIsNamedNotWrapped) {
    expect_config_error([] { return rategov::per_minute(-5); }, {"per_minute", "-5"});
    expect_config_error([] { return rategov::per_second(-1); }, {"per_second", "-1"});
    expect_config_error([] { return rategov::per_hour(-3LL); }, {"per_hour", "-3"});
    expect_config_error([] { return rategov::per(1s, short{-7}); }, {"-7"});
    expect_config_error([] { return rategov::per_second(std::int64_t{-9'000'000'000}); },
                        {"-9000000000"});
}

TEST(QuotaValidation, ZeroOrNegativePeriodThrows) {
    expect_config_error([] { return rategov::per(0s, 7); }, {"period"});
    expect_config_error([] { return rategov::per(-2s, 7); }, {"period"});
    expect_config_error([] { return rategov::per(-1ns, 7); }, {"period"});
    expect_config_error([] { return rategov::per(std::chrono::duration<double>(-0.5), 7); },
                        {"period"});
    // Made directly, the period is named in nanoseconds.
    expect_config_error([] { return quota(1, 0ns); }, {"period", "0 ns"});
    expect_config_error([] { return quota(1, -5ns); }, {"period", "-5 ns"});
}

// per() must name the bad period like quota's constructor does (see the class comment: "throw
// config_error naming the value").
TEST(QuotaValidation, PerNamesAZeroOrNegativePeriod) {
    expect_config_error([] { return rategov::per(0s, 7); }, {"0"});
    expect_config_error([] { return rategov::per(-2s, 7); }, {"-2"});
    expect_config_error([] { return rategov::per(-1500ms, 7); }, {"-1"});
}

TEST(QuotaValidation, PeriodAboveTheLongestThrows) {
    const std::string longer = std::to_string((quota::max_period + 1ns).count());
    expect_config_error([] { return rategov::per(quota::max_period + 1ns, 1); }, {"period"});
    expect_config_error([] { return rategov::per(quota::max_period + 1h, 1000); }, {"period"});
    expect_config_error([] { return rategov::per(std::chrono::hours::max(), 1); }, {"period"});
    expect_config_error([] { return rategov::per(std::chrono::duration<double>(1e300), 1); },
                        {"period"});
    // Made directly, the period is named in nanoseconds.
    expect_config_error([] { return quota(1, quota::max_period + 1ns); }, {"period", longer});
}

TEST(QuotaValidation, PerNamesAPeriodAboveTheLongest) {
    // max_period + 1 h: named in hours or in nanoseconds.
    const auto period = quota::max_period + 1h;
    const std::string what = config_error_of([&] { return rategov::per(period, 1); });
    const std::string in_hours =
        std::to_string(std::chrono::floor<std::chrono::hours>(period).count());
    const std::string in_ns = std::to_string(period.count());
    EXPECT_TRUE(what.find(in_hours) != std::string::npos || what.find(in_ns) != std::string::npos)
        << what << " names neither " << in_hours << " (h) nor " << in_ns << " (ns)";
}

TEST(QuotaValidation, RateAboveOnePerNanosecondThrows) {
    expect_config_error([] { return rategov::per(1ns, 2); }, {"2", "1 ns", "10^9"});
    expect_config_error([] { return rategov::per(1s, 1'000'000'001); }, {"1000000001"});
    expect_config_error([] { return rategov::per(10ns, 11); }, {"11", "10 ns"});
    expect_config_error([] { return quota(3, 2ns); }, {"3", "2 ns"});
}

TEST(QuotaValidation, ZeroBurstThrows) {
    expect_config_error([] { return rategov::per_second(10).with_burst(0); }, {"burst 0"});
}

TEST(QuotaValidation, BurstAboveTheLargestThrows) {
    const std::string over = std::to_string(max_burst + 1);
    expect_config_error([] { return rategov::per(1ns, 1).with_burst(max_burst + 1); },
                        {"burst", over});
    expect_config_error([] { return rategov::per_second(10).with_burst(max_burst + 1); },
                        {"burst", over});
    expect_config_error([] { return rategov::per_second(10).with_burst(~std::uint64_t{0}); },
                        {"burst", "18446744073709551615"});
}

TEST(QuotaValidation, CountAboveTheLargestThrows) {
    const std::string over = std::to_string(max_burst + 1);
    expect_config_error([] { return rategov::per_second(max_burst + 1); }, {"count", over});
    expect_config_error([] { return quota(max_burst + 1, quota::max_period); }, {"count", over});
    expect_config_error([] { return quota(~std::uint64_t{0}, 1s); },
                        {"count", "18446744073709551615"});
}

TEST(QuotaValidation, FloatingPeriodThatTruncatesToZeroNanoseconds) {
    expect_config_error([] { return rategov::per(std::chrono::duration<double>(1e-10), 1); },
                        {"period", "0 ns"});
    expect_config_error(
        [] { return rategov::per(std::chrono::duration<double, std::micro>(0.0009), 3); },
        {"period", "0 ns"});
}

TEST(QuotaValidation, FailedWithBurstLeavesTheOriginalIntact) {
    const auto q = rategov::per_second(10).with_burst(4);
    EXPECT_THROW((void)q.with_burst(0), rategov::config_error);
    EXPECT_EQ(q.burst(), 4u);
    EXPECT_EQ(q.count(), 10u);
}

TEST(QuotaValidation, ErrorIsAnInvalidArgument) {
    EXPECT_THROW((void)rategov::per_minute(0), std::invalid_argument);
    EXPECT_THROW((void)rategov::per(0s, 1), std::invalid_argument);
}

} // namespace
