/// \file
/// 64×64→128-bit multiplication and 128/64 division, with the compiler's `__int128` where it
/// has one and a portable fallback elsewhere (define RATEGOV_NO_INT128 to force it).
#pragma once

#include <cstdint>

#include <rategov/config.hpp>

#if defined(__SIZEOF_INT128__) && !defined(RATEGOV_NO_INT128)
#define RATEGOV_HAS_INT128 1
#else
#define RATEGOV_HAS_INT128 0
#endif

RATEGOV_NAMESPACE_BEGIN
namespace detail {

/// An unsigned 128-bit value as two halves.
struct u128 {
    std::uint64_t hi;
    std::uint64_t lo;
    friend constexpr bool operator==(const u128&, const u128&) = default;
};

#if RATEGOV_HAS_INT128
__extension__ typedef unsigned __int128 native_u128;
#endif

/// a × b, exact.
[[nodiscard]] constexpr u128 mul_64x64(std::uint64_t a, std::uint64_t b) noexcept {
#if RATEGOV_HAS_INT128
    const native_u128 p = static_cast<native_u128>(a) * b;
    return {static_cast<std::uint64_t>(p >> 64), static_cast<std::uint64_t>(p)};
#else
    const std::uint64_t a_lo = a & 0xffffffffu, a_hi = a >> 32;
    const std::uint64_t b_lo = b & 0xffffffffu, b_hi = b >> 32;
    const std::uint64_t ll = a_lo * b_lo, lh = a_lo * b_hi, hl = a_hi * b_lo, hh = a_hi * b_hi;
    const std::uint64_t mid = (ll >> 32) + (lh & 0xffffffffu) + (hl & 0xffffffffu);
    return {hh + (lh >> 32) + (hl >> 32) + (mid >> 32), (mid << 32) | (ll & 0xffffffffu)};
#endif
}

/// (a × b) >> s for 0 < s < 64, when the result fits in 64 bits.
[[nodiscard]] constexpr std::uint64_t mul_shift(std::uint64_t a, std::uint64_t b,
                                                unsigned s) noexcept {
    const u128 p = mul_64x64(a, b);
    return (p.hi << (64 - s)) | (p.lo >> s);
}

/// x + y, exact (the caller keeps the sum below 2^128).
[[nodiscard]] constexpr u128 add(u128 x, std::uint64_t y) noexcept {
    const std::uint64_t lo = x.lo + y;
    return {x.hi + (lo < x.lo ? 1u : 0u), lo};
}

/// floor(x / d) and x mod d for d > 0; the quotient saturates at 2^64 − 1.
struct divmod_result {
    std::uint64_t quot;
    std::uint64_t rem;
};
[[nodiscard]] constexpr divmod_result divmod(u128 x, std::uint64_t d) noexcept {
    if (x.hi >= d)
        return {~std::uint64_t{0}, 0}; // quotient does not fit: saturate
#if RATEGOV_HAS_INT128
    const native_u128 n = (static_cast<native_u128>(x.hi) << 64) | x.lo;
    return {static_cast<std::uint64_t>(n / d), static_cast<std::uint64_t>(n % d)};
#else
    // Restoring long division, one bit at a time (used off the hot path only).
    std::uint64_t rem = x.hi, quot = 0;
    for (int i = 63; i >= 0; --i) {
        const bool carry = (rem >> 63) != 0;
        rem = (rem << 1) | ((x.lo >> i) & 1u);
        quot <<= 1;
        if (carry || rem >= d) {
            rem -= d;
            quot |= 1u;
        }
    }
    return {quot, rem};
#endif
}

/// ceil(x / d) for d > 0, saturating at 2^64 − 1.
[[nodiscard]] constexpr std::uint64_t div_ceil(u128 x, std::uint64_t d) noexcept {
    const auto [q, r] = divmod(x, d);
    if (q == ~std::uint64_t{0})
        return q;
    return q + (r != 0 ? 1u : 0u);
}

/// Greatest common divisor.
[[nodiscard]] constexpr std::uint64_t gcd(std::uint64_t a, std::uint64_t b) noexcept {
    while (b != 0) {
        const auto t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/// A fraction num/den.
struct fraction {
    std::uint64_t num;
    std::uint64_t den;
};

/// The largest fraction ≤ c/p (0 < c ≤ p, coprime) whose denominator is at most `q` (≥ 1):
/// the best approximation from below, found by walking the Stern–Brocot tree in runs (the
/// continued fraction of c/p). Without a native 128-bit type, the fraction floor(c·q/p)/q,
/// reduced, which is also ≤ c/p but less close.
[[nodiscard]] constexpr fraction best_lower_fraction(std::uint64_t c, std::uint64_t p,
                                                     std::uint64_t q) noexcept {
    if (p <= q)
        return {c, p};
#if RATEGOV_HAS_INT128
    // lo = a0/b0 ≤ c/p < a1/b1 = hi, Farey neighbours: every fraction strictly between them
    // has a denominator of at least b0 + b1.
    native_u128 a0 = 0, b0 = 1, a1 = 1, b1 = 0;
    const native_u128 x = c, y = p;
    for (;;) {
        // Raise lo: the largest t with (a0 + t·a1)/(b0 + t·b1) ≤ c/p, within the bound q.
        native_u128 t = (b0 * x - a0 * y) / (a1 * y - b1 * x);
        if (b1 != 0 && t > (q - b0) / b1)
            t = (q - b0) / b1;
        a0 += t * a1;
        b0 += t * b1;
        if (a0 * y == b0 * x || b0 + b1 > q)
            break;
        // Lower hi: the largest t with (a1 + t·a0)/(b1 + t·b0) > c/p, within the bound q.
        native_u128 t2 = (a1 * y - b1 * x - 1) / (b0 * x - a0 * y);
        if (t2 > (q - b1) / b0)
            t2 = (q - b1) / b0;
        a1 += t2 * a0;
        b1 += t2 * b0;
        if (b0 + b1 > q)
            break;
    }
    return {static_cast<std::uint64_t>(a0), static_cast<std::uint64_t>(b0)};
#else
    const std::uint64_t num = divmod(mul_64x64(c, q), p).quot;
    const std::uint64_t g = gcd(num, q);
    return {num / g, q / g};
#endif
}

} // namespace detail
RATEGOV_NAMESPACE_END
