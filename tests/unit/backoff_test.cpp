// Backoff policies and the retry budget: exact formulas, bounds, distributions (chi-square and
// Kolmogorov–Smirnov with fixed seeds, so every run draws the same numbers), configuration
// errors, server hints, and the budget's arithmetic under a sustained 503 storm.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include <rategov/backoff/backoff.hpp>
#include <rategov/backoff/retry_budget.hpp>
#include <rategov/config.hpp>

#include <gtest/gtest.h>

namespace {

using namespace std::chrono;
namespace bo = rategov::backoff;
namespace fb = rategov::feedback;
using bo::splitmix64;

constexpr std::uint64_t u64_max = std::numeric_limits<std::uint64_t>::max();

std::uint64_t ns_of(nanoseconds d) {
    EXPECT_GE(d.count(), 0) << "a policy returned a negative delay";
    return static_cast<std::uint64_t>(d.count());
}

/// The message of the config_error that `f` throws; a test failure if it throws none.
template <class F>
std::string config_error_message(F f) {
    try {
        f();
    } catch (const rategov::config_error& e) {
        return e.what();
    }
    ADD_FAILURE() << "no config_error thrown";
    return {};
}

#define EXPECT_CONTAINS(haystack, needle)                                                          \
    EXPECT_NE(std::string(haystack).find(needle), std::string::npos)                               \
        << "\"" << (haystack) << "\" does not contain \"" << (needle) << "\""

/// Kolmogorov–Smirnov statistic D of `samples` against the continuous uniform law on
/// [lo, hi] (lo < hi).
double ks_uniform(std::vector<double> samples, double lo, double hi) {
    std::sort(samples.begin(), samples.end());
    const double n = static_cast<double>(samples.size());
    double d = 0;
    for (std::size_t i = 0; i < samples.size(); ++i) {
        const double f = std::clamp((samples[i] - lo) / (hi - lo), 0.0, 1.0);
        const double below = static_cast<double>(i) / n, above = static_cast<double>(i + 1) / n;
        d = std::max({d, above - f, f - below});
    }
    return d;
}

/// The KS critical value at α = 0.01 for n samples (large-n approximation).
double ks_critical(std::size_t n) {
    return 1.63 / std::sqrt(static_cast<double>(n));
}

/// Pearson's chi-square statistic of `counts` against equal expected counts.
double chi_square(const std::vector<std::uint64_t>& counts) {
    std::uint64_t total = 0;
    for (auto c : counts)
        total += c;
    const double expected = static_cast<double>(total) / static_cast<double>(counts.size());
    double chi = 0;
    for (auto c : counts) {
        const double diff = static_cast<double>(c) - expected;
        chi += diff * diff / expected;
    }
    return chi;
}

constexpr double chi2_9dof_p001 = 27.88; // 9 degrees of freedom, p = 0.001
constexpr double chi2_2dof_p001 = 13.82; // 2 degrees of freedom, p = 0.001

/// `n` delays of `p` for retry `retry` after `previous`, as doubles in nanoseconds.
template <class P, class G>
std::vector<double> draw(const P& p, unsigned retry, nanoseconds previous, G& g, std::size_t n) {
    std::vector<double> out;
    out.reserve(n);
    for (std::size_t i = 0; i < n; ++i)
        out.push_back(static_cast<double>(p.delay(retry, previous, g).count()));
    return out;
}

constexpr std::size_t ks_draws = 20'000;

// --- splitmix64 -------------------------------------------------------------------------------

static_assert(std::uniform_random_bit_generator<splitmix64>);
static_assert(bo::random_source<splitmix64>);
static_assert(bo::random_source<std::mt19937>);
static_assert(bo::random_source<std::mt19937_64>);
static_assert(!bo::random_source<int>);
static_assert(splitmix64::min() == 0 && splitmix64::max() == u64_max);
static_assert(std::is_same_v<splitmix64::result_type, std::uint64_t>);
// constexpr: usable at compile time.
static_assert([] {
    splitmix64 g(0);
    return g();
}() == 0xE220A8397B1DCDAFULL);

TEST(Splitmix64, SeedZeroGivesTheReferenceSequence) {
    splitmix64 g(0);
    EXPECT_EQ(g(), 0xE220A8397B1DCDAFULL);
    EXPECT_EQ(g(), 0x6E789E6AA1B965F4ULL);
    EXPECT_EQ(g(), 0x06C45D188009454FULL);
    EXPECT_EQ(g(), 0xF88BB8A8724C81ECULL);
    EXPECT_EQ(g(), 0x1B39896A51A8749BULL);
}

TEST(Splitmix64, DefaultSeedIsZeroAndOtherSeedsDiffer) {
    splitmix64 by_default, zero(0), seven(7);
    EXPECT_EQ(by_default(), zero());
    EXPECT_EQ(seven(), 0x63CBE1E459320DD7ULL);
    EXPECT_EQ(seven(), 0x044C3CD7F43C661CULL);
    EXPECT_EQ(seven(), 0xE6984080BAB12A02ULL);
}

TEST(Splitmix64, CopiesReplayTheSameSequence) {
    splitmix64 a(123);
    (void)a();
    splitmix64 b = a;
    for (int i = 0; i < 100; ++i)
        ASSERT_EQ(a(), b());
}

// --- uniform ----------------------------------------------------------------------------------

TEST(Uniform, EqualBoundsReturnTheBoundWithoutDrawing) {
    splitmix64 g(1), untouched(1);
    EXPECT_EQ(bo::uniform(g, 0, 0), 0u);
    EXPECT_EQ(bo::uniform(g, 42, 42), 42u);
    EXPECT_EQ(bo::uniform(g, u64_max, u64_max), u64_max);
    EXPECT_EQ(g(), untouched()) << "uniform(lo, lo) consumed random bits";
    std::mt19937 mt(5);
    EXPECT_EQ(bo::uniform(mt, 9, 9), 9u);
}

TEST(Uniform, KnownValuesForAFixedSeed) {
    // Lemire's method gives the same numbers on every platform: these were computed from the
    // reference SplitMix64 and the multiply-and-reject formula.
    splitmix64 g(42);
    const std::uint64_t expected[] = {7, 1, 2, 3, 0, 8, 2, 8};
    for (auto e : expected)
        EXPECT_EQ(bo::uniform(g, 0, 9), e);
    splitmix64 h(42);
    EXPECT_EQ(bo::uniform(h, 1000, 1'000'000), 741'824u);
    EXPECT_EQ(bo::uniform(h, 1000, 1'000'000), 160'750u);
    EXPECT_EQ(bo::uniform(h, 1000, 1'000'000), 279'322u);
    EXPECT_EQ(bo::uniform(h, 1000, 1'000'000), 344'846u);
}

TEST(Uniform, ResultsStayWithinBoundsAndReachBothEnds) {
    splitmix64 g(2024);
    const std::pair<std::uint64_t, std::uint64_t> ranges[] = {
        {0, 1}, {5, 7}, {100, 199}, {u64_max - 3, u64_max}, {0, 2}};
    for (auto [lo, hi] : ranges) {
        std::set<std::uint64_t> seen;
        for (int i = 0; i < 2000; ++i) {
            const auto x = bo::uniform(g, lo, hi);
            ASSERT_GE(x, lo);
            ASSERT_LE(x, hi);
            seen.insert(x);
        }
        EXPECT_EQ(seen.size(), hi - lo + 1)
            << "not every value of [" << lo << ", " << hi << "] came up in 2000 draws";
    }
}

TEST(Uniform, FullSixtyFourBitRangeIsTheGeneratorItself) {
    splitmix64 g(77), copy(77);
    for (int i = 0; i < 100; ++i)
        ASSERT_EQ(bo::uniform(g, 0, u64_max), copy());
}

TEST(Uniform, AlmostFullRangeStaysWithinBounds) {
    splitmix64 g(78);
    bool high = false, low = false;
    for (int i = 0; i < 10'000; ++i) {
        const auto x = bo::uniform(g, 1, u64_max);
        ASSERT_GE(x, 1u);
        high = high || x > u64_max / 2;
        low = low || x <= u64_max / 2;
    }
    EXPECT_TRUE(high && low);
}

TEST(Uniform, ChiSquareOverTenBuckets) {
    splitmix64 g(0xC0FFEE);
    std::vector<std::uint64_t> counts(10);
    for (int i = 0; i < 100'000; ++i)
        ++counts[bo::uniform(g, 0, 9)];
    EXPECT_LT(chi_square(counts), chi2_9dof_p001);
    // Wide range folded into ten buckets by value.
    std::vector<std::uint64_t> wide(10);
    const std::uint64_t lo = 1'000'000, span = 999'999'999'990ULL;
    for (int i = 0; i < 100'000; ++i)
        ++wide[(bo::uniform(g, lo, lo + span - 1) - lo) / (span / 10)];
    EXPECT_LT(chi_square(wide), chi2_9dof_p001);
}

TEST(Uniform, RejectionRemovesTheBiasOfALargeRange) {
    // range = 3 · 2^62: a multiply-shift without rejection would give residue 0 (mod 3) half of
    // the time instead of a third.
    splitmix64 g(31337);
    const std::uint64_t hi = 3 * (std::uint64_t{1} << 62) - 1;
    std::vector<std::uint64_t> residues(3);
    for (int i = 0; i < 60'000; ++i)
        ++residues[bo::uniform(g, 0, hi) % 3];
    EXPECT_LT(chi_square(residues), chi2_2dof_p001)
        << residues[0] << " / " << residues[1] << " / " << residues[2];
}

TEST(Uniform, ThirtyTwoBitGeneratorPath) {
    std::mt19937 mt(12345);
    std::mt19937 reference(12345);
    for (int i = 0; i < 1000; ++i) {
        const auto x = bo::uniform(mt, 10, 1'000'000'000'000ULL);
        ASSERT_EQ(
            x, std::uniform_int_distribution<std::uint64_t>(10, 1'000'000'000'000ULL)(reference));
        ASSERT_GE(x, 10u);
        ASSERT_LE(x, 1'000'000'000'000ULL);
    }
    bool high = false;
    for (int i = 0; i < 1000; ++i)
        high = high || bo::uniform(mt, 0, u64_max) > (std::uint64_t{1} << 33);
    EXPECT_TRUE(high) << "a 32-bit generator must still fill 64 bits";
    std::vector<std::uint64_t> counts(10);
    for (int i = 0; i < 100'000; ++i)
        ++counts[bo::uniform(mt, 0, 9)];
    EXPECT_LT(chi_square(counts), chi2_9dof_p001);
}

// --- the statistical helpers can fail ---------------------------------------------------------

TEST(StatisticalHelpers, RejectWhatIsNotUniform) {
    splitmix64 g(9);
    std::vector<double> squared;
    for (std::size_t i = 0; i < ks_draws; ++i) {
        const double u = static_cast<double>(bo::uniform(g, 0, 1'000'000)) / 1e6;
        squared.push_back(u * u);
    }
    EXPECT_GT(ks_uniform(squared, 0, 1), ks_critical(ks_draws));
    EXPECT_GT(
        chi_square({10'500, 9'500, 10'000, 10'000, 10'000, 10'000, 10'000, 10'000, 10'000, 10'000}),
        chi2_9dof_p001);
}

// --- policies ---------------------------------------------------------------------------------

static_assert(bo::policy<bo::none>);
static_assert(bo::policy<bo::constant>);
static_assert(bo::policy<bo::exponential>);
static_assert(bo::policy<bo::full_jitter>);
static_assert(bo::policy<bo::equal_jitter>);
static_assert(bo::policy<bo::decorrelated_jitter>);
static_assert(bo::policy<bo::any_policy>);

// The deterministic policies' delay() is constexpr.
static_assert([] {
    splitmix64 g(0);
    return bo::none{}.delay(3, 0ns, g);
}() == 0ns);

TEST(None, AlwaysZero) {
    splitmix64 g(1);
    const bo::none p;
    for (unsigned n : {0u, 1u, 5u, 1000u, ~0u})
        EXPECT_EQ(p.delay(n, 5s, g).count(), 0);
}

TEST(Constant, AlwaysTheDelay) {
    splitmix64 g(1);
    const bo::constant p(1500ms);
    for (unsigned n : {0u, 1u, 5u, 1000u, ~0u})
        EXPECT_EQ(p.delay(n, 7s, g).count(), 1'500'000'000);
    EXPECT_EQ(bo::constant(0ns).delay(3, 0ns, g).count(), 0);
}

TEST(Exponential, ExactValuesWithFactorTwo) {
    splitmix64 g(1);
    const bo::exponential p(100ms, 30s);
    const std::pair<unsigned, std::int64_t> expected_ms[] = {
        {0, 100}, {1, 200}, {2, 400}, {3, 800}, {4, 1600}, {8, 25'600}, {9, 30'000}, {10, 30'000}};
    for (auto [n, ms] : expected_ms)
        EXPECT_EQ(p.delay(n, 0ns, g).count(), ms * 1'000'000) << "retry " << n;
}

TEST(Exponential, ExactValuesWithFactorThreeAndOne) {
    splitmix64 g(1);
    const bo::exponential three(10ms, 5s, 3);
    const std::pair<unsigned, std::int64_t> expected_ms[] = {
        {0, 10}, {1, 30}, {2, 90}, {3, 270}, {4, 810}, {5, 2430}, {6, 5000}, {40, 5000}};
    for (auto [n, ms] : expected_ms)
        EXPECT_EQ(three.delay(n, 0ns, g).count(), ms * 1'000'000) << "retry " << n;
    const bo::exponential one(250ms, 5s, 1);
    for (unsigned n : {0u, 1u, 10u, 1000u})
        EXPECT_EQ(one.delay(n, 0ns, g).count(), 250'000'000) << "retry " << n;
}

TEST(Exponential, SaturatesWithoutOverflow) {
    splitmix64 g(1);
    EXPECT_EQ(bo::exponential(100ms, 30s).delay(1000, 0ns, g).count(), 30'000'000'000);
    EXPECT_EQ(bo::exponential(100ms, 30s).delay(~0u, 0ns, g).count(), 30'000'000'000);
    EXPECT_EQ(bo::exponential(1ms, 1h, 1'000'000).delay(1000, 0ns, g), nanoseconds(1h));
    // Up to the largest nanoseconds: 2^62 exactly, then the cap.
    const bo::exponential huge(1ns, nanoseconds::max());
    EXPECT_EQ(huge.delay(62, 0ns, g).count(), std::int64_t{1} << 62);
    EXPECT_EQ(huge.delay(63, 0ns, g), nanoseconds::max());
    EXPECT_EQ(huge.delay(1000, 0ns, g), nanoseconds::max());
    EXPECT_EQ(bo::exponential(1ns, nanoseconds::max(), u64_max).delay(1, 0ns, g),
              nanoseconds::max());
    // base · factor would wrap around 2^64 below the cap: 2^62 · 5 = 2^64 + 2^62.
    const bo::exponential wraps(nanoseconds(std::int64_t{1} << 62), nanoseconds::max(), 5);
    EXPECT_EQ(wraps.delay(1, 0ns, g), nanoseconds::max());
    EXPECT_EQ(wraps.delay(1000, 0ns, g), nanoseconds::max());
    const bo::exponential wraps3(nanoseconds(std::int64_t{3} << 61), nanoseconds::max(), 3);
    EXPECT_EQ(wraps3.delay(1, 0ns, g), nanoseconds::max());
    // Zero base stays zero; base == cap is constant.
    EXPECT_EQ(bo::exponential(0ns, 10s).delay(1000, 0ns, g).count(), 0);
    EXPECT_EQ(bo::exponential(2s, 2s).delay(0, 0ns, g).count(), 2'000'000'000);
    EXPECT_EQ(bo::exponential(2s, 2s).delay(1000, 0ns, g).count(), 2'000'000'000);
}

TEST(FullJitter, WithinZeroAndTheExponentialBound) {
    splitmix64 g(11);
    const bo::full_jitter p(100ms, 10s);
    for (unsigned n = 0; n < 70; ++n) {
        const std::uint64_t t =
            std::min<std::uint64_t>(10'000'000'000ULL, n < 30 ? 100'000'000ULL << n : u64_max);
        std::uint64_t top = 0;
        for (int i = 0; i < 200; ++i) {
            const auto d = ns_of(p.delay(n, 0ns, g));
            ASSERT_LE(d, t) << "retry " << n;
            top = std::max(top, d);
        }
        EXPECT_GT(top, t / 2) << "retry " << n << ": 200 draws all in the lower half";
    }
    EXPECT_LE(ns_of(p.delay(1000, 0ns, g)), 10'000'000'000ULL);
}

TEST(FullJitter, KolmogorovSmirnovAgainstUniformAndMean) {
    splitmix64 g(0xF00D);
    const bo::full_jitter p(100ms, 10s);
    const double t = 1.6e9; // retry 4: 100 ms · 2^4
    const auto samples = draw(p, 4, 0ns, g, ks_draws);
    EXPECT_LT(ks_uniform(samples, 0, t), ks_critical(ks_draws));
    double sum = 0;
    for (double s : samples)
        sum += s;
    const double mean = sum / static_cast<double>(samples.size());
    // σ of the mean = t / √(12 n) ≈ 0.002 t; allow 5σ.
    EXPECT_NEAR(mean, t / 2, 0.01 * t);
    // And against the wrong interval the test rejects.
    EXPECT_GT(ks_uniform(samples, 0, 2 * t), ks_critical(ks_draws));
}

TEST(FullJitter, KolmogorovSmirnovAtTheCap) {
    splitmix64 g(4242);
    const auto samples = draw(bo::full_jitter(100ms, 10s), 30, 0ns, g, ks_draws);
    EXPECT_LT(ks_uniform(samples, 0, 1e10), ks_critical(ks_draws));
}

TEST(FullJitter, WorksWithA32BitGenerator) {
    std::mt19937 mt(3);
    const bo::full_jitter p(100ms, 10s);
    for (int i = 0; i < 1000; ++i)
        ASSERT_LE(ns_of(p.delay(2, 0ns, mt)), 400'000'000u);
}

TEST(EqualJitter, WithinUpperHalfAndReachesBothEnds) {
    splitmix64 g(13);
    // t = 101 ns: [101 − 50, 101] = [51, 101], 51 values, all reached.
    const bo::equal_jitter odd(101ns, 1s);
    std::set<std::uint64_t> seen;
    for (int i = 0; i < 5000; ++i) {
        const auto d = ns_of(odd.delay(0, 0ns, g));
        ASSERT_GE(d, 51u);
        ASSERT_LE(d, 101u);
        seen.insert(d);
    }
    EXPECT_EQ(seen.size(), 51u);
    const bo::equal_jitter p(100ms, 10s);
    for (unsigned n = 0; n < 70; ++n) {
        const std::uint64_t t =
            std::min<std::uint64_t>(10'000'000'000ULL, n < 30 ? 100'000'000ULL << n : u64_max);
        for (int i = 0; i < 100; ++i) {
            const auto d = ns_of(p.delay(n, 0ns, g));
            ASSERT_GE(d, t - t / 2) << "retry " << n;
            ASSERT_LE(d, t) << "retry " << n;
        }
    }
    EXPECT_EQ(bo::equal_jitter(0ns, 0ns).delay(5, 0ns, g).count(), 0);
}

TEST(EqualJitter, KolmogorovSmirnovAgainstUniformOnTheUpperHalf) {
    // (Seed 0xE0 is one of the 1 % of seeds for which a correct sampler fails at α = 0.01:
    // D = 0.0128. Over 1000 seeds this test rejects 12 times, as expected.)
    splitmix64 g(0xE1);
    const auto samples = draw(bo::equal_jitter(1s, 60s), 2, 0ns, g, ks_draws); // t = 4 s
    EXPECT_LT(ks_uniform(samples, 2e9, 4e9), ks_critical(ks_draws));
    EXPECT_GT(ks_uniform(samples, 0, 4e9), ks_critical(ks_draws));
}

TEST(DecorrelatedJitter, FirstDelayWithinBaseAndThreeBase) {
    splitmix64 g(17);
    const bo::decorrelated_jitter p(100ms, 60s);
    std::uint64_t lo = u64_max, hi = 0;
    for (int i = 0; i < 5000; ++i) {
        const auto d = ns_of(p.delay(0, 0ns, g));
        ASSERT_GE(d, 100'000'000u);
        ASSERT_LE(d, 300'000'000u);
        lo = std::min(lo, d);
        hi = std::max(hi, d);
    }
    EXPECT_LT(lo, 110'000'000u);
    EXPECT_GT(hi, 290'000'000u);
    // A negative previous counts as none.
    for (int i = 0; i < 1000; ++i) {
        const auto d = ns_of(p.delay(0, -5s, g));
        ASSERT_GE(d, 100'000'000u);
        ASSERT_LE(d, 300'000'000u);
    }
}

TEST(DecorrelatedJitter, FromPreviousWithinBaseAndThreeTimesPreviousCapped) {
    splitmix64 g(19);
    const bo::decorrelated_jitter p(100ms, 2s);
    const nanoseconds previous[] = {1ns, 10ms, 100ms, 200ms, 500ms, 666ms, 667ms, 1s, 5s, 1h};
    for (auto prev : previous) {
        const auto pn = static_cast<std::uint64_t>(prev.count());
        const std::uint64_t bound =
            std::max<std::uint64_t>(100'000'000, std::min<std::uint64_t>(2'000'000'000, 3 * pn));
        std::uint64_t top = 0;
        for (int i = 0; i < 2000; ++i) {
            const auto d = ns_of(p.delay(7, prev, g));
            ASSERT_GE(d, 100'000'000u) << "previous " << prev.count();
            ASSERT_LE(d, bound) << "previous " << prev.count();
            top = std::max(top, d);
        }
        EXPECT_GE(top, bound - (bound - 100'000'000) / 50) << "previous " << prev.count();
    }
    // 3 · previous below base: exactly base.
    EXPECT_EQ(p.delay(0, 10ms, g).count(), 100'000'000);
}

TEST(DecorrelatedJitter, NeverAboveCapWhateverThePrevious) {
    splitmix64 g(23);
    const bo::decorrelated_jitter p(100ms, 10s);
    for (auto prev : {nanoseconds::max(), nanoseconds::max() / 3 + 1ns, nanoseconds(hours(1))})
        for (int i = 0; i < 1000; ++i) {
            const auto d = ns_of(p.delay(0, prev, g));
            ASSERT_GE(d, 100'000'000u);
            ASSERT_LE(d, 10'000'000'000u);
        }
    // A chain fed with its own delays stays within [base, cap] and reaches the cap region.
    nanoseconds prev{0};
    std::uint64_t top = 0;
    for (int i = 0; i < 5000; ++i) {
        prev = p.delay(static_cast<unsigned>(i), prev, g);
        const auto d = ns_of(prev);
        ASSERT_GE(d, 100'000'000u);
        ASSERT_LE(d, 10'000'000'000u);
        top = std::max(top, d);
    }
    EXPECT_GT(top, 9'000'000'000u);
    // base == cap: always base.
    EXPECT_EQ(bo::decorrelated_jitter(1s, 1s).delay(0, 1h, g).count(), 1'000'000'000);
    EXPECT_EQ(bo::decorrelated_jitter(0ns, 0ns).delay(0, 1h, g).count(), 0);
}

TEST(DecorrelatedJitter, KolmogorovSmirnovAgainstUniformUpToThreePrevious) {
    splitmix64 g(0xDEC0);
    const auto samples = draw(bo::decorrelated_jitter(100ms, 60s), 3, 1s, g, ks_draws);
    EXPECT_LT(ks_uniform(samples, 1e8, 3e9), ks_critical(ks_draws));
    EXPECT_GT(ks_uniform(samples, 1e8, 2e9), ks_critical(ks_draws));
}

// --- configuration errors ---------------------------------------------------------------------

TEST(BackoffConfig, ConfigErrorIsAnInvalidArgument) {
    static_assert(std::is_base_of_v<std::invalid_argument, rategov::config_error>);
    EXPECT_THROW(bo::constant(-1ns), std::invalid_argument);
}

TEST(BackoffConfig, NegativeDelayNamesTheValue) {
    const auto m = config_error_message([] { (void)bo::constant(-3ms); });
    EXPECT_CONTAINS(m, "constant");
    EXPECT_CONTAINS(m, "delay -3000000 ns is negative");
}

TEST(BackoffConfig, NegativeBaseOrCapNamesTheValue) {
    const auto m1 = config_error_message([] { (void)bo::exponential(-1ms, 1s); });
    EXPECT_CONTAINS(m1, "exponential");
    EXPECT_CONTAINS(m1, "base -1000000 ns");
    const auto m2 = config_error_message([] { (void)bo::full_jitter(1ms, -2s); });
    EXPECT_CONTAINS(m2, "full_jitter");
    EXPECT_CONTAINS(m2, "cap -2000000000 ns");
    const auto m3 = config_error_message([] { (void)bo::equal_jitter(-7ns, 1s); });
    EXPECT_CONTAINS(m3, "equal_jitter");
    EXPECT_CONTAINS(m3, "base -7 ns");
    const auto m4 = config_error_message([] { (void)bo::decorrelated_jitter(1ms, -9ns); });
    EXPECT_CONTAINS(m4, "decorrelated_jitter");
    EXPECT_CONTAINS(m4, "cap -9 ns");
}

TEST(BackoffConfig, CapBelowBaseNamesBoth) {
    const auto check = [](const std::string& m, const char* name) {
        EXPECT_CONTAINS(m, name);
        EXPECT_CONTAINS(m, "cap 1000000000 ns is below base 2000000000 ns");
    };
    check(config_error_message([] { (void)bo::exponential(2s, 1s); }), "exponential");
    check(config_error_message([] { (void)bo::full_jitter(2s, 1s); }), "full_jitter");
    check(config_error_message([] { (void)bo::equal_jitter(2s, 1s); }), "equal_jitter");
    check(config_error_message([] { (void)bo::decorrelated_jitter(2s, 1s); }),
          "decorrelated_jitter");
}

TEST(BackoffConfig, FactorZeroIsRejected) {
    const auto m = config_error_message([] { (void)bo::exponential(1ms, 1s, 0); });
    EXPECT_CONTAINS(m, "factor 0");
    EXPECT_NO_THROW((void)bo::exponential(1ms, 1s, 1));
}

TEST(BackoffConfig, BoundaryValuesAreAccepted) {
    EXPECT_NO_THROW((void)bo::constant(0ns));
    EXPECT_NO_THROW((void)bo::exponential(0ns, 0ns));
    EXPECT_NO_THROW((void)bo::full_jitter(1s, 1s));
    EXPECT_NO_THROW((void)bo::equal_jitter(0ns, nanoseconds::max()));
    EXPECT_NO_THROW((void)bo::decorrelated_jitter(nanoseconds::max(), nanoseconds::max()));
}

// --- any_policy -------------------------------------------------------------------------------

TEST(AnyPolicy, DefaultIsFullJitterFrom250msTo20s) {
    const bo::any_policy p;
    splitmix64 g(5);
    for (unsigned n = 0; n < 64; ++n) {
        const std::uint64_t t =
            std::min<std::uint64_t>(20'000'000'000ULL, n < 30 ? 250'000'000ULL << n : u64_max);
        std::uint64_t top = 0;
        for (int i = 0; i < 200; ++i) {
            const auto d = ns_of(p.delay(n, 0ns, g));
            ASSERT_LE(d, t) << "retry " << n;
            top = std::max(top, d);
        }
        EXPECT_GT(top, t / 2) << "retry " << n;
    }
    // Same numbers as full_jitter(250 ms, 20 s) itself.
    const bo::full_jitter reference(250ms, 20s);
    splitmix64 g1(6), g2(6);
    for (unsigned n = 0; n < 40; ++n)
        ASSERT_EQ(p.delay(n, 0ns, g1).count(), reference.delay(n, 0ns, g2).count());
}

/// `any_policy` holding `p` gives the same delays as `p`, and uses the same random bits.
template <class P>
void expect_same_as_policy(const P& p) {
    const bo::any_policy a = p;
    splitmix64 g1(99), g2(99);
    nanoseconds prev1{0}, prev2{0};
    for (unsigned n = 0; n < 50; ++n) {
        prev1 = p.delay(n, prev1, g1);
        prev2 = a.delay(n, prev2, g2);
        ASSERT_EQ(prev1.count(), prev2.count()) << "retry " << n;
    }
    EXPECT_EQ(g1(), g2());
}

TEST(AnyPolicy, HoldsEachPolicyAndGivesItsSequence) {
    expect_same_as_policy(bo::none{});
    expect_same_as_policy(bo::constant(3s));
    expect_same_as_policy(bo::exponential(10ms, 1min, 3));
    expect_same_as_policy(bo::full_jitter(50ms, 5s));
    expect_same_as_policy(bo::equal_jitter(50ms, 5s));
    expect_same_as_policy(bo::decorrelated_jitter(50ms, 5s));
}

TEST(AnyPolicy, ReassignedAndCopied) {
    bo::any_policy p = bo::constant(2s);
    splitmix64 g(1);
    EXPECT_EQ(p.delay(0, 0ns, g).count(), 2'000'000'000);
    p = bo::exponential(1s, 8s);
    EXPECT_EQ(p.delay(2, 0ns, g).count(), 4'000'000'000);
    const bo::any_policy q = p;
    EXPECT_EQ(q.delay(5, 0ns, g).count(), 8'000'000'000);
    static_assert(!std::is_convertible_v<nanoseconds, bo::any_policy>);
    static_assert(!std::is_convertible_v<int, bo::any_policy>);
}

// --- hinted -----------------------------------------------------------------------------------

TEST(Hinted, NoHintGivesTheComputedDelay) {
    EXPECT_EQ(bo::hinted(5s, std::optional<nanoseconds>{}, 60s).count(), 5'000'000'000);
    EXPECT_EQ(bo::hinted(5s, std::optional<milliseconds>{}, 1s).count(), 5'000'000'000);
}

TEST(Hinted, AHintWinsEvenWhenSmaller) {
    EXPECT_EQ(bo::hinted(5s, std::optional<nanoseconds>(1s), 60s).count(), 1'000'000'000);
    EXPECT_EQ(bo::hinted(5s, std::optional<seconds>(30s), 60s).count(), 30'000'000'000);
    EXPECT_EQ(bo::hinted(5s, std::optional<seconds>(60s), 60s).count(), 60'000'000'000);
}

TEST(Hinted, AHintAboveTheMaximumIsClamped) {
    EXPECT_EQ(bo::hinted(5s, std::optional<seconds>(61s), 60s).count(), 60'000'000'000);
    EXPECT_EQ(bo::hinted(5s, std::optional<hours>(24h), 60s).count(), 60'000'000'000);
    EXPECT_EQ(bo::hinted(5s, std::optional<nanoseconds>(nanoseconds::max()), 60s).count(),
              60'000'000'000);
}

TEST(Hinted, NegativeOrZeroHintGivesZero) {
    EXPECT_EQ(bo::hinted(5s, std::optional<seconds>(-3s), 60s).count(), 0);
    EXPECT_EQ(bo::hinted(5s, std::optional<milliseconds>(0ms), 60s).count(), 0);
    EXPECT_EQ(bo::hinted(5s, std::optional<nanoseconds>(nanoseconds::min()), 60s).count(), 0);
}

TEST(Hinted, MillisecondsAndFractionalHints) {
    EXPECT_EQ(bo::hinted(5s, std::optional<milliseconds>(1500ms), 60s).count(), 1'500'000'000);
    EXPECT_EQ(bo::hinted(5s, std::optional<duration<double>>(2.5), 60s).count(), 2'500'000'000);
    static_assert(bo::hinted(5s, std::optional<milliseconds>(250ms), 60s) == 250ms);
    static_assert(bo::hinted(5s, std::optional<milliseconds>{}, 60s) == 5s);
}

// A hint too large for int64 nanoseconds (about 292 years) overflows in duration_cast and comes
// back as 0 (retry at once) instead of max_hint. Enable once hinted() saturates.
TEST(Hinted, AHintBeyondTheNanosecondRangeIsClampedNotWrapped) {
    EXPECT_EQ(bo::hinted(5s, std::optional<seconds>(seconds::max()), 60s).count(), 60'000'000'000);
    EXPECT_EQ(bo::hinted(5s, std::optional<hours>(hours(3'000'000)), 60s).count(), 60'000'000'000);
}

// --- retry_budget -----------------------------------------------------------------------------

static_assert(!std::is_copy_constructible_v<bo::retry_budget>);
static_assert(!std::is_copy_assignable_v<bo::retry_budget>);

TEST(RetryBudget, StartsAtInitial) {
    bo::retry_budget by_default;
    EXPECT_EQ(by_default.available(), 10u);
    bo::retry_budget b(0.5, 3, 10);
    EXPECT_EQ(b.available(), 3u);
    EXPECT_TRUE(b.try_spend());
    EXPECT_TRUE(b.try_spend());
    EXPECT_TRUE(b.try_spend());
    EXPECT_FALSE(b.try_spend());
    EXPECT_EQ(b.available(), 0u);
}

TEST(RetryBudget, OnCallDepositsTheRatio) {
    bo::retry_budget b(0.1, 0, 100);
    for (int i = 0; i < 9; ++i)
        b.on_call();
    EXPECT_EQ(b.available(), 0u);
    EXPECT_FALSE(b.try_spend());
    b.on_call();
    EXPECT_EQ(b.available(), 1u);
    EXPECT_TRUE(b.try_spend());
    EXPECT_FALSE(b.try_spend());
    bo::retry_budget two(2.5, 0, 100);
    two.on_call();
    two.on_call();
    EXPECT_EQ(two.available(), 5u);
    bo::retry_budget milli(0.001, 0, 100); // the smallest deposit: one milli-retry
    for (int i = 0; i < 999; ++i)
        milli.on_call();
    EXPECT_EQ(milli.available(), 0u);
    milli.on_call();
    EXPECT_EQ(milli.available(), 1u);
}

TEST(RetryBudget, CostsPerOutcome) {
    bo::retry_budget b(0.0, 2, 10);
    // over_limit is free by default: as many as we like, nothing withdrawn.
    for (int i = 0; i < 100; ++i)
        ASSERT_TRUE(b.try_spend(fb::outcome::over_limit));
    EXPECT_EQ(b.available(), 2u);
    // Never retried: false, nothing withdrawn.
    EXPECT_FALSE(b.try_spend(fb::outcome::success));
    EXPECT_FALSE(b.try_spend(fb::outcome::fatal));
    EXPECT_FALSE(b.try_spend(fb::outcome::quota_exhausted));
    EXPECT_EQ(b.available(), 2u);
    EXPECT_TRUE(b.try_spend(fb::outcome::load_shed));
    EXPECT_EQ(b.available(), 1u);
    EXPECT_TRUE(b.try_spend(fb::outcome::retryable));
    EXPECT_EQ(b.available(), 0u);
    EXPECT_FALSE(b.try_spend(fb::outcome::load_shed));
    EXPECT_FALSE(b.try_spend(fb::outcome::retryable));
    EXPECT_TRUE(b.try_spend(fb::outcome::over_limit)); // still free on an empty balance
    EXPECT_EQ(b.available(), 0u);
}

TEST(RetryBudget, CustomCosts) {
    bo::retry_costs costs;
    costs.over_limit = 2;
    costs.load_shed = 3;
    costs.retryable = 0;
    bo::retry_budget b(0.0, 5, 10, costs);
    EXPECT_FALSE(b.try_spend(fb::outcome::success));
    EXPECT_TRUE(b.try_spend(fb::outcome::load_shed));
    EXPECT_EQ(b.available(), 2u);
    EXPECT_FALSE(b.try_spend(fb::outcome::load_shed)); // short: nothing withdrawn
    EXPECT_EQ(b.available(), 2u);
    EXPECT_TRUE(b.try_spend(fb::outcome::over_limit));
    EXPECT_EQ(b.available(), 0u);
    EXPECT_TRUE(b.try_spend(fb::outcome::retryable));
}

TEST(RetryBudget, TrySpendN) {
    bo::retry_budget b(0.0, 7, 10);
    EXPECT_TRUE(b.try_spend(0u));
    EXPECT_FALSE(b.try_spend(8u));
    EXPECT_EQ(b.available(), 7u);
    EXPECT_TRUE(b.try_spend(7u));
    EXPECT_EQ(b.available(), 0u);
    EXPECT_TRUE(b.try_spend(0u));
}

TEST(RetryBudget, NeverExceedsMax) {
    bo::retry_budget b(1.0, 0, 5);
    for (int i = 0; i < 100; ++i)
        b.on_call();
    EXPECT_EQ(b.available(), 5u);
    // A deposit that would cross max stops exactly at max.
    bo::retry_budget c(0.3, 0, 1);
    for (int i = 0; i < 4; ++i)
        c.on_call(); // 0.3, 0.6, 0.9, 1.0 (capped)
    EXPECT_EQ(c.available(), 1u);
    EXPECT_TRUE(c.try_spend());
    EXPECT_EQ(c.available(), 0u);
    for (int i = 0; i < 3; ++i)
        c.on_call();
    EXPECT_EQ(c.available(), 0u) << "the capped remainder leaked: 0.9 should be short of 1";
    bo::retry_budget full(1000.0, 4, 4);
    full.on_call();
    EXPECT_EQ(full.available(), 4u);
    bo::retry_budget large(1000.0, 0, std::uint64_t{1} << 40);
    for (int i = 0; i < 10; ++i)
        large.on_call();
    EXPECT_EQ(large.available(), 10'000u);
}

TEST(RetryBudget, RatioZeroAllowsExactlyInitialRetries) {
    bo::retry_budget b(0.0, 7, 100);
    std::uint64_t retries = 0;
    for (int call = 0; call < 1000; ++call) {
        b.on_call();
        for (int attempt = 0; attempt < 3; ++attempt)
            if (b.try_spend(fb::outcome::load_shed))
                ++retries;
    }
    EXPECT_EQ(retries, 7u);
    EXPECT_EQ(b.available(), 0u);
}

TEST(RetryBudget, SustainedLoadShedStormStaysWithinTenPercent) {
    bo::retry_budget b; // 0.1 per call, 10 at start, 100 max
    constexpr std::uint64_t calls = 10'000, warmup = 1'000, initial = 10;
    std::uint64_t retries = 0, late_retries = 0;
    for (std::uint64_t call = 0; call < calls; ++call) {
        b.on_call();
        unsigned attempts = 1; // the first attempt fails with load_shed
        while (attempts < 4 && b.try_spend(fb::outcome::load_shed)) {
            ++attempts; // ... and so does every retry
            ++retries;
            if (call >= warmup)
                ++late_retries;
        }
        if (call == warmup - 1) {
            EXPECT_EQ(b.available(), 0u) << "the initial balance should be gone by now";
        }
    }
    EXPECT_LE(retries, calls / 10 + initial);
    EXPECT_LE(late_retries, (calls - warmup) / 10);
    // Exactly: every deposited milli-retry is spent, none is created.
    EXPECT_EQ(retries, 1010u);
    EXPECT_EQ(late_retries, 900u);
    EXPECT_EQ(b.available(), 0u);
}

TEST(RetryBudgetConfig, RatioOutOfRange) {
    const auto neg = config_error_message([] { bo::retry_budget b(-0.5); });
    EXPECT_CONTAINS(neg, "ratio -0.5");
    const auto big = config_error_message([] { bo::retry_budget b(1000.5); });
    EXPECT_CONTAINS(big, "ratio 1000.5");
    const auto nan =
        config_error_message([] { bo::retry_budget b(std::numeric_limits<double>::quiet_NaN()); });
    EXPECT_CONTAINS(nan, "ratio");
    EXPECT_CONTAINS(nan, "nan");
    const auto inf =
        config_error_message([] { bo::retry_budget b(std::numeric_limits<double>::infinity()); });
    EXPECT_CONTAINS(inf, "ratio inf");
    EXPECT_NO_THROW(bo::retry_budget(0.0));
    EXPECT_NO_THROW(bo::retry_budget(1000.0));
}

TEST(RetryBudgetConfig, InitialAboveMax) {
    const auto m = config_error_message([] { bo::retry_budget b(0.1, 11, 10); });
    EXPECT_CONTAINS(m, "initial 11 exceeds max 10");
    EXPECT_NO_THROW(bo::retry_budget(0.1, 10, 10));
    EXPECT_NO_THROW(bo::retry_budget(0.1, 0, 0));
}

TEST(RetryBudgetConfig, MaxAboveTwoToTheForty) {
    const std::uint64_t two40 = std::uint64_t{1} << 40;
    const auto m = config_error_message([&] { bo::retry_budget b(0.1, 0, two40 + 1); });
    EXPECT_CONTAINS(m, "max 1099511627777");
    const auto huge = config_error_message([] { bo::retry_budget b(0.1, 0, u64_max); });
    EXPECT_CONTAINS(huge, "max 18446744073709551615");
    bo::retry_budget at_limit(0.1, two40, two40);
    EXPECT_EQ(at_limit.available(), two40);
}

} // namespace
