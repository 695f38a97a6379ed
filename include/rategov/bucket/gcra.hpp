/// \file
/// The lock-free GCRA core shared by `bucket` and `governor`: one metric, one atomic 64-bit
/// word, time given as integer nanosecond ticks since an epoch the owner chooses.
///
/// ## Representation: exact integers
///
/// GCRA keeps a "theoretical arrival time" (TAT): the instant at which the bucket would be
/// full again. We keep it in *token space*, in units chosen so that both the accrual per
/// tick and the size of a token are integers: with the quota's rate reduced to `c/p` tokens
/// per nanosecond (`gcd(c, p) = 1`), a token is `p` units and one tick accrues `c` units.
/// The tokens accrued by tick τ are then `A(τ) = c·τ` — exact, one multiply, computed from τ
/// itself each time (never summed step by step), so there is no drift however long the run.
///
/// `pos` is the TAT in those units. A request for n tokens at τ is granted when
/// `max(pos, A(τ)) + n·p ≤ A(τ) + burst·p`, and moves `pos` to the left side. A bucket whose
/// `pos` lies before `A(τ)` is full. This is GCRA exactly, without rounding, at every integer
/// tick: a caller that takes every token gets between `rate·T − 1` and `burst + rate·T` in
/// any interval T.
///
/// ## Range: a moving epoch
///
/// `A(τ)` grows without bound, so positions count from an epoch kept in the parameter slot.
/// When `c·(τ − epoch)` would pass 2^60, the first caller to notice moves the epoch to τ and
/// shifts `pos` by the same exact amount (a *rebase*): every 2^60/c ns — 1.2 s for
/// 999'999'999 per second (c = 999'999'999), 36 years for exactly 10^9 per second (c = 1),
/// 41 years for 3.6M per minute (c = 3). `set_limit` rebases too. Positions stay below 2^62
/// and a full bucket is at most 2^56 units, so a queue of reservations or a debt of at least
/// 47 bursts fits, reaching at least 2^60/c ticks ahead; `reserve` refuses beyond that and
/// `charge` saturates there. A rebase takes the changes' flag (below): the one acquisition
/// that finds it due, once per 2^60/c ns, may wait for a concurrent `set_limit` to finish.
///
/// ## Concurrency
///
/// The word holds `[generation:2 | pos:62]`. The parameters (rate, burst, epoch) live in four
/// slots; the generation names the slot `pos` is expressed in. A rebase or `set_limit`
/// writes the next slot, then publishes it with the same CAS that converts `pos`, so a
/// reader always computes with the parameters its word was written under, and an
/// acquisition racing with a change fails its CAS and retries under the new parameters.
/// Changes are serialised among themselves by a version counter (odd while a change runs);
/// acquisitions never wait for it (except the one that finds a rebase due). Every reader
/// checks that the version was the same before and after it read the word and the slot, so
/// the parameters it computes with are those of its word's generation; a change completing
/// between that check and the reader's CAS changes the word, and the CAS fails. (An ABA
/// would need four changes in those few instructions *and* a bit-identical position.)
///
/// The right to change is held by a process id (the owner word) as well: when the state is
/// shared between processes and one of them dies while it holds it, a process waiting for
/// it finds the owner gone, repairs what the change may have left half done (the copy of the
/// parameters in force) and takes over. Acquisitions never need it, so they never wait for
/// a dead process.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

#include <rategov/bucket/result.hpp>
#include <rategov/config.hpp>
#include <rategov/detail/process.hpp>
#include <rategov/detail/uint128.hpp>
#include <rategov/quota/quota.hpp>

RATEGOV_NAMESPACE_BEGIN
namespace detail {

/// Ticks are nanoseconds since the owner's epoch; the horizon is 2^62 − 1 ns (146 years).
inline constexpr std::uint64_t tick_max = (std::uint64_t{1} << 62) - 1;

/// A decision in tick space: status, the tick from which the request is (or would be)
/// ready, and what it took.
struct tick_result {
    acquire_status status;
    std::uint64_t ready;
    receipt taken{};
};

/// The parameters of one metric's limit and the operations on its state word. Lock-free: see
/// the file comment.
class gcra {
    static constexpr unsigned pos_bits = 62;
    static constexpr std::uint64_t pos_mask = (std::uint64_t{1} << pos_bits) - 1;
    static constexpr std::uint64_t pos_max = pos_mask;
    static constexpr std::uint64_t accrual_limit = std::uint64_t{1} << 60; // rebase beyond
    static constexpr unsigned slot_count = 4;

    // The parameters of one limit, as atomics: a slot may be rewritten while a stale reader
    // reads it; that reader's version check then fails (see the file comment).
    struct alignas(RATEGOV_CACHE_LINE) slot {
        std::atomic<std::uint64_t> c{1};           // units accrued per tick
        std::atomic<std::uint64_t> p{1};           // units per token
        std::atomic<std::uint64_t> burst{1};       // tokens
        std::atomic<std::uint64_t> burst_units{1}; // burst·p ≤ 2^56
        std::atomic<std::uint64_t> epoch{0};       // tick at which pos counts from 0
        std::atomic<std::uint64_t> span{1};        // ticks after epoch before a rebase
        std::atomic<std::uint64_t> count{1};       // the quota as given, for limit()
        std::atomic<std::int64_t> period{1};
        // The change that installed this slot, to carry receipts across it: the chain's end
        // and the accrual at the change, before (in the previous generation's units) and
        // after (in this one's), and the scale of the tokens carried over (mul / div units
        // per unit; mul 0: nothing carried over).
        std::atomic<std::uint64_t> from_pos{0}, to_pos{0};
        std::atomic<std::uint64_t> from_accrual{0}, to_accrual{0};
        std::atomic<std::uint64_t> scale_mul{0}, scale_div{1};
    };

public:
    /// A plain copy of one slot's parameters, loaded once per attempt.
    struct view {
        std::uint64_t c, p, burst, burst_units, epoch, span;

        /// Ticks since the epoch (0 for a tick before it: a clock that went back).
        [[nodiscard]] std::uint64_t since(std::uint64_t tau) const noexcept {
            return tau > epoch ? tau - epoch : 0;
        }
        /// The earliest tick at which the accrual reaches `target` units.
        [[nodiscard]] std::uint64_t tick_of(std::uint64_t target) const noexcept {
            return std::min(epoch + (target + c - 1) / c, tick_max);
        }
        /// n tokens in units, saturated at pos_max.
        [[nodiscard]] std::uint64_t units(std::uint64_t n) const noexcept {
            return n > pos_max / p ? pos_max : n * p;
        }
        /// The units a take may leave the bucket at when it must keep `keep`/2^16 of the
        /// burst free (a regular request under a priority headroom; keep < 2^16).
        [[nodiscard]] std::uint64_t tolerance(std::uint64_t keep) const noexcept {
            return burst_units -
                   ((burst_units >> 16) * keep + (((burst_units & 0xFFFF) * keep) >> 16));
        }
        /// Units available at accrual a (may be negative: debt), as a signed value.
        [[nodiscard]] std::int64_t available_units(std::uint64_t pos,
                                                   std::uint64_t a) const noexcept {
            return pos <= a ? static_cast<std::int64_t>(burst_units)
                            : static_cast<std::int64_t>(a + burst_units) -
                                  static_cast<std::int64_t>(pos);
        }
    };

    /// The state word: `[generation:2 | pos:62]`. The owner keeps it (a governor keeps all
    /// of its metrics' words in one cache line, so that one acquisition moves one line).
    using word = std::atomic<std::uint64_t>;
    /// The value a word starts with: generation 0, position 0 at the epoch — full.
    static constexpr std::uint64_t initial_word = 0;

    /// The parameters of `q`, with the epoch at tick `tau`.
    explicit gcra(const quota& q, std::uint64_t tau = 0) {
        write_slot(0, q, tau);
        set_current(0);
    }
    gcra(const gcra&) = delete;
    gcra& operator=(const gcra&) = delete;

    // --- the hot path ---------------------------------------------------------------------

    /// Takes n tokens at tick τ if they are available now. Lock-free; never blocks, except
    /// the one call per 2^60/c ticks that performs a due rebase (see the file comment).
    [[nodiscard]] RATEGOV_ALWAYS_INLINE tick_result try_acquire(word& state, std::uint64_t n,
                                                                std::uint64_t tau) noexcept {
        receipt taken{};
        const decision d = take(
            state, n, tau, [&](std::uint64_t prior, std::uint64_t written, std::uint64_t version) {
                taken = {written, prior, n, version};
            });
        return {d.status, d.ready, taken};
    }

    /// A decision without a receipt (16 bytes: it stays in registers).
    struct decision {
        acquire_status status;
        std::uint64_t ready;
    };

    /// try_acquire's work; on a grant calls `note(prior word, written word)`. The hot path,
    /// written out rather than through `update()`: passing the parameters to a decision
    /// function made GCC keep them in memory, a third slower.
    ///
    /// With `keep` > 0 (a fraction keep/2^16 of the burst, < 1), the take must leave that
    /// much of the burst available: a request larger than the rest exceeds the capacity.
    template <class Note>
    [[nodiscard]] RATEGOV_ALWAYS_INLINE decision take(word& state, std::uint64_t n,
                                                      std::uint64_t tau, Note note,
                                                      std::uint64_t keep = 0) noexcept {
        if (n == 0)
            return {acquire_status::granted, tau}; // nothing to take, even in debt
        for (;;) {
            auto [w, v, version] = read(state);
            const std::uint64_t tol = keep == 0 ? v.burst_units : v.tolerance(keep);
            if (n > v.burst || (keep != 0 && n * v.p > tol))
                return {acquire_status::exceeds_capacity, tick_max};
            const std::uint64_t t = v.since(tau);
            if (t > v.span) {
                rebase(state, tau);
                continue;
            }
            const std::uint64_t a = v.c * t;                                // ≤ 2^60: exact
            const std::uint64_t next = std::max(w & pos_mask, a) + n * v.p; // n·p ≤ 2^56
            if (next > a + tol)
                return {acquire_status::denied, v.tick_of(next - tol)};
            if (cas(state, w, next)) {
                note(w, (w & ~pos_mask) | next, version);
                return {acquire_status::granted, tau};
            }
        }
    }

    /// The receipt of a grant of n tokens at τ that replaced word `prior`, rebuilt from those
    /// (valid while the generation is unchanged: the same parameters computed it).
    [[nodiscard]] receipt receipt_of(const word& state, std::uint64_t prior, std::uint64_t n,
                                     std::uint64_t tau) const noexcept {
        const auto [w, v, version] = read(state);
        if (gen_of(w) != gen_of(prior) || v.since(tau) > v.span)
            return {}; // changed since: nothing to give back
        const std::uint64_t next = std::max(prior & pos_mask, v.c * v.since(tau)) + n * v.p;
        return {(prior & ~pos_mask) | next, prior, n, version};
    }

    /// Whether n tokens could be taken at τ, without taking them. Same result as
    /// try_acquire would give on this state.
    [[nodiscard]] tick_result peek(const word& state, std::uint64_t n, std::uint64_t tau,
                                   std::uint64_t keep = 0) const noexcept {
        if (n == 0)
            return {acquire_status::granted, tau};
        const auto [w, v, version] = read(state);
        const std::uint64_t tol = v.tolerance(keep);
        if (n > v.burst || n * v.p > tol)
            return {acquire_status::exceeds_capacity, tick_max};
        const std::uint64_t a = accrued(v, tau);
        const std::uint64_t next = std::max(w & pos_mask, a) + n * v.p;
        if (next > a + tol)
            return {acquire_status::denied, v.tick_of(next - tol)};
        return {acquire_status::granted, tau};
    }

    /// How far ahead of τ, in ticks, n tokens may be placed without leaving the bucket in
    /// debt at τ (beyond a full bucket's reach, a placement holds back every other taker
    /// until then): (burst − n)/rate, the burst less `keep`/2^16 of it; 0 when n exceeds that.
    [[nodiscard]] std::uint64_t lead(const word& state, std::uint64_t n,
                                     std::uint64_t keep = 0) const noexcept {
        const auto [w, v, version] = read(state);
        const std::uint64_t tol = v.tolerance(keep);
        const std::uint64_t need = v.units(n);
        return need >= tol ? 0 : (tol - need) / v.c;
    }

    /// The most tokens one take may hold when it must keep `keep`/2^16 of the burst free
    /// (the burst itself for keep 0).
    [[nodiscard]] std::uint64_t allowance(const word& state,
                                          std::uint64_t keep = 0) const noexcept {
        const auto [w, v, version] = read(state);
        return v.tolerance(keep) / v.p;
    }

    /// Whether a request that must keep `keep`/2^16 of the burst free may join the queue at
    /// τ: granted when at least that much is available (nothing is queued beyond it), else
    /// denied with the tick from which it will be. Takes nothing.
    [[nodiscard]] tick_result admission(const word& state, std::uint64_t keep,
                                        std::uint64_t tau) const noexcept {
        const auto [w, v, version] = read(state);
        const std::uint64_t tol = v.tolerance(keep);
        const std::uint64_t a = accrued(v, tau);
        const std::uint64_t pos = w & pos_mask;
        if (pos <= a + tol)
            return {acquire_status::granted, tau};
        return {acquire_status::denied, v.tick_of(pos - tol)};
    }

    // --- pay forward, give back, go into debt -------------------------------------------------

    /// Takes n tokens now, to be used from the returned tick on (≥ max(τ, not_before));
    /// refuses, taking nothing, when that tick is more than `max_wait` ticks after τ, or when
    /// the queue would reach past what a position holds. The tokens are positioned as a
    /// request made at the ready tick would be, so that nobody else can use them then.
    /// With `keep` > 0 the tokens are ready only once `keep`/2^16 of the burst would remain
    /// available (see `take`). With `admit`, refused (ready = when to ask again) unless
    /// `admission` grants on this same state.
    [[nodiscard]] tick_result reserve(word& state, std::uint64_t n, std::uint64_t tau,
                                      std::uint64_t max_wait, std::uint64_t not_before = 0,
                                      std::uint64_t keep = 0, bool admit = false) noexcept {
        if (n == 0)
            return {acquire_status::granted, std::max(tau, not_before)};
        const std::uint64_t from = std::max(tau, not_before);
        for (;;) {
            auto [w, v, version] = read(state);
            const std::uint64_t tol = v.tolerance(keep);
            if (n > v.burst || n * v.p > tol)
                return {acquire_status::exceeds_capacity, tick_max};
            if (v.since(tau) > v.span) {
                rebase(state, tau);
                continue;
            }
            const std::uint64_t pos = w & pos_mask;
            if (admit && pos > v.c * v.since(tau) + tol) // see `admission`
                return {acquire_status::denied, v.tick_of(pos - tol)};
            const std::uint64_t need = n * v.p;
            std::uint64_t ready = from;
            std::uint64_t next = 0;
            if (v.since(ready) <= v.span) {
                next = std::max(pos, v.c * v.since(ready)) + need;
                if (next > v.c * v.since(ready) + tol)
                    ready = v.tick_of(next - tol);
            }
            if (v.since(ready) > v.span) {
                // Beyond what positions reach from this epoch: move the epoch to now (which
                // leaves 2^60 / c ticks ahead), or refuse if it is there already.
                if (v.since(tau) > salt_max) {
                    rebase(state, tau, true);
                    continue;
                }
                return {acquire_status::denied, ready};
            }
            next = std::max(pos, v.c * v.since(ready)) + need;
            if (next > pos_max || ready - tau > max_wait)
                return {acquire_status::denied, ready};
            if (cas(state, w, next))
                return {acquire_status::granted, ready, {(w & ~pos_mask) | next, w, n, version}};
        }
    }

    /// Gives back up to n tokens of what `taken` took (a cancelled or over-estimated
    /// request): the latest n of them, minus any that time has already restored. Reads the
    /// time through `now()` after the state, so that the refund is never judged at a time
    /// older than another thread's (whose grants may have reused tokens time restored).
    /// Across up to two limit changes, the part of the receipt's range that no change found
    /// restored is carried through them (see `carry`). Nothing is given back after more
    /// changes, or when positions after ours lie beyond a full bucket (reservations queued
    /// behind ours hold promised ready times that moving the queue would break; or debt):
    /// such a refund loses tokens rather than create any. Known limit: a refund of a take
    /// *before* ours moves the chain, and our receipt's place is then later than the truth,
    /// so part of what time restored meanwhile may be given back — at most what that refund
    /// moved, never more than the n asked for, and the bucket never beyond its burst.
    template <class Now>
    void undo(word& state, const receipt& taken, std::uint64_t n, Now now) noexcept {
        if (taken.word == 0 || n == 0)
            return;
        for (;;) {
            auto [w, v, version] = read(state);
            // At most two changes completed since the receipt (a third may be in progress):
            // the slots `carry` reads are intact — and a generation that seems the same is.
            if (version - taken.version > 5)
                return;
            const bool same = gen_of(w) == gen_of(taken.word);
            std::uint64_t end = taken.word & pos_mask;
            std::uint64_t carried_begin = 0;
            if (!same && !carry(taken, gen_of(w), version, carried_begin, end))
                return; // nothing carried over, or a change intervened: keep them
            const std::uint64_t t = v.since(now());
            if (t > v.span)
                return; // a rebase is due, which changes the generation: keep them
            const std::uint64_t a = v.c * t;
            const std::uint64_t pos = w & pos_mask;
            if (end <= a)
                return; // time has restored them already
            if (pos != end && pos > a + v.burst_units)
                return; // reservations (or debt) queued behind ours
            std::uint64_t begin = std::max(end - std::min(v.units(n), end), carried_begin);
            // Nobody took after us: the whole take can be undone to the word it replaced
            // (which also undoes a reservation's placement at its ready tick).
            if (same && pos == end && n >= taken.tokens && gen_of(taken.prior) == gen_of(w))
                begin = std::min(begin, taken.prior & pos_mask);
            const std::uint64_t give = end - std::max(begin, a);
            if (cas(state, w, std::max(pos - std::min(give, pos), a)))
                return;
        }
    }

    /// Makes the bucket hold at most `n` tokens at τ (tightens, never loosens): what a server
    /// says it has left. Idempotent, so concurrent reports of the same `n` do not add up.
    void cap_available(word& state, std::uint64_t n, std::uint64_t tau) noexcept {
        (void)update(state, tau, [&](std::uint64_t pos, const view& v, std::uint64_t a) {
            if (n >= v.burst)
                return step::keep({});
            const std::uint64_t floor_pos = a + v.burst_units - n * v.p;
            if (pos >= floor_pos)
                return step::keep({});
            return step::write(floor_pos, {});
        });
    }

    /// Gives n tokens back without a receipt: as if the n most recently taken tokens had not
    /// been taken; the bucket never holds more than its burst afterwards. Exact for a single
    /// taker; with concurrent takers, `undo` with the receipt is exact where this may return
    /// tokens that another taker's grant has already reused.
    void refund(word& state, std::uint64_t n, std::uint64_t tau) noexcept {
        if (n == 0)
            return;
        (void)update(state, tau, [&](std::uint64_t pos, const view& v, std::uint64_t a) {
            if (pos <= a)
                return step::keep({}); // already full
            return step::write(pos - std::min(v.units(n), pos - a), {});
        });
    }

    /// Takes n tokens unconditionally (usage that already happened), going into debt if
    /// needed: later requests wait until the debt is paid off by time. n may exceed the
    /// burst; the debt saturates at what a position holds (at least 47 bursts).
    void charge(word& state, std::uint64_t n, std::uint64_t tau) noexcept {
        if (n == 0)
            return;
        (void)update(state, tau, [&](std::uint64_t pos, const view& v, std::uint64_t a) {
            return step::write(std::min(std::max(pos, a) + v.units(n), pos_max), {});
        });
    }

    // --- observation --------------------------------------------------------------------------

    /// Whole tokens available at τ (0 while in debt; the burst when full).
    [[nodiscard]] std::uint64_t available(const word& state, std::uint64_t tau) const noexcept {
        const auto [w, v, version] = read(state);
        const std::int64_t units = v.available_units(w & pos_mask, accrued(v, tau));
        return units <= 0 ? 0 : static_cast<std::uint64_t>(units) / v.p;
    }

    /// Tokens owed at τ: how far `charge` has taken the bucket below empty (0 if none).
    [[nodiscard]] std::uint64_t debt(const word& state, std::uint64_t tau) const noexcept {
        const auto [w, v, version] = read(state);
        const std::int64_t units = v.available_units(w & pos_mask, accrued(v, tau));
        return units >= 0 ? 0 : (static_cast<std::uint64_t>(-units) + v.p - 1) / v.p;
    }

    /// The limit in force.
    [[nodiscard]] quota limit(const word& state) const noexcept {
        for (;;) {
            const std::uint64_t v1 = m_version.load(std::memory_order_acquire); // (1)
            const quota_fields q = limit_of(gen_of(state.load(std::memory_order_acquire)));
            if (m_version.load(std::memory_order_relaxed) == v1)
                return q.get();
        }
    }

    // --- changing the limit -------------------------------------------------------------------

    /// Replaces the limit, carrying tokens over as `how` says, at the tick `now()` returns —
    /// read after the state, so that the change is never judged at a time older than another
    /// thread's. Concurrent acquisitions are never blocked: each either completes under the
    /// old limit (before this change) or retries under the new one.
    template <class Now>
    RATEGOV_COLD void set_limit(word& state, const quota& q, inheritance how, Now now) noexcept {
        const std::uint64_t change = lock_changes(state);
        std::uint64_t w = state.load(std::memory_order_acquire);
        if (how == inheritance::keep && limit_of(gen_of(w)) == q) {
            unlock_changes(); // the same limit again (feedback repeats itself): nothing to do
            return;
        }
        const std::uint64_t tau = std::max(now(), load_view(w).epoch);
        const unsigned g2 = (gen_of(w) + 1) % slot_count;
        const std::uint64_t epoch = salted_epoch(tau, change);
        write_slot(g2, q, epoch);
        const view nv = load_view_of(g2);
        for (;;) {
            const view ov = load_view(w); // stable: only this thread changes slots now
            const std::uint64_t next = convert(ov, w & pos_mask, nv, how, tau);
            const bool kept = how == inheritance::keep;
            record(g2, {w & pos_mask, next, accrued(ov, tau), nv.c * nv.since(tau),
                        how == inheritance::reset ? 0
                        : kept                    ? nv.p
                                                  : nv.burst_units,
                        kept ? ov.p : ov.burst_units});
            if (publish(state, w, g2, next))
                break;
        }
        set_current(g2);
        unlock_changes();
    }

private:
    [[nodiscard]] static unsigned gen_of(std::uint64_t w) noexcept {
        return static_cast<unsigned>(w >> pos_bits);
    }

    /// The parameters in slot g. Acquire loads (plain loads on x86): the version check that
    /// follows in read() cannot move before them, without a fence (which ThreadSanitizer
    /// would not model).
    [[nodiscard]] RATEGOV_ALWAYS_INLINE view load_view_of(unsigned g) const noexcept {
        const slot& s = m_slots[g];
        constexpr auto o = std::memory_order_acquire;
        return {s.c.load(o),           s.p.load(o),     s.burst.load(o),
                s.burst_units.load(o), s.epoch.load(o), s.span.load(o)};
    }
    [[nodiscard]] view load_view(std::uint64_t w) const noexcept { return load_view_of(gen_of(w)); }

    /// The quota as given for slot g, as raw fields (acquire loads: see load_view_of). They
    /// become a `quota` only once known consistent: a torn read would not validate.
    struct quota_fields {
        std::uint64_t count;
        std::int64_t period;
        std::uint64_t burst;
        [[nodiscard]] quota get() const noexcept {
            return quota(count, std::chrono::nanoseconds(period)).with_burst(burst);
        }
        [[nodiscard]] bool operator==(const quota& q) const noexcept {
            return count == q.count() && period == q.period().count() && burst == q.burst();
        }
    };
    [[nodiscard]] quota_fields limit_of(unsigned g) const noexcept {
        const slot& s = m_slots[g];
        return {s.count.load(std::memory_order_acquire), s.period.load(std::memory_order_acquire),
                s.burst.load(std::memory_order_acquire)};
    }

    /// The parameters in force, from the line beside the version.
    [[nodiscard]] RATEGOV_ALWAYS_INLINE view current_view() const noexcept {
        constexpr auto o = std::memory_order_acquire;
        return {m_c.load(o),           m_p.load(o),     m_burst.load(o),
                m_burst_units.load(o), m_epoch.load(o), m_span.load(o)};
    }
    /// Makes slot g the parameters in force (while the version is odd).
    void set_current(unsigned g) noexcept {
        const view v = load_view_of(g);
        constexpr auto o = std::memory_order_release; // see write_slot
        m_c.store(v.c, o);
        m_p.store(v.p, o);
        m_burst.store(v.burst, o);
        m_burst_units.store(v.burst_units, o);
        m_epoch.store(v.epoch, o);
        m_span.store(v.span, o);
    }

    /// A(τ) for observers, which never rebase: beyond the span the bucket is full anyway
    /// (every position < 2^62 ≤ the accrual), so the accrual saturates there.
    [[nodiscard]] static std::uint64_t accrued(const view& v, std::uint64_t tau) noexcept {
        const std::uint64_t t = v.since(tau);
        return t > v.span ? pos_max : v.c * t;
    }

    /// A word and the parameters of its generation, read consistently: the change version is
    /// the same before and after, so no slot was rewritten meanwhile. Retries only when a
    /// change (another thread's progress) intervened: lock-free.
    struct snapshot {
        std::uint64_t w;
        view v;
        std::uint64_t version; ///< the change version the two were read under
    };
    [[nodiscard]] RATEGOV_ALWAYS_INLINE snapshot read(const word& state) const noexcept {
        for (;;) {
            // (1) acquire: pairs with the release in unlock_changes (4): the slots written by
            //     a completed change are visible.
            const std::uint64_t v1 = m_version.load(std::memory_order_acquire);
            // (2) acquire: pairs with the release of a successful CAS (5) or publish (6), so
            //     that the slot named by the word's generation is visible.
            const std::uint64_t w = state.load(std::memory_order_acquire);
            // (3) acquire loads, complete before the check. With no change in progress, the
            //     parameters in force sit beside the version and load in parallel with the
            //     word; during a change, from the slot that the word's generation names.
            const view v = (v1 & 1) == 0 ? current_view() : load_view(w);
            if (m_version.load(std::memory_order_relaxed) == v1)
                return {w, v, v1};
        }
    }

    /// What a mutation decided: write `next` (and return `result` if the CAS succeeds), or
    /// keep the word and return `result`.
    struct step {
        bool writes;
        std::uint64_t next;
        tick_result result;
        static step keep(tick_result r) noexcept { return {false, 0, r}; }
        static step write(std::uint64_t next, tick_result r) noexcept { return {true, next, r}; }
    };

    /// The loop every mutation shares: read a consistent word and parameters, rebase if the
    /// epoch is due, let `decide(pos, view, A(τ))` compute the step, CAS it; on a lost CAS,
    /// decide again on the new state.
    template <class Decide>
    RATEGOV_ALWAYS_INLINE tick_result update(word& state, std::uint64_t tau,
                                             Decide decide) noexcept {
        for (;;) {
            const auto [w, v, version] = read(state);
            const std::uint64_t t = v.since(tau);
            if (t > v.span) {
                rebase(state, tau);
                continue;
            }
            const step s = decide(w & pos_mask, v, v.c * t); // c·t ≤ 2^60: exact
            if (!s.writes || cas(state, w, s.next))
                return s.result;
        }
    }

    /// Moves `w`'s position to `next` if the word is still `w`.
    static bool cas(word& state, std::uint64_t w, std::uint64_t next) noexcept {
        // (5) acq_rel: release publishes our position to the next reader (2); acquire
        //     orders this after the reads that decided it. On failure the caller reads again.
        return state.compare_exchange_weak(w, (w & ~pos_mask) | next, std::memory_order_acq_rel,
                                           std::memory_order_relaxed);
    }

    /// Changes (set_limit, rebase) are serialised among themselves by the owner word (the
    /// id of the process whose thread holds the right to change, 0 when free) and announce
    /// themselves to readers by an odd version; they never block acquisitions, which only
    /// compare versions. Returns the number of this change (how many changes came before).
    std::uint64_t lock_changes(const word& state) noexcept {
        const std::uint64_t me = this_process();
        for (unsigned spins = 1;; ++spins) {
            std::uint64_t owner = 0;
            // acquire: pairs with the release in unlock_changes (7): the last change's
            // writes are visible to this one.
            if (m_owner.compare_exchange_weak(owner, me, std::memory_order_acquire,
                                              std::memory_order_relaxed))
                break;
            // Every 256 turns, ask whether the owner still lives (another process's id).
            if (spins % 256 == 0 && !process_alive(owner) &&
                m_owner.compare_exchange_strong(owner, me, std::memory_order_acquire,
                                                std::memory_order_relaxed)) {
                take_over(state);
                break;
            }
            std::this_thread::yield();
        }
        const std::uint64_t v = m_version.fetch_add(1, std::memory_order_acquire); // even → odd
        return v / 2;
    }

    /// Repairs what a change whose process died may have left half done: the version odd,
    /// and the copy of the parameters in force not yet that of the published generation (a
    /// slot is complete before its generation is published, and an unpublished slot is
    /// rewritten by the next change).
    RATEGOV_COLD void take_over(const word& state) noexcept {
        // A read-modify-write (acq_rel): ordered after the dead owner's last writes.
        std::uint64_t v = m_version.fetch_add(0, std::memory_order_acq_rel);
        if ((v & 1) != 0) {
            set_current(gen_of(state.load(std::memory_order_acquire)));
            // odd → even, from the very odd value the dead owner left: consistent again.
            m_version.compare_exchange_strong(v, v + 1, std::memory_order_acq_rel,
                                              std::memory_order_relaxed);
        }
    }

    /// The epoch of change number `change` at tick τ: τ moved back by a salt that differs
    /// from change to change (1 + the change number modulo 2^20, in ns). Positions count from
    /// the epoch, so a full bucket's position after a change is c · salt rather than 0 every
    /// time, and a state word does not come back bit for bit after four changes: a reader
    /// still holding the word of four changes ago fails its CAS (the slots are reused every
    /// four changes).
    [[nodiscard]] static std::uint64_t salted_epoch(std::uint64_t tau,
                                                    std::uint64_t change) noexcept {
        const std::uint64_t salt = 1 + change % salt_max;
        return tau > salt ? tau - salt : 0;
    }
    static constexpr std::uint64_t salt_max = std::uint64_t{1} << 20;
    void unlock_changes() noexcept {
        m_version.fetch_add(1, std::memory_order_release); // (4)
        m_owner.store(0, std::memory_order_release);       // (7)
    }

    /// Installs generation g2 with position `next` if the word is still `w`.
    static bool publish(word& state, std::uint64_t& w, unsigned g2, std::uint64_t next) noexcept {
        // (6) release: publishes the slot written before, together with the new generation,
        //     to every reader that acquires this word (2).
        return state.compare_exchange_weak(w, (std::uint64_t{g2} << pos_bits) | next,
                                           std::memory_order_acq_rel, std::memory_order_acquire);
    }

    /// Moves the epoch to τ, shifting the position by the exact accrual between the two.
    /// `force`: also when not due yet (a reservation that needs the room ahead).
    RATEGOV_COLD void rebase(word& state, std::uint64_t tau, bool force = false) noexcept {
        const std::uint64_t change = lock_changes(state);
        std::uint64_t w = state.load(std::memory_order_acquire);
        const view v = load_view(w);
        if (v.since(tau) > (force ? salt_max : v.span)) { // nobody rebased meanwhile
            const unsigned g2 = (gen_of(w) + 1) % slot_count;
            const std::uint64_t epoch = salted_epoch(tau, change); // > v.epoch: t > salt_max
            copy_slot(g2, gen_of(w), epoch);
            const std::uint64_t moved = epoch - v.epoch, now_pos = v.c * (tau - epoch);
            for (;;) {
                // pos − c·moved (the same instant counted from the new epoch), at least the
                // accrual now (full); c·moved ≤ pos is tested as moved ≤ pos / c, which
                // cannot overflow.
                const std::uint64_t pos = w & pos_mask;
                const std::uint64_t shifted = moved <= pos / v.c ? pos - v.c * moved : 0;
                record(g2, {pos, std::max(shifted, now_pos), v.c * (tau - v.epoch), now_pos, 1, 1});
                if (publish(state, w, g2, std::max(shifted, now_pos)))
                    break;
            }
            set_current(g2);
        }
        unlock_changes();
    }

    /// The position under `nv` that carries over the tokens of `pos` under `ov`, at tick τ
    /// (≥ both epochs).
    [[nodiscard]] static std::uint64_t convert(const view& ov, std::uint64_t pos, const view& nv,
                                               inheritance how, std::uint64_t tau) noexcept {
        const std::uint64_t now_pos = nv.c * nv.since(tau); // c'·salt: small
        if (how == inheritance::reset)
            return now_pos; // full
        const std::int64_t old_avail = ov.available_units(pos, accrued(ov, tau));
        const bool debt = old_avail < 0;
        const std::uint64_t mag =
            debt ? static_cast<std::uint64_t>(-old_avail) : static_cast<std::uint64_t>(old_avail);
        // keep: the same tokens (units scale by p'/p); proportional: the same share of the
        // burst. Positive amounts round down, debts up: never more than was there.
        const std::uint64_t mul = how == inheritance::keep ? nv.p : nv.burst_units;
        const std::uint64_t div = how == inheritance::keep ? ov.p : ov.burst_units;
        const u128 scaled = mul_64x64(mag, mul);
        const std::uint64_t new_mag =
            std::min(debt ? div_ceil(scaled, div) : divmod(scaled, div).quot, pos_max);
        if (!debt)
            return now_pos + (new_mag >= nv.burst_units ? 0 : nv.burst_units - new_mag);
        return std::min(now_pos + nv.burst_units + new_mag, pos_max);
    }

    void write_slot(unsigned g, const quota& q, std::uint64_t epoch) noexcept {
        const std::uint64_t count = q.count();
        const auto period = static_cast<std::uint64_t>(q.period().count());
        const std::uint64_t d = gcd(count, period);
        // c ≤ p: at most 1 token per tick. When a full bucket would not fit in 2^56 units,
        // the rate becomes the closest fraction below it that fits (see `quota`).
        const fraction rate =
            best_lower_fraction(count / d, period / d, quota::max_burst / q.burst());
        const std::uint64_t c = rate.num, p = rate.den;
        // Release stores: a reader that sees one of them (acquire) also sees the odd version
        // that began this change, and so fails its version check (see read()).
        slot& s = m_slots[g];
        s.c.store(c, std::memory_order_release);
        s.p.store(p, std::memory_order_release);
        s.burst.store(q.burst(), std::memory_order_release);
        s.burst_units.store(q.burst() * p, std::memory_order_release); // ≤ 2^56
        s.epoch.store(epoch, std::memory_order_release);
        s.span.store(accrual_limit / c, std::memory_order_release);
        s.count.store(count, std::memory_order_release);
        s.period.store(q.period().count(), std::memory_order_release);
    }

    /// A change as `carry` needs it (see `slot`).
    struct conversion {
        std::uint64_t from_pos, to_pos, from_accrual, to_accrual, scale_mul, scale_div;
    };
    /// Notes in slot g the conversion about to be published. Release stores, made visible
    /// with the generation by the publishing CAS (6).
    void record(unsigned g, const conversion& k) noexcept {
        slot& s = m_slots[g];
        constexpr auto o = std::memory_order_release;
        s.from_pos.store(k.from_pos, o);
        s.to_pos.store(k.to_pos, o);
        s.from_accrual.store(k.from_accrual, o);
        s.to_accrual.store(k.to_accrual, o);
        s.scale_mul.store(k.scale_mul, o);
        s.scale_div.store(k.scale_div, o);
    }

    /// A receipt's range carried into generation `g` (that of a word read under change
    /// version `version`) through the changes since: at each, only the part of the range
    /// that time had not restored yet survives, scaled as the change scaled tokens (rounded
    /// down), and it ends where the tokens taken after it (rounded up) leave room — never
    /// later than the receipt's own range would be. False when a change carried nothing over
    /// (`inheritance::reset`, or the range was restored already) or one intervened.
    [[nodiscard]] bool carry(const receipt& taken, unsigned g, std::uint64_t version,
                             std::uint64_t& begin, std::uint64_t& end) const noexcept {
        constexpr auto o = std::memory_order_acquire; // see load_view_of
        std::uint64_t e = taken.word & pos_mask;
        const std::uint64_t p = m_slots[gen_of(taken.word)].p.load(o);
        const std::uint64_t taken_units = taken.tokens > pos_max / p ? pos_max : taken.tokens * p;
        std::uint64_t b = e - std::min(e, taken_units);
        for (unsigned from = gen_of(taken.word); from != g; from = (from + 1) % slot_count) {
            const slot& k = m_slots[(from + 1) % slot_count];
            const std::uint64_t mul = k.scale_mul.load(o), div = k.scale_div.load(o);
            const std::uint64_t a = k.from_accrual.load(o), before = k.from_pos.load(o);
            const std::uint64_t after = k.to_pos.load(o);
            if (mul == 0 || div == 0 || e <= a)
                return false; // nothing carried over, or restored before the change
            const std::uint64_t unrestored = e - std::max(b, a);
            const std::uint64_t behind = before > e ? before - e : 0;
            const std::uint64_t moved = div_ceil(mul_64x64(behind, mul), div);
            const std::uint64_t kept =
                std::min(divmod(mul_64x64(unrestored, mul), div).quot, pos_max);
            e = after > moved ? after - moved : 0;
            b = e - std::min(e, kept);
        }
        begin = b;
        end = e;
        return m_version.load(std::memory_order_relaxed) == version;
    }

    void copy_slot(unsigned to, unsigned from, std::uint64_t epoch) noexcept {
        const slot& f = m_slots[from];
        slot& s = m_slots[to];
        for (auto [dst, src] :
             {std::pair{&s.c, &f.c}, std::pair{&s.p, &f.p}, std::pair{&s.burst, &f.burst},
              std::pair{&s.burst_units, &f.burst_units}, std::pair{&s.span, &f.span},
              std::pair{&s.count, &f.count}})
            dst->store(src->load(std::memory_order_relaxed), std::memory_order_release);
        s.period.store(f.period.load(std::memory_order_relaxed), std::memory_order_release);
        s.epoch.store(epoch, std::memory_order_release);
    }

    static_assert(std::atomic<std::uint64_t>::is_always_lock_free,
                  "rategov: the bucket needs lock-free 64-bit atomics");

    // One read-mostly line, read by every operation and written only by changes: the version
    // (even: no change in progress; odd: a change holds the right to write slots) and a copy
    // of the parameters in force.
    alignas(RATEGOV_CACHE_LINE) std::atomic<std::uint64_t> m_version{0};
    std::atomic<std::uint64_t> m_c{1}, m_p{1}, m_burst{1}, m_burst_units{1}, m_epoch{0}, m_span{1};
    // The id of the process holding the right to change (0: free), on its own line: waiters
    // poll it.
    alignas(RATEGOV_CACHE_LINE) std::atomic<std::uint64_t> m_owner{0};

    slot m_slots[slot_count];
};

} // namespace detail
RATEGOV_NAMESPACE_END
