// 64×64→128 multiplication and 128/64 division: hand-computed values, saturation, and random
// cross-checks against the compiler's `unsigned __int128` (where it has one) and against
// identities that hold for any correct implementation.
//
// This translation unit tests whichever path <rategov/detail/uint128.hpp> selects here (the
// `__int128` one on GCC and Clang). The portable fallback (RATEGOV_NO_INT128) needs its own
// executable: the functions are inline, so a second TU compiled with the macro in this same
// executable would break the one-definition rule and the linker would keep only one version.
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include <rategov/detail/uint128.hpp>

#include <gtest/gtest.h>

namespace {

using rategov::detail::add;
using rategov::detail::div_ceil;
using rategov::detail::divmod;
using rategov::detail::gcd;
using rategov::detail::mul_64x64;
using rategov::detail::mul_shift;
using rategov::detail::u128;

constexpr std::uint64_t max64 = std::numeric_limits<std::uint64_t>::max();
constexpr std::uint64_t two32 = std::uint64_t{1} << 32;

// --- hand-computed values --------------------------------------------------------------------

TEST(Uint128, MulByZeroAndOne) {
    EXPECT_EQ(mul_64x64(0, 0), (u128{0, 0}));
    EXPECT_EQ(mul_64x64(0, max64), (u128{0, 0}));
    EXPECT_EQ(mul_64x64(max64, 0), (u128{0, 0}));
    EXPECT_EQ(mul_64x64(1, max64), (u128{0, max64}));
    EXPECT_EQ(mul_64x64(max64, 1), (u128{0, max64}));
    EXPECT_EQ(mul_64x64(1, 12345), (u128{0, 12345}));
}

TEST(Uint128, MulSmallValuesStayInTheLowHalf) {
    EXPECT_EQ(mul_64x64(6, 7), (u128{0, 42}));
    EXPECT_EQ(mul_64x64(1'000'000'007, 998'244'353), (u128{0, 998'244'359'987'710'471ull}));
    // (2^32 − 1)^2 = 2^64 − 2^33 + 1: just fits in 64 bits.
    EXPECT_EQ(mul_64x64(two32 - 1, two32 - 1), (u128{0, 0xFFFF'FFFE'0000'0001ull}));
}

TEST(Uint128, MulCarriesIntoTheHighHalf) {
    EXPECT_EQ(mul_64x64(two32, two32), (u128{1, 0}));
    EXPECT_EQ(mul_64x64(max64, 2), (u128{1, max64 - 1}));
    EXPECT_EQ(mul_64x64(std::uint64_t{1} << 63, 2), (u128{1, 0}));
    EXPECT_EQ(mul_64x64(std::uint64_t{1} << 63, std::uint64_t{1} << 63),
              (u128{std::uint64_t{1} << 62, 0}));
    // (2^64 − 1)^2 = 2^128 − 2^65 + 1.
    EXPECT_EQ(mul_64x64(max64, max64), (u128{max64 - 1, 1}));
    // 0xFFFF'FFFF'FFFF'FFFF × 0x1'0000'0001 = 2^96 + 2^64 − 2^32 − 1 (the middle carries).
    EXPECT_EQ(mul_64x64(max64, two32 + 1), (u128{two32, max64 - two32}));
    // 10^18 × 10^18 = 10^36 = 0x00C0_97CE_7BC9_0715_B34B_9F10_0000_0000.
    EXPECT_EQ(mul_64x64(1'000'000'000'000'000'000ull, 1'000'000'000'000'000'000ull),
              (u128{0x00C0'97CE'7BC9'0715ull, 0xB34B'9F10'0000'0000ull}));
}

TEST(Uint128, MulIsCommutative) {
    EXPECT_EQ(mul_64x64(0x1234'5678'9ABC'DEF0ull, 0x0FED'CBA9'8765'4321ull),
              mul_64x64(0x0FED'CBA9'8765'4321ull, 0x1234'5678'9ABC'DEF0ull));
}

TEST(Uint128, AddCarries) {
    EXPECT_EQ(add(u128{0, 5}, 7), (u128{0, 12}));
    EXPECT_EQ(add(u128{0, max64}, 1), (u128{1, 0}));
    EXPECT_EQ(add(u128{3, max64 - 1}, 3), (u128{4, 1}));
    EXPECT_EQ(add(u128{7, 0}, max64), (u128{7, max64}));
}

TEST(Uint128, MulShift) {
    EXPECT_EQ(mul_shift(10, 10, 1), 50u);
    EXPECT_EQ(mul_shift(3, std::uint64_t{1} << 62, 62), 3u);
    EXPECT_EQ(mul_shift(7, 3, 1), 10u); // 21 >> 1: truncates
    EXPECT_EQ(mul_shift(std::uint64_t{1} << 40, std::uint64_t{1} << 40, 20),
              std::uint64_t{1} << 60);
    // The product needs the high half: 2^64 − 1 times 2, shifted by 1.
    EXPECT_EQ(mul_shift(max64, 2, 1), max64);
    // Bits from both halves: (2^64 − 1)·2^32 >> 32 = 2^64 − 1.
    EXPECT_EQ(mul_shift(max64, two32, 32), max64);
    // s = 63, the largest allowed: (2^63 + 2^62)·2 >> 63 = 3.
    EXPECT_EQ(mul_shift((std::uint64_t{1} << 63) | (std::uint64_t{1} << 62), 2, 63), 3u);
    // 10^18·10^18 >> 62 = floor(10^36 / 2^62) = 216'840'434'497'100'886.
    EXPECT_EQ(mul_shift(1'000'000'000'000'000'000ull, 1'000'000'000'000'000'000ull, 62),
              216'840'434'497'100'886ull);
}

TEST(Uint128, DivmodSmall) {
    auto r = divmod(u128{0, 100}, 7);
    EXPECT_EQ(r.quot, 14u);
    EXPECT_EQ(r.rem, 2u);
    r = divmod(u128{0, 0}, 9);
    EXPECT_EQ(r.quot, 0u);
    EXPECT_EQ(r.rem, 0u);
    r = divmod(u128{0, max64}, 1);
    EXPECT_EQ(r.quot, max64);
    EXPECT_EQ(r.rem, 0u);
    r = divmod(u128{0, max64}, max64);
    EXPECT_EQ(r.quot, 1u);
    EXPECT_EQ(r.rem, 0u);
    r = divmod(u128{0, 6}, 7);
    EXPECT_EQ(r.quot, 0u);
    EXPECT_EQ(r.rem, 6u);
}

TEST(Uint128, DivmodWithAHighHalf) {
    // 2^64 / 2 = 2^63.
    auto r = divmod(u128{1, 0}, 2);
    EXPECT_EQ(r.quot, std::uint64_t{1} << 63);
    EXPECT_EQ(r.rem, 0u);
    // 2^64 / 3 = 6148914691236517205 rem 1.
    r = divmod(u128{1, 0}, 3);
    EXPECT_EQ(r.quot, 6'148'914'691'236'517'205ull);
    EXPECT_EQ(r.rem, 1u);
    // 10^36 / 10^18 = 10^18.
    r = divmod(u128{0x00C0'97CE'7BC9'0715ull, 0xB34B'9F10'0000'0000ull},
               1'000'000'000'000'000'000ull);
    EXPECT_EQ(r.quot, 1'000'000'000'000'000'000ull);
    EXPECT_EQ(r.rem, 0u);
    // (10^36 + 12345) / 10^18 = 10^18 rem 12345.
    r = divmod(u128{0x00C0'97CE'7BC9'0715ull, 0xB34B'9F10'0000'0000ull + 12345},
               1'000'000'000'000'000'000ull);
    EXPECT_EQ(r.quot, 1'000'000'000'000'000'000ull);
    EXPECT_EQ(r.rem, 12345u);
    // The largest quotient that fits: x.hi = d − 1. (5·2^64 − 1) / 5 = 2^64 − 1 rem 4.
    r = divmod(u128{4, max64}, 5);
    EXPECT_EQ(r.quot, max64);
    EXPECT_EQ(r.rem, 4u);
    // A divisor with its top bit set (the long division's carry case).
    // (2^127 + 5) / (2^63 + 1) = 2^64 − 2 rem 7: (2^63 + 1)(2^64 − 2) = 2^127 + 2^64 − 2^64 − 2.
    r = divmod(u128{std::uint64_t{1} << 63, 5}, (std::uint64_t{1} << 63) + 1);
    EXPECT_EQ(r.quot, max64 - 1);
    EXPECT_EQ(r.rem, 7u);
    // (2^128 − 1) / (2^64 − 1) would be 2^64 + 1: does not fit (x.hi = d), saturates.
    // Just below: (2^64 − 2)·2^64 + (2^64 − 1) = (2^64 − 1)^2 + 2^64 − 2 → 2^64 − 1 rem 2^64 − 2.
    r = divmod(u128{max64 - 1, max64}, max64);
    EXPECT_EQ(r.quot, max64);
    EXPECT_EQ(r.rem, max64 - 1);
}

TEST(Uint128, DivmodSaturatesWhenTheQuotientDoesNotFit) {
    for (const auto& [x, d] :
         {std::pair{u128{5, 0}, std::uint64_t{5}}, std::pair{u128{6, 123}, std::uint64_t{5}},
          std::pair{u128{1, 0}, std::uint64_t{1}}, std::pair{u128{max64, max64}, max64},
          std::pair{u128{max64, 0}, std::uint64_t{2}}}) {
        const auto r = divmod(x, d);
        EXPECT_EQ(r.quot, max64) << "x = " << x.hi << ":" << x.lo << ", d = " << d;
        EXPECT_EQ(r.rem, 0u) << "x = " << x.hi << ":" << x.lo << ", d = " << d;
    }
}

TEST(Uint128, DivCeil) {
    EXPECT_EQ(div_ceil(u128{0, 0}, 5), 0u);
    EXPECT_EQ(div_ceil(u128{0, 1}, 5), 1u);
    EXPECT_EQ(div_ceil(u128{0, 10}, 5), 2u);
    EXPECT_EQ(div_ceil(u128{0, 11}, 5), 3u);
    EXPECT_EQ(div_ceil(u128{0, 14}, 5), 3u);
    EXPECT_EQ(div_ceil(u128{1, 0}, 2), std::uint64_t{1} << 63);
    EXPECT_EQ(div_ceil(u128{1, 0}, 3), 6'148'914'691'236'517'206ull);
    EXPECT_EQ(div_ceil(u128{0, max64}, 1), max64);
    // (5·2^64 − 5) / 5 = 2^64 − 1 exactly: no rounding up.
    EXPECT_EQ(div_ceil(u128{4, max64 - 4}, 5), max64);
}

TEST(Uint128, DivCeilSaturates) {
    // Quotient does not fit.
    EXPECT_EQ(div_ceil(u128{5, 0}, 5), max64);
    EXPECT_EQ(div_ceil(u128{max64, max64}, 3), max64);
    // The floor fits (2^64 − 1 rem 4) but the ceiling, 2^64, does not: saturates, no wrap to 0.
    EXPECT_EQ(div_ceil(u128{4, max64}, 5), max64);
}

TEST(Uint128, Gcd) {
    EXPECT_EQ(gcd(0, 0), 0u);
    EXPECT_EQ(gcd(0, 5), 5u);
    EXPECT_EQ(gcd(5, 0), 5u);
    EXPECT_EQ(gcd(12, 18), 6u);
    EXPECT_EQ(gcd(18, 12), 6u);
    EXPECT_EQ(gcd(17, 5), 1u);
    EXPECT_EQ(gcd(1, max64), 1u);
    EXPECT_EQ(gcd(max64, max64), max64);
    EXPECT_EQ(gcd(std::uint64_t{1} << 60, 3 * (std::uint64_t{1} << 40)), std::uint64_t{1} << 40);
    // period 3.6·10^12 ns (an hour) and count·2^41: gcd 2^13.
    EXPECT_EQ(gcd(std::uint64_t{1} << 41, 3'600'000'000'000ull), std::uint64_t{1} << 13);
    // Consecutive Fibonacci numbers: the worst case for Euclid.
    EXPECT_EQ(gcd(7'540'113'804'746'346'429ull, 12'200'160'415'121'876'738ull), 1u);
}

TEST(Uint128, UsableInConstantExpressions) {
    static_assert(mul_64x64(max64, max64) == u128{max64 - 1, 1});
    static_assert(mul_shift(10, 10, 1) == 50);
    static_assert(divmod(u128{1, 0}, 3).quot == 6'148'914'691'236'517'205ull);
    static_assert(divmod(u128{1, 0}, 3).rem == 1);
    static_assert(div_ceil(u128{0, 11}, 5) == 3);
    static_assert(gcd(12, 18) == 6);
    constexpr auto p = mul_64x64(0xDEAD'BEEF'0000'0001ull, 0xFFFF'0000'FFFF'0000ull);
    EXPECT_EQ(p, mul_64x64(0xDEAD'BEEF'0000'0001ull, 0xFFFF'0000'FFFF'0000ull));
}

// --- random cross-checks ---------------------------------------------------------------------

/// Random 64-bit values biased towards the edges: 0, 1, powers of two and their neighbours,
/// all ones, and values with few significant bits.
class edgy_random {
public:
    explicit edgy_random(std::uint64_t seed)
        : m_rng(seed) {}

    std::uint64_t operator()() {
        switch (m_rng() % 6) {
        case 0:
            return m_rng();
        case 1: {
            const auto bit = static_cast<unsigned>(m_rng() % 64);
            const auto delta = static_cast<std::int64_t>(m_rng() % 3) - 1;
            return (std::uint64_t{1} << bit) + static_cast<std::uint64_t>(delta);
        }
        case 2:
            return m_rng() >> (m_rng() % 64); // few significant bits
        case 3:
            return max64 - (m_rng() % 4);
        case 4:
            return m_rng() % 4;
        default:
            return m_rng() & 0xFFFF'FFFF'0000'0000ull; // low half zero
        }
    }

private:
    std::mt19937_64 m_rng;
};

constexpr int random_rounds = 200'000;

// Identities that do not depend on a second 128-bit implementation.
TEST(Uint128, RandomMulDivRoundTrip) {
    edgy_random rnd(20240601);
    for (int i = 0; i < random_rounds; ++i) {
        const std::uint64_t a = rnd(), b = rnd();
        const u128 p = mul_64x64(a, b);
        EXPECT_EQ(p, mul_64x64(b, a));
        if (b != 0) {
            // a·b / b = a exactly; the quotient fits, so no saturation.
            const auto r = divmod(p, b);
            ASSERT_EQ(r.quot, a) << a << " * " << b;
            ASSERT_EQ(r.rem, 0u) << a << " * " << b;
            ASSERT_EQ(div_ceil(p, b), a) << a << " * " << b;
        }
        // (q·d + r) / d = q rem r for r < d.
        const std::uint64_t d = b == 0 ? 1 : b;
        const std::uint64_t rem = rnd() % d;
        const auto r2 = divmod(add(mul_64x64(a, d), rem), d);
        ASSERT_EQ(r2.quot, a) << a << " " << d << " " << rem;
        ASSERT_EQ(r2.rem, rem) << a << " " << d << " " << rem;
        ASSERT_EQ(div_ceil(add(mul_64x64(a, d), rem), d), rem == 0     ? a
                                                          : a + 1 == 0 ? max64
                                                                       : a + 1)
            << a << " " << d << " " << rem;
    }
}

TEST(Uint128, RandomGcdDividesBothAndIsMaximal) {
    edgy_random rnd(7);
    for (int i = 0; i < random_rounds / 4; ++i) {
        const std::uint64_t a = rnd(), b = rnd();
        const std::uint64_t g = gcd(a, b);
        if (a == 0 && b == 0) {
            EXPECT_EQ(g, 0u);
            continue;
        }
        ASSERT_NE(g, 0u);
        ASSERT_EQ(a % g, 0u) << a << " " << b;
        ASSERT_EQ(b % g, 0u) << a << " " << b;
        // Maximal: the cofactors are coprime.
        ASSERT_EQ(gcd(a / g, b / g), 1u) << a << " " << b;
        ASSERT_EQ(gcd(b, a), g);
    }
}

#if defined(__SIZEOF_INT128__)
__extension__ typedef unsigned __int128 native;

native to_native(u128 x) {
    return (static_cast<native>(x.hi) << 64) | x.lo;
}

TEST(Uint128, RandomAgainstNativeInt128) {
    edgy_random rnd(123456789);
    for (int i = 0; i < random_rounds; ++i) {
        const std::uint64_t a = rnd(), b = rnd(), lo = rnd();
        const native expect = static_cast<native>(a) * b;
        ASSERT_EQ(to_native(mul_64x64(a, b)), expect) << a << " * " << b;

        const auto s = static_cast<unsigned>(1 + rnd() % 63);
        if ((expect >> s) >> 64 == 0) { // mul_shift requires the result to fit
            ASSERT_EQ(mul_shift(a, b, s), static_cast<std::uint64_t>(expect >> s))
                << a << " * " << b << " >> " << s;
        }

        ASSERT_EQ(to_native(add(u128{a, lo}, b)), ((static_cast<native>(a) << 64) | lo) + b);

        // Any 128-bit dividend: the high half either below the divisor (exact) or not
        // (saturated).
        const std::uint64_t d = b == 0 ? 1 : b;
        const u128 x{a % 2 == 0 ? a % d : a, lo};
        const native n = to_native(x);
        const auto r = divmod(x, d);
        if (x.hi < d) {
            ASSERT_EQ(r.quot, static_cast<std::uint64_t>(n / d))
                << x.hi << ":" << x.lo << " / " << d;
            ASSERT_EQ(r.rem, static_cast<std::uint64_t>(n % d))
                << x.hi << ":" << x.lo << " / " << d;
        } else {
            ASSERT_EQ(r.quot, max64) << x.hi << ":" << x.lo << " / " << d;
            ASSERT_EQ(r.rem, 0u);
        }
        const native ceil = n / d + (n % d != 0 ? 1 : 0);
        const std::uint64_t ceil_sat = ceil > max64 ? max64 : static_cast<std::uint64_t>(ceil);
        ASSERT_EQ(div_ceil(x, d), ceil_sat) << x.hi << ":" << x.lo << " / " << d;
    }
}
#endif

} // namespace
