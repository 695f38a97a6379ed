// The portable 128-bit fallback (compilers without __int128, e.g. MSVC), forced on here with
// RATEGOV_NO_INT128 in an executable of its own, so that no inline function of the native
// path can stand in for it. Checked against the native type, which this compiler has.
#define RATEGOV_NO_INT128 1
#include <chrono>
#include <cstdint>
#include <random>

#include <rategov/rategov.hpp>

#include <gtest/gtest.h>

namespace {

using namespace rategov::detail;
__extension__ typedef unsigned __int128 native;

static_assert(!RATEGOV_HAS_INT128, "this test must exercise the portable path");

TEST(NoInt128, MultiplyAndDivideAgreeWithTheNativeType) {
    std::mt19937_64 rng(11);
    for (int k = 0; k < 200'000; ++k) {
        const std::uint64_t a = rng() >> (rng() % 64), b = rng() >> (rng() % 64);
        const native p = static_cast<native>(a) * b;
        const u128 m = mul_64x64(a, b);
        ASSERT_EQ(m.hi, static_cast<std::uint64_t>(p >> 64));
        ASSERT_EQ(m.lo, static_cast<std::uint64_t>(p));
        const std::uint64_t d = (rng() >> (rng() % 64)) | 1;
        if (m.hi < d) {
            const auto [q, r] = divmod(m, d);
            ASSERT_EQ(q, static_cast<std::uint64_t>(p / d));
            ASSERT_EQ(r, static_cast<std::uint64_t>(p % d));
        }
    }
}

TEST(NoInt128, BestLowerFractionStaysBelowAndWithinTheBound) {
    std::mt19937_64 rng(12);
    for (int k = 0; k < 100'000; ++k) {
        const std::uint64_t p = 2 + rng() % 1'000'000'000'000ull;
        const std::uint64_t c = 1 + rng() % p;
        const std::uint64_t q = 1 + rng() % p;
        const fraction f = best_lower_fraction(c / gcd(c, p), p / gcd(c, p), q);
        ASSERT_LE(f.den, std::max(q, p / gcd(c, p)));
        // f ≤ c/p, exactly: f.num · p ≤ c · f.den
        ASSERT_LE(static_cast<native>(f.num) * p, static_cast<native>(c) * f.den);
    }
}

TEST(NoInt128, ABucketStaysExactOnThePortablePath) {
    rategov::testing::manual_clock clock;
    rategov::bucket<rategov::testing::manual_clock> b(rategov::per(std::chrono::seconds(3), 7),
                                                      clock);
    std::uint64_t granted = 0;
    for (int k = 0; k < 100'000; ++k) {
        const auto r = b.try_acquire(1);
        if (r) {
            ++granted;
        } else {
            ASSERT_EQ(r.status, rategov::acquire_status::denied);
            clock.set(r.ready_at);
        }
    }
    const auto t = static_cast<std::uint64_t>(clock.now().time_since_epoch().count());
    // burst + rate·T ≥ granted ≥ rate·T − 1, in exact integers (7 per 3·10^9 ns)
    EXPECT_LE(static_cast<native>(granted) * 3'000'000'000u,
              static_cast<native>(7) * 3'000'000'000u + static_cast<native>(7) * t);
    EXPECT_GE(static_cast<native>(granted + 1) * 3'000'000'000u, static_cast<native>(7) * t);
}

} // namespace
