/// \file
/// The lock-free GCRA core shared by `bucket` and `governor`: one metric, one atomic 64-bit
/// word, time given as integer nanosecond ticks since an epoch the owner chooses.
///
/// ## Representation
///
/// GCRA keeps a "theoretical arrival time": the instant at which the bucket would be full
/// again. We keep it in *token space*: `pos` is that instant expressed as the number of
/// tokens that have accrued by then, in fixed point with `shift` fractional bits (a unit is
/// 2^-shift token), counted from the epoch. The tokens accrued by time τ are
/// `A(τ) = τ · count · 2^shift / period`, computed from τ itself every time (never summed
/// step by step), so the rate is exact over any horizon: no drift, however many operations.
/// `shift` is the largest that keeps `A(τ) ≤ τ`, so 62 bits hold 146 years of positions.
///
/// A request for n tokens at τ is granted when `max(pos, A(τ)) + n·2^shift ≤ A(τ) + burst·2^shift`
/// and then moves `pos` to that left side. A bucket whose `pos` lies before `A(τ)` is full;
/// its position restarts at `A(τ)` rounded *up* to a unit (conservative, < 1 unit lost).
/// Every comparison is exact: `A(τ)` is computed with one 64×64→128 multiply by a
/// precomputed reciprocal and corrected to the exact floor with two 64-bit multiplies.
///
/// ## Concurrency
///
/// The word holds `[generation:2 | pos:62]`. The limit parameters live in four slots; the
/// generation names the slot `pos` is expressed in. `set_limit` writes the next slot, then
/// publishes it with the same CAS that converts `pos` to the new units, so a reader always
/// computes with the parameters its word was written under, and an acquisition racing with a
/// `set_limit` fails its CAS and retries under the new limit. A slot is rewritten only four
/// `set_limit`s later; a reader that read a slot being rewritten has a stale word and fails
/// its CAS (an ABA would need four limit changes during one acquisition *and* a bit-identical
/// position after them).
#pragma once

#include <rategov/bucket/result.hpp>
#include <rategov/config.hpp>
#include <rategov/detail/uint128.hpp>
#include <rategov/quota/quota.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

RATEGOV_NAMESPACE_BEGIN
namespace detail {

/// Ticks are nanoseconds since the owner's epoch; the horizon is 2^62 − 1 ns (146 years).
inline constexpr std::uint64_t tick_max = (std::uint64_t{1} << 62) - 1;

/// A decision in tick space: status and the tick from which the request is (or would be)
/// ready.
struct tick_result {
    acquire_status status;
    std::uint64_t ready;
};

class gcra {
    static constexpr unsigned pos_bits = 62;
    static constexpr std::uint64_t pos_mask = (std::uint64_t{1} << pos_bits) - 1;
    static constexpr std::uint64_t pos_max = pos_mask;
    static constexpr unsigned slot_count = 4;
    static constexpr unsigned recip_shift = 62;

    // The parameters of one limit, read through relaxed atomics (a slot may be rewritten
    // while a stale reader reads it; that reader's CAS then fails, see the file comment).
    struct alignas(RATEGOV_CACHE_LINE) slot {
        std::atomic<std::uint64_t> num{1};   // count·2^shift / g
        std::atomic<std::uint64_t> den{1};   // period_ns / g      (num ≤ den)
        std::atomic<std::uint64_t> recip{1}; // floor(num·2^62 / den) ≤ 2^62
        std::atomic<std::uint64_t> burst_units{1};
        std::atomic<std::uint64_t> burst{1};
        std::atomic<std::uint64_t> count{1};
        std::atomic<std::int64_t> period{1};
        std::atomic<unsigned> shift{0};
    };

public:
    /// A plain copy of one slot, loaded once per attempt.
    struct view {
        std::uint64_t num, den, recip, burst_units, burst;
        unsigned shift;

        /// floor(τ·num/den) − {0 or 1}: never above the exact value.
        [[nodiscard]] std::uint64_t accrued_lower(std::uint64_t tau) const noexcept {
            return mul_shift(tau, recip, recip_shift);
        }
        /// Exact floor(τ·num/den), and whether the division left a remainder.
        struct exact_t {
            std::uint64_t floor;
            bool frac;
        };
        [[nodiscard]] exact_t accrued(std::uint64_t tau) const noexcept {
            std::uint64_t a = accrued_lower(tau);
            // The true remainder τ·num − a·den lies in [0, 2·den) < 2^63, so the low 64 bits
            // of the two products suffice (wrapping arithmetic is exact here).
            std::uint64_t rem = tau * num - a * den;
            if (rem >= den) {
                ++a;
                rem -= den;
            }
            return {a, rem != 0};
        }
        /// The earliest tick τ with accrued(τ) ≥ target: ceil(target·den/num), saturated.
        [[nodiscard]] std::uint64_t tick_of(std::uint64_t target) const noexcept {
            return std::min(div_ceil(mul_64x64(target, den), num), tick_max);
        }
        /// n tokens in units, saturated at pos_max.
        [[nodiscard]] std::uint64_t units(std::uint64_t n) const noexcept {
            return n > (pos_max >> shift) ? pos_max : n << shift;
        }
    };

    explicit gcra(const quota& q) {
        write_slot(0, q);
        m_state.store(0, std::memory_order_relaxed); // position 0 at tick 0: full
    }
    gcra(const gcra&) = delete;
    gcra& operator=(const gcra&) = delete;

    // --- the hot path ---------------------------------------------------------------------

    /// Takes n tokens at tick τ if they are available now. Lock-free, never blocks.
    [[nodiscard]] tick_result try_acquire(std::uint64_t n, std::uint64_t tau) noexcept {
        // (1) acquire: pairs with the release of the CAS in set_limit (5), so that the slot
        //     named by the generation we read is fully visible.
        std::uint64_t w = m_state.load(std::memory_order_acquire);
        for (;;) {
            const view v = load_view(w);
            if (n > v.burst)
                return {acquire_status::exceeds_capacity, tick_max};
            std::uint64_t next;
            if (const auto target = take(v, w & pos_mask, v.units(n), tau, next); target != 0)
                return {acquire_status::denied, v.tick_of(target)};
            // (2) acq_rel on success: release publishes our position to the next taker,
            //     acquire orders our reads after the previous one; on failure, acquire as (1).
            if (m_state.compare_exchange_weak(w, (w & ~pos_mask) | next,
                                              std::memory_order_acq_rel,
                                              std::memory_order_acquire))
                return {acquire_status::granted, tau};
        }
    }

    /// Whether n tokens could be taken at τ, without taking them (the snapshot check of an
    /// all-or-nothing acquisition). Same result as try_acquire would give on this state.
    [[nodiscard]] tick_result peek(std::uint64_t n, std::uint64_t tau) const noexcept {
        const std::uint64_t w = m_state.load(std::memory_order_acquire); // (1)
        const view v = load_view(w);
        if (n > v.burst)
            return {acquire_status::exceeds_capacity, tick_max};
        std::uint64_t next;
        if (const auto target = take(v, w & pos_mask, v.units(n), tau, next); target != 0)
            return {acquire_status::denied, v.tick_of(target)};
        return {acquire_status::granted, tau};
    }

    // --- pay forward, give back, go into debt -------------------------------------------------

    /// Takes n tokens now, to be used from the returned tick on (≥ τ); refuses, taking
    /// nothing, when that tick is more than `max_wait` ticks after τ.
    [[nodiscard]] tick_result reserve(std::uint64_t n, std::uint64_t tau,
                                      std::uint64_t max_wait) noexcept {
        std::uint64_t w = m_state.load(std::memory_order_acquire); // (1)
        for (;;) {
            const view v = load_view(w);
            if (n > v.burst)
                return {acquire_status::exceeds_capacity, tick_max};
            const std::uint64_t pos = w & pos_mask;
            const auto [a, frac] = v.accrued(tau);
            const bool full = pos < a || (pos == a && frac);
            const std::uint64_t base = full ? a + frac : pos;
            const std::uint64_t next = base + v.units(n);
            std::uint64_t ready = tau;
            if (!full && next > a + v.burst_units)
                ready = v.tick_of(next - v.burst_units);
            if (next > pos_max || ready - tau > max_wait)
                return {acquire_status::denied, ready};
            if (m_state.compare_exchange_weak(w, (w & ~pos_mask) | next, // (2)
                                              std::memory_order_acq_rel,
                                              std::memory_order_acquire))
                return {acquire_status::granted, ready};
        }
    }

    /// Gives n tokens back (a cancelled or over-estimated request); the bucket never holds
    /// more than its burst afterwards.
    void refund(std::uint64_t n, std::uint64_t tau) noexcept {
        if (n == 0)
            return;
        std::uint64_t w = m_state.load(std::memory_order_acquire); // (1)
        for (;;) {
            const view v = load_view(w);
            const std::uint64_t pos = w & pos_mask;
            const auto [a, frac] = v.accrued(tau);
            const std::uint64_t full_pos = a + frac;
            if (pos <= full_pos)
                return; // already full
            const std::uint64_t need = v.units(n);
            const std::uint64_t next = std::max(pos - std::min(need, pos), full_pos);
            if (m_state.compare_exchange_weak(w, (w & ~pos_mask) | next, // (2)
                                              std::memory_order_acq_rel,
                                              std::memory_order_acquire))
                return;
        }
    }

    /// Takes n tokens unconditionally (usage that already happened), going into debt if
    /// needed: later requests wait until the debt is paid off by time. n may exceed the burst.
    void charge(std::uint64_t n, std::uint64_t tau) noexcept {
        if (n == 0)
            return;
        std::uint64_t w = m_state.load(std::memory_order_acquire); // (1)
        for (;;) {
            const view v = load_view(w);
            const std::uint64_t pos = w & pos_mask;
            const auto [a, frac] = v.accrued(tau);
            const bool full = pos < a || (pos == a && frac);
            const std::uint64_t base = full ? a + frac : pos;
            const std::uint64_t next = std::min(base + v.units(n), pos_max);
            if (m_state.compare_exchange_weak(w, (w & ~pos_mask) | next, // (2)
                                              std::memory_order_acq_rel,
                                              std::memory_order_acquire))
                return;
        }
    }

    // --- observation --------------------------------------------------------------------------

    /// Whole tokens available at τ (0 while in debt; the burst when full).
    [[nodiscard]] std::uint64_t available(std::uint64_t tau) const noexcept {
        const std::uint64_t w = m_state.load(std::memory_order_acquire); // (1)
        const view v = load_view(w);
        return available_units(v, w & pos_mask, tau) >> v.shift;
    }

    /// Tokens owed at τ: how far `charge` has taken the bucket below empty (0 if none).
    [[nodiscard]] std::uint64_t debt(std::uint64_t tau) const noexcept {
        const std::uint64_t w = m_state.load(std::memory_order_acquire); // (1)
        const view v = load_view(w);
        const std::uint64_t pos = w & pos_mask;
        const auto [a, frac] = v.accrued(tau);
        const std::uint64_t owed_units = pos > a + v.burst_units ? pos - a - v.burst_units : 0;
        return (owed_units + (std::uint64_t{1} << v.shift) - 1) >> v.shift;
    }

    /// The limit in force.
    [[nodiscard]] quota limit() const noexcept {
        const std::uint64_t w = m_state.load(std::memory_order_acquire); // (1)
        const slot& s = m_slots[gen_of(w)];
        return quota(s.count.load(std::memory_order_relaxed),
                     std::chrono::nanoseconds(s.period.load(std::memory_order_relaxed)))
            .with_burst(s.burst.load(std::memory_order_relaxed));
    }

    // --- changing the limit -------------------------------------------------------------------

    /// Replaces the limit at tick τ, carrying tokens over as `how` says. Concurrent
    /// acquisitions are never blocked: each either completes under the old limit (before this
    /// change) or retries under the new one. Concurrent set_limit calls are serialised
    /// among themselves (a spin on a flag only they touch).
    void set_limit(const quota& q, inheritance how, std::uint64_t tau) noexcept {
        while (m_writer.test_and_set(std::memory_order_acquire)) // (3) pairs with (4)
            std::this_thread::yield();
        std::uint64_t w = m_state.load(std::memory_order_acquire); // (1)
        const unsigned g = gen_of(w), g2 = (g + 1) % slot_count;
        write_slot(g2, q);
        const view nv = load_view_of(g2);
        for (;;) {
            const view ov = load_view(w);
            const std::uint64_t pos = w & pos_mask;
            const std::uint64_t next = convert(ov, pos, nv, how, tau);
            // (5) release: publishes the slot written above together with the new generation
            //     to every reader that acquires this word in (1) or in a failed CAS (2).
            if (m_state.compare_exchange_weak(w, (std::uint64_t{g2} << pos_bits) | next,
                                              std::memory_order_acq_rel,
                                              std::memory_order_acquire))
                break;
        }
        m_writer.clear(std::memory_order_release); // (4)
    }

private:
    [[nodiscard]] static unsigned gen_of(std::uint64_t w) noexcept {
        return static_cast<unsigned>(w >> pos_bits);
    }

    [[nodiscard]] view load_view_of(unsigned g) const noexcept {
        const slot& s = m_slots[g];
        return {s.num.load(std::memory_order_relaxed),         s.den.load(std::memory_order_relaxed),
                s.recip.load(std::memory_order_relaxed),       s.burst_units.load(std::memory_order_relaxed),
                s.burst.load(std::memory_order_relaxed),       s.shift.load(std::memory_order_relaxed)};
    }
    [[nodiscard]] view load_view(std::uint64_t w) const noexcept { return load_view_of(gen_of(w)); }

    /// The decision of try_acquire on one state. Returns 0 and sets `next` when granted,
    /// else the position that accrued time must reach first (> 0).
    [[nodiscard]] static std::uint64_t take(const view& v, std::uint64_t pos, std::uint64_t need,
                                            std::uint64_t tau, std::uint64_t& next) noexcept {
        // Fast path: one multiply gives a ≤ A(τ) < a + 2. A position at or beyond a + 2 is
        // certainly past A(τ) (not full), so only the capacity check remains; it is decided
        // here unless it falls on the one unit where a and A(τ) may differ.
        const std::uint64_t a_lo = v.accrued_lower(tau);
        if (pos >= a_lo + 2) {
            if (pos + need <= a_lo + v.burst_units) {
                next = pos + need;
                return 0;
            }
            if (pos + need > a_lo + 1 + v.burst_units)
                return pos + need - v.burst_units;
        }
        const auto [a, frac] = v.accrued(tau);
        if (pos < a || (pos == a && frac)) {
            // Full: restart from now, rounded up to a unit (never ahead of the exact GCRA).
            next = a + frac + need;
            return 0;
        }
        if (pos + need <= a + v.burst_units) {
            next = pos + need;
            return 0;
        }
        return pos + need - v.burst_units;
    }

    /// Tokens available, in units, at τ.
    [[nodiscard]] static std::uint64_t available_units(const view& v, std::uint64_t pos,
                                                       std::uint64_t tau) noexcept {
        const auto [a, frac] = v.accrued(tau);
        if (pos <= a)
            return v.burst_units;
        return pos < a + v.burst_units ? a + v.burst_units - pos : 0;
    }

    /// The position under `nv` that carries over the tokens of `pos` under `ov`.
    [[nodiscard]] static std::uint64_t convert(const view& ov, std::uint64_t pos, const view& nv,
                                               inheritance how, std::uint64_t tau) noexcept {
        const auto [oa, ofrac] = ov.accrued(tau);
        const auto [na, nfrac] = nv.accrued(tau);
        if (how == inheritance::reset)
            return na; // full
        // Signed available units under the old limit: negative means debt. |value| < 2^62.
        const std::int64_t old_avail =
            pos <= oa ? static_cast<std::int64_t>(ov.burst_units)
                      : static_cast<std::int64_t>(oa + ov.burst_units) - static_cast<std::int64_t>(pos);
        const bool neg = old_avail < 0;
        const std::uint64_t mag = neg ? static_cast<std::uint64_t>(-old_avail)
                                      : static_cast<std::uint64_t>(old_avail);
        std::uint64_t new_mag;
        if (how == inheritance::keep) {
            // Same number of tokens, in the new units. Positive amounts round down, debts up.
            if (nv.shift >= ov.shift) {
                const unsigned d = nv.shift - ov.shift;
                new_mag = mag > (pos_max >> d) ? pos_max : mag << d;
            } else {
                const unsigned d = ov.shift - nv.shift;
                new_mag = neg ? (mag + (std::uint64_t{1} << d) - 1) >> d : mag >> d;
            }
        } else {
            // proportional: the same fraction of the burst.
            const u128 scaled = mul_64x64(mag, nv.burst_units);
            new_mag = neg ? div_ceil(scaled, ov.burst_units) : divmod(scaled, ov.burst_units).quot;
            new_mag = std::min(new_mag, pos_max);
        }
        if (!neg && new_mag >= nv.burst_units)
            return na; // full
        // pos = ceil(A) + burst − available, so that no more than `available` is granted.
        const std::uint64_t full_pos = na + (nfrac ? 1u : 0u);
        const std::uint64_t owed = neg ? nv.burst_units + new_mag : nv.burst_units - new_mag;
        return std::min(full_pos + std::min(owed, pos_max), pos_max);
    }

    void write_slot(unsigned g, const quota& q) noexcept {
        const std::uint64_t count = q.count();
        const auto period = static_cast<std::uint64_t>(q.period().count());
        // The largest shift with count·2^shift ≤ period (so A(τ) ≤ τ) and burst·2^shift ≤ 2^60.
        unsigned shift = 0;
        while (shift < 62 && (count << (shift + 1)) <= period &&
               (count << (shift + 1)) >> (shift + 1) == count &&
               (q.burst() << (shift + 1)) <= quota::max_burst)
            ++shift;
        const std::uint64_t num0 = count << shift;
        const std::uint64_t g0 = gcd(num0, period);
        const std::uint64_t num = num0 / g0, den = period / g0;
        const std::uint64_t recip = divmod(u128{num >> (64 - recip_shift), num << recip_shift}, den).quot;
        slot& s = m_slots[g];
        s.num.store(num, std::memory_order_relaxed);
        s.den.store(den, std::memory_order_relaxed);
        s.recip.store(recip, std::memory_order_relaxed);
        s.burst_units.store(q.burst() << shift, std::memory_order_relaxed);
        s.burst.store(q.burst(), std::memory_order_relaxed);
        s.count.store(count, std::memory_order_relaxed);
        s.period.store(q.period().count(), std::memory_order_relaxed);
        s.shift.store(shift, std::memory_order_relaxed);
    }

    static_assert(std::atomic<std::uint64_t>::is_always_lock_free,
                  "rategov: the bucket needs lock-free 64-bit atomics");

    alignas(RATEGOV_CACHE_LINE) std::atomic<std::uint64_t> m_state{0};
    std::atomic_flag m_writer = ATOMIC_FLAG_INIT;
    slot m_slots[slot_count];
};

} // namespace detail
RATEGOV_NAMESPACE_END
