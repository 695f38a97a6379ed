/// \file
/// A cap on requests in flight: `in_flight_cap` (the limit, `at_most(n)`) and
/// `in_flight_slots` (the counting semaphore a `level` keeps for `metric::in_flight`), with
/// the waits that end when a slot frees.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <stop_token>
#include <string>

#include <rategov/bucket/result.hpp>
#include <rategov/clock/clock.hpp>
#include <rategov/config.hpp>
#include <rategov/governor/governor.hpp>

RATEGOV_NAMESPACE_BEGIN

/// The limit of `metric::in_flight`: at most `slots()` requests at once. Made by `at_most`.
class in_flight_cap {
public:
    /// Largest cap: 2^31 slots.
    static constexpr std::uint64_t max_slots = std::uint64_t{1} << 31;

    /// At most `n` requests in flight (1 ≤ n ≤ 2^31).
    /// \throws config_error naming `n` otherwise.
    explicit in_flight_cap(std::uint64_t n)
        : m_slots(n) {
        if (n == 0 || n > max_slots)
            detail::throw_config_error("at_most(" + std::to_string(n) +
                                       "): an in-flight cap must be between 1 and 2^31 slots");
    }
    /// The number of slots.
    [[nodiscard]] std::uint64_t slots() const noexcept { return m_slots; }
    /// Equal when the slots are.
    friend bool operator==(const in_flight_cap&, const in_flight_cap&) = default;

private:
    std::uint64_t m_slots;
};

/// At most `n` requests in flight: the limit of `metric::in_flight` in a `level`.
/// \throws config_error unless 1 ≤ n ≤ 2^31.
/// \code
/// rategov::level<rategov::metrics<rategov::metric::generated, rategov::metric::in_flight>>
///     model(rategov::per_minute(36'000), rategov::at_most(64));
/// \endcode
[[nodiscard]] inline in_flight_cap at_most(std::uint64_t n) {
    return in_flight_cap(n);
}

/// Told after every release of a slot (see `in_flight_slots::listen`): an event loop posts
/// itself a wake-up, then lets the calls waiting for a slot ask again.
/// \code
/// struct wake final : rategov::release_listener {
///     void on_release() noexcept override { loop.post_wakeup(); }
/// } w;
/// model.slots.listen(&w);
/// \endcode
class release_listener {
public:
    /// Called on the releasing thread, after the slot is free. Keep it short; never throw.
    virtual void on_release() noexcept = 0;

protected:
    release_listener() = default;
    /// Copies nothing (a listener has no state of the library's).
    release_listener(const release_listener&) = default;
    /// Copies nothing.
    release_listener& operator=(const release_listener&) = default;
    ~release_listener() = default;
};

/// A counting semaphore for requests in flight: lock-free `try_take` and `release`, and
/// waits that end when a slot frees (blocking, on a condition variable that a release
/// notifies only when someone waits) or a listener told of each release (for event loops).
///
/// Taking never waits: a request that finds no slot is refused at once, with a
/// `slot_ticket` to wait on. A release wakes every waiter; each asks again (the first to ask
/// gets the slot; there is no queue).
/// \code
/// rategov::in_flight_slots slots(rategov::at_most(64));
/// const auto seen = slots.generation();
/// if (slots.try_take(1) == rategov::acquire_status::granted) { send(); slots.release(1); }
/// else slots.wait_for_release(seen, rategov::steady_clock{}, deadline);
/// \endcode
class alignas(RATEGOV_CACHE_LINE) in_flight_slots {
public:
    /// A semaphore with `cap.slots()` slots, all free.
    explicit in_flight_slots(in_flight_cap cap) noexcept
        : m_limit(cap.slots()) {}
    in_flight_slots(const in_flight_slots&) = delete;
    in_flight_slots& operator=(const in_flight_slots&) = delete;

    /// Takes `n` slots if they are free; `traffic_class::regular` must leave the priority
    /// headroom free. Lock-free, never waits. `exceeds_capacity` when `n` is more than the
    /// cap (less the headroom, for regular traffic) could ever hold.
    [[nodiscard]] acquire_status try_take(std::uint64_t n,
                                          traffic_class who = traffic_class::priority) noexcept {
        // relaxed: a setting, not a publication; a request may see the old or the new share.
        const std::uint64_t keep =
            who == traffic_class::regular ? m_keep.load(std::memory_order_relaxed) : 0;
        // relaxed: the limit is a setting; a take racing with `set_limit` may use either.
        const std::uint64_t allowed = allowed_of(m_limit.load(std::memory_order_relaxed), keep);
        if (n > allowed)
            return acquire_status::exceeds_capacity;
        // relaxed: the count orders nothing else, and a release's generation lives in the
        // same word, so a take that fails on a word read after a ticket's generation is
        // before any release that could end the ticket's wait (one word's modification
        // order).
        std::uint64_t w = m_word.load(std::memory_order_relaxed);
        do {
            if ((w & used_mask) + n > allowed)
                return acquire_status::denied;
        } while (!m_word.compare_exchange_weak(w, w + n, std::memory_order_relaxed));
        return acquire_status::granted;
    }

    /// Gives back `n` slots taken by `try_take` (exactly once per take: the caller keeps
    /// count), then wakes the waiters and tells the listener.
    void release(std::uint64_t n) noexcept {
        if (n == 0)
            return;
        // One RMW frees the slots and moves the generation. seq_cst: then reads the waiter
        // count (see `wait_for_release`).
        m_word.fetch_add(generation_one - n, std::memory_order_seq_cst);
        announce();
    }

    /// Changes the cap. Slots in use above a lowered cap stay in use (nothing is revoked);
    /// new takes wait until enough are released. A raised cap wakes the waiters.
    void set_limit(in_flight_cap cap) noexcept {
        m_limit.store(cap.slots(), std::memory_order_relaxed);
        m_word.fetch_add(generation_one, std::memory_order_seq_cst);
        announce();
    }

    /// Keeps `share` of the cap for priority traffic: regular requests may hold only the
    /// rest (the part kept is rounded down). Thread-safe; takes effect for the next take.
    /// \throws config_error unless 0 ≤ share < 1.
    void set_priority_headroom(double share) {
        m_keep.store(detail::headroom_fixed(share, "in_flight_slots::set_priority_headroom"),
                     std::memory_order_relaxed);
    }
    /// The share of the cap kept for priority traffic (to 1/65536).
    [[nodiscard]] double priority_headroom() const noexcept {
        return m_keep.load(std::memory_order_relaxed) / 65536.0;
    }

    /// The most slots `who` may hold at once: the cap, less the priority headroom for
    /// regular traffic.
    [[nodiscard]] std::uint64_t allowed(traffic_class who) const noexcept {
        return allowed_of(
            limit(), who == traffic_class::regular ? m_keep.load(std::memory_order_relaxed) : 0);
    }

    /// Slots in use now.
    [[nodiscard]] std::uint64_t in_use() const noexcept {
        return m_word.load(std::memory_order_relaxed) & used_mask;
    }
    /// The cap in force.
    [[nodiscard]] std::uint64_t limit() const noexcept {
        return m_limit.load(std::memory_order_relaxed);
    }
    /// Slots free now (0 when the cap was lowered below the slots in use).
    [[nodiscard]] std::uint64_t available() const noexcept {
        const std::uint64_t l = limit(), u = in_use();
        return u < l ? l - u : 0;
    }

    /// A number that changes at every release and change of the cap. Read it before a
    /// `try_take` that may fail, and wait with it: a wait on a value read before the take
    /// ends at the first release after the take, never misses one.
    [[nodiscard]] std::uint32_t generation() const noexcept {
        return static_cast<std::uint32_t>(m_word.load(std::memory_order_seq_cst) >> 32);
    }

    /// Blocks until the generation differs from `seen` (true: a slot was released since; ask
    /// again), or until `clock` reads `until` or `stop` is requested (false). A release
    /// wakes the wait at once. On a real clock it waits for the time that remains; on a
    /// clock with its own `sleep_until` (virtual time) it checks that clock every
    /// millisecond of real time, since only a release or another thread moves it — except
    /// on a clock whose waits move the time themselves (`advances_on_wait()`, a manual
    /// clock in `wait_mode::advance`, for single-threaded tests): there nothing else can
    /// release a slot, so a wait with a deadline moves the time to it and ends. A wait with
    /// no deadline for a slot that only its own thread could release waits for ever, as a
    /// semaphore would.
    template <class C>
    bool wait_for_release(std::uint32_t seen, const C& clock, typename C::time_point until,
                          std::stop_token stop = {}) const {
        static_assert(check_clock<C>());
        const auto released = [&] { return generation() != seen; };
        if (released())
            return true;
        if constexpr (requires { clock.advances_on_wait(); }) {
            if (clock.advances_on_wait() && until != C::time_point::max()) {
                static_cast<void>(rategov::sleep_until(clock, until, std::move(stop)));
                return released();
            }
        }
        std::unique_lock lock(m_mutex);
        // seq_cst: a releaser moves the generation, then reads this count; we count
        // ourselves, then read the generation. One of us sees the other.
        m_waiters.fetch_add(1, std::memory_order_seq_cst);
        struct leave {
            const in_flight_slots& s;
            ~leave() { s.m_waiters.fetch_sub(1, std::memory_order_seq_cst); }
        } const guard{*this};
        for (;;) {
            if (released())
                return true;
            if (stop.stop_requested())
                return false;
            const auto now = clock.now();
            if (now >= until)
                return false;
            std::chrono::nanoseconds slice = std::chrono::milliseconds(1);
            if constexpr (!clock_has_sleep<C>) {
                slice = std::chrono::hours(1);
                if (until - now < std::chrono::duration_cast<typename C::duration>(slice))
                    slice = std::chrono::ceil<std::chrono::nanoseconds>(until - now);
            }
            if (m_cv.wait_for(lock, stop, slice, released))
                return true;
        }
    }

    /// Tells `l` of every release from now on (nullptr: nobody). `l` must outlive its
    /// registration and any release running while it is replaced: set it once, for the
    /// lifetime of the event loop that listens.
    void listen(release_listener* l) noexcept { m_listener.store(l, std::memory_order_release); }

private:
    [[nodiscard]] static std::uint64_t allowed_of(std::uint64_t limit,
                                                  std::uint64_t keep) noexcept {
        // The part kept is rounded down, as of a rate's burst: regular traffic may hold
        // limit − ⌊limit · keep / 2^16⌋ (limit ≤ 2^31, keep < 2^16: no overflow).
        return limit - ((limit * keep) >> 16);
    }

    void announce() noexcept {
        if (m_waiters.load(std::memory_order_seq_cst) != 0) {
            // Taking the mutex orders this notification after a waiter's check of the
            // generation, or before its wait: none sleeps through it.
            { const std::lock_guard<std::mutex> g(m_mutex); }
            m_cv.notify_all();
        }
        // acquire: pairs with `listen`'s release, so the listener is seen constructed.
        if (release_listener* l = m_listener.load(std::memory_order_acquire))
            l->on_release();
    }

    static constexpr std::uint64_t used_mask = (std::uint64_t{1} << 32) - 1;
    static constexpr std::uint64_t generation_one = std::uint64_t{1} << 32;

    // [generation:32 | slots in use:32] (in use ≤ 2^31): a release frees its slots and
    // announces it in one RMW. The only word a take or a release writes.
    std::atomic<std::uint64_t> m_word{0};
    // Read by every take and release, written rarely: a line of their own.
    alignas(RATEGOV_CACHE_LINE) std::atomic<std::uint64_t> m_limit;
    std::atomic<std::uint32_t> m_keep{0}; // priority headroom, 1/65536 of the cap
    mutable std::atomic<std::uint32_t> m_waiters{0};
    std::atomic<release_listener*> m_listener{nullptr};
    mutable std::mutex m_mutex;
    mutable std::condition_variable_any m_cv;
};

/// What a request refused for want of a slot may wait on: the semaphore that refused it and
/// its generation read before the attempt. Empty (false) for any other refusal.
/// \code
/// if (auto t = r.slot()) t.wait(clock, deadline); // then ask again
/// \endcode
struct slot_ticket {
    /// The semaphore that had no slot (nullptr: not a slot refusal).
    const in_flight_slots* slots = nullptr;
    /// Its generation before the attempt.
    std::uint32_t seen = 0;

    /// Whether this is a slot refusal.
    [[nodiscard]] explicit operator bool() const noexcept { return slots != nullptr; }
    /// Whether a slot was released since the attempt (then ask again now).
    [[nodiscard]] bool released() const noexcept {
        return slots != nullptr && slots->generation() != seen;
    }
    /// Blocks until a slot is released since the attempt (true), `until` passes on `clock` or
    /// `stop` is requested (false). See `in_flight_slots::wait_for_release`.
    template <class C>
    bool wait(const C& clock, typename C::time_point until, std::stop_token stop = {}) const {
        return slots == nullptr || slots->wait_for_release(seen, clock, until, std::move(stop));
    }
};

RATEGOV_NAMESPACE_END
