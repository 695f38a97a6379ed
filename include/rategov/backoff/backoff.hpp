/// \file
/// Backoff policies: how long to wait before retry number n.
///
/// Every policy is a small value type with `delay(retry, previous, random)`: `retry` counts
/// from 0 (the first retry), `previous` is the delay this policy returned for the retry
/// before (zero before the first), `random` is any `std::uniform_random_bit_generator`.
/// Arithmetic is in integer nanoseconds and saturates: no overflow however many retries.
/// The formulas are those of the AWS Architecture Blog's "Exponential Backoff and Jitter":
///
/// | policy                | delay of retry n (t = min(cap, base · factor^n))   |
/// |-----------------------|----------------------------------------------------|
/// | `none`                | 0                                                  |
/// | `constant`            | d                                                  |
/// | `exponential`         | t                                                  |
/// | `full_jitter`         | uniform [0, t]                                     |
/// | `equal_jitter`        | t − ⌊t/2⌋ + uniform [0, ⌊t/2⌋]                     |
/// | `decorrelated_jitter` | min(cap, uniform [base, max(base, 3 · previous)])  |
///
/// A server hint (`Retry-After`, a reset time) takes precedence over the policy, within the
/// caller's bound: see `hinted`.
#pragma once

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <type_traits>
#include <variant>

#include <rategov/config.hpp>
#include <rategov/detail/uint128.hpp>
#include <rategov/quota/quota.hpp>

RATEGOV_NAMESPACE_BEGIN
namespace backoff {

using std::chrono::nanoseconds;

/// A source of random bits for jitter: any standard uniform random bit generator
/// (`std::mt19937_64`, `splitmix64`, your own). Give it a fixed seed in tests.
template <class G>
concept random_source = std::uniform_random_bit_generator<std::remove_cvref_t<G>>;

/// A small, fast, seedable 64-bit generator (SplitMix64, Steele, Lea and Flood 2014): every
/// seed, including 0, gives a full-period sequence. Not for cryptography.
/// \code
/// rategov::backoff::splitmix64 rng(42);
/// auto d = rategov::backoff::full_jitter(100ms, 10s).delay(3, {}, rng);
/// \endcode
class splitmix64 {
public:
    /// The type of the values `operator()` returns.
    using result_type = std::uint64_t;
    /// A generator whose sequence is fixed by `seed` (any value, 0 included).
    constexpr explicit splitmix64(std::uint64_t seed = 0) noexcept
        : m_state(seed) {}
    /// The smallest value `operator()` returns (0).
    [[nodiscard]] static constexpr result_type min() noexcept { return 0; }
    /// The largest value `operator()` returns (2^64 − 1).
    [[nodiscard]] static constexpr result_type max() noexcept {
        return std::numeric_limits<result_type>::max();
    }
    /// The next 64 uniformly distributed bits; advances the state. Not thread-safe: one
    /// generator per thread.
    constexpr result_type operator()() noexcept {
        std::uint64_t z = (m_state += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        return z ^ (z >> 31);
    }

private:
    std::uint64_t m_state;
};

/// A uniform integer in [lo, hi] (lo ≤ hi). With a full-range 64-bit generator this is
/// Lemire's unbiased multiply-and-reject method, identical on every platform for a given
/// seed; other generators go through `std::uniform_int_distribution`.
template <random_source G>
[[nodiscard]] std::uint64_t uniform(G& g, std::uint64_t lo, std::uint64_t hi) {
    if (lo >= hi)
        return lo;
    using R = std::remove_cvref_t<G>;
    if constexpr (R::min() == 0 && R::max() == std::numeric_limits<std::uint64_t>::max()) {
        const std::uint64_t span = hi - lo;
        if (span == std::numeric_limits<std::uint64_t>::max())
            return static_cast<std::uint64_t>(g());
        const std::uint64_t range = span + 1;
        for (;;) {
            const auto x = static_cast<std::uint64_t>(g());
            const detail::u128 m = detail::mul_64x64(x, range);
            // Reject the bottom (2^64 mod range) values of the low word: the rest map evenly.
            if (m.lo >= range || m.lo >= (0 - range) % range)
                return lo + m.hi;
        }
    } else {
        return std::uniform_int_distribution<std::uint64_t>(lo, hi)(g);
    }
}

namespace backoff_detail {

[[nodiscard]] constexpr std::uint64_t ns(nanoseconds d) noexcept {
    return d.count() > 0 ? static_cast<std::uint64_t>(d.count()) : 0;
}
[[nodiscard]] constexpr nanoseconds to_ns(std::uint64_t n) noexcept {
    constexpr auto max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    return nanoseconds(static_cast<std::int64_t>(n < max ? n : max));
}
/// min(cap, base · factor^n), saturating.
[[nodiscard]] constexpr std::uint64_t grown(std::uint64_t base, std::uint64_t cap,
                                            std::uint64_t factor, unsigned n) noexcept {
    std::uint64_t t = base;
    if (factor <= 1)
        return t < cap ? t : cap;
    for (unsigned i = 0; i < n && t < cap && t != 0; ++i)
        t = t > cap / factor ? cap : t * factor;
    return t < cap ? t : cap;
}
inline void check_nonnegative(const char* what, const char* name, nanoseconds d) {
    if (d.count() < 0)
        detail::throw_config_error(std::string("backoff::") + what + ": " + name + " " +
                                   detail::duration_string(d) + " is negative");
}
inline void check_base_cap(const char* what, nanoseconds base, nanoseconds cap) {
    check_nonnegative(what, "base", base);
    check_nonnegative(what, "cap", cap);
    if (cap < base)
        detail::throw_config_error(std::string("backoff::") + what + ": cap " +
                                   detail::duration_string(cap) + " is below base " +
                                   detail::duration_string(base));
}

} // namespace backoff_detail

/// No wait between attempts (retry at once; the governor still paces the retry).
struct none {
    /// Always zero.
    template <random_source G>
    [[nodiscard]] constexpr nanoseconds delay(unsigned, nanoseconds, G&) const noexcept {
        return nanoseconds(0);
    }
};

/// The same wait before every retry.
class constant {
public:
    /// \throws config_error if `d` is negative.
    explicit constant(nanoseconds d)
        : m_delay(d) {
        backoff_detail::check_nonnegative("constant", "delay", d);
    }
    /// The delay given at construction, whatever the retry.
    template <random_source G>
    [[nodiscard]] constexpr nanoseconds delay(unsigned, nanoseconds, G&) const noexcept {
        return m_delay;
    }

private:
    nanoseconds m_delay;
};

/// `min(cap, base · factor^n)` without jitter. Deterministic: clients that failed together
/// retry together — prefer a jittered policy when many clients share a limit.
class exponential {
public:
    /// \throws config_error if base or cap is negative, cap < base, or factor < 1.
    exponential(nanoseconds base, nanoseconds cap, std::uint64_t factor = 2)
        : m_base(backoff_detail::ns(base))
        , m_cap(backoff_detail::ns(cap))
        , m_factor(factor) {
        backoff_detail::check_base_cap("exponential", base, cap);
        if (factor < 1)
            detail::throw_config_error("backoff::exponential: factor 0 is below 1");
    }
    /// `min(cap, base · factor^retry)`, saturating; draws no random bits.
    template <random_source G>
    [[nodiscard]] constexpr nanoseconds delay(unsigned retry, nanoseconds, G&) const noexcept {
        return backoff_detail::to_ns(backoff_detail::grown(m_base, m_cap, m_factor, retry));
    }

private:
    std::uint64_t m_base, m_cap, m_factor;
};

/// Full jitter: uniform in [0, min(cap, base · 2^n)]. The least total work for the server
/// of the jittered policies (AWS's measurements) — the default of `call()`.
class full_jitter {
public:
    /// \throws config_error if base or cap is negative, or cap < base.
    full_jitter(nanoseconds base, nanoseconds cap)
        : m_base(backoff_detail::ns(base))
        , m_cap(backoff_detail::ns(cap)) {
        backoff_detail::check_base_cap("full_jitter", base, cap);
    }
    /// Uniform in [0, min(cap, base · 2^retry)], drawn from `random`.
    template <random_source G>
    [[nodiscard]] nanoseconds delay(unsigned retry, nanoseconds, G& random) const {
        return backoff_detail::to_ns(
            uniform(random, 0, backoff_detail::grown(m_base, m_cap, 2, retry)));
    }

private:
    std::uint64_t m_base, m_cap;
};

/// Equal jitter: half of `t = min(cap, base · 2^n)` fixed, the other half uniform — never
/// less than t/2.
class equal_jitter {
public:
    /// \throws config_error if base or cap is negative, or cap < base.
    equal_jitter(nanoseconds base, nanoseconds cap)
        : m_base(backoff_detail::ns(base))
        , m_cap(backoff_detail::ns(cap)) {
        backoff_detail::check_base_cap("equal_jitter", base, cap);
    }
    /// `t − ⌊t/2⌋` plus uniform [0, ⌊t/2⌋] drawn from `random`, where
    /// `t = min(cap, base · 2^retry)`.
    template <random_source G>
    [[nodiscard]] nanoseconds delay(unsigned retry, nanoseconds, G& random) const {
        const std::uint64_t t = backoff_detail::grown(m_base, m_cap, 2, retry);
        const std::uint64_t half = t / 2;
        return backoff_detail::to_ns(t - half + uniform(random, 0, half));
    }

private:
    std::uint64_t m_base, m_cap;
};

/// Decorrelated jitter: `min(cap, uniform [base, 3 · previous])`, with `previous = base`
/// before the first retry. Grows like an exponential on average, from the last delay
/// rather than the retry count.
class decorrelated_jitter {
public:
    /// \throws config_error if base or cap is negative, or cap < base.
    decorrelated_jitter(nanoseconds base, nanoseconds cap)
        : m_base(backoff_detail::ns(base))
        , m_cap(backoff_detail::ns(cap)) {
        backoff_detail::check_base_cap("decorrelated_jitter", base, cap);
    }
    /// `min(cap, uniform [base, max(base, 3 · previous)])` drawn from `random`; a `previous`
    /// ≤ 0 counts as `base`. The retry number is not used.
    template <random_source G>
    [[nodiscard]] nanoseconds delay(unsigned, nanoseconds previous, G& random) const {
        const std::uint64_t prev =
            previous.count() > 0 ? static_cast<std::uint64_t>(previous.count()) : m_base;
        const std::uint64_t hi = prev > m_cap / 3 ? m_cap : std::max(m_base, prev * 3);
        const std::uint64_t d = uniform(random, m_base, std::max(m_base, hi));
        return backoff_detail::to_ns(d < m_cap ? d : m_cap);
    }

private:
    std::uint64_t m_base, m_cap;
};

/// A backoff policy: `p.delay(retry, previous, random)` gives the wait before retry number
/// `retry` (from 0), as a `std::chrono::nanoseconds` ≥ 0.
template <class P>
concept policy = std::copy_constructible<P> &&
    requires(const P& p, unsigned retry, nanoseconds previous, splitmix64& g) {
    { p.delay(retry, previous, g) } -> std::same_as<nanoseconds>;
};

/// Any of the ready policies, as one value type (what `call_options` holds by default).
/// \code
/// rategov::backoff::any_policy p = rategov::backoff::decorrelated_jitter(200ms, 30s);
/// \endcode
class any_policy {
public:
    /// Full jitter from 250 ms up to 20 s.
    any_policy()
        : m_policy(full_jitter(std::chrono::milliseconds(250), std::chrono::seconds(20))) {}
    /// Holds a copy of `p`, one of `none`, `constant`, `exponential`, `full_jitter`,
    /// `equal_jitter` or `decorrelated_jitter` (implicit: a policy converts where an
    /// `any_policy` is expected).
    template <class P>
    requires(!std::same_as<std::remove_cvref_t<P>, any_policy> &&
             std::constructible_from<std::variant<none, constant, exponential, full_jitter,
                                                  equal_jitter, decorrelated_jitter>,
                                     P>) any_policy(P p) // NOLINT: implicit by design
        : m_policy(std::move(p)) {}

    /// The delay of the policy held, with the same arguments.
    template <random_source G>
    [[nodiscard]] nanoseconds delay(unsigned retry, nanoseconds previous, G& random) const {
        return std::visit([&](const auto& p) { return p.delay(retry, previous, random); },
                          m_policy);
    }

private:
    std::variant<none, constant, exponential, full_jitter, equal_jitter, decorrelated_jitter>
        m_policy;
};

/// The wait before a retry: the server's `hint` when it sent one (it knows when capacity
/// returns), at most `max_hint`; otherwise the policy's own `computed` delay. A negative
/// hint counts as zero; a `max_hint` ≤ 0 ignores hints (the policy decides).
/// \code
/// auto wait = rategov::backoff::hinted(policy.delay(n, prev, rng), fb.retry_after, 60s);
/// \endcode
template <class Rep, class Period>
[[nodiscard]] constexpr nanoseconds
hinted(nanoseconds computed, const std::optional<std::chrono::duration<Rep, Period>>& hint,
       nanoseconds max_hint) noexcept {
    if (!hint || max_hint.count() <= 0)
        return computed;
    const nanoseconds bound = max_hint;
    // Compared in floating point first: a hint of years (or a double of 1e30) does not fit
    // in nanoseconds, and must clamp to the bound rather than wrap.
    using wide = std::chrono::duration<double, std::nano>;
    const wide h = std::chrono::duration_cast<wide>(*hint);
    if (!(h.count() > 0.0)) // negative, zero or NaN
        return nanoseconds(0);
    if (h >= std::chrono::duration_cast<wide>(bound))
        return bound;
    const nanoseconds exact = std::chrono::ceil<nanoseconds>(h);
    return exact < bound ? exact : bound;
}

} // namespace backoff
RATEGOV_NAMESPACE_END
