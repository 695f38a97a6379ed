/// \file
/// Where a governor keeps its state: the `Store` policy of `governor`. The default,
/// `in_process`, keeps it inside the governor object; `shm::store`
/// (`<rategov/shm/shm.hpp>`) keeps it in a shared-memory segment that several processes
/// attach. The governor's operations and their semantics are the same for every store.
#pragma once

#include <array>
#include <atomic>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include <rategov/bucket/gcra.hpp>
#include <rategov/config.hpp>

RATEGOV_NAMESPACE_BEGIN

namespace detail {

/// Everything a governor over N metrics shares with the other users of its limits: each
/// metric's state word (on a cache line of its own) and parameters, the priority headroom,
/// and the clock tick at which its tick 0 falls. Only atomics and plain integers that never
/// change after construction: it may live in memory shared between processes. `Tag` (the
/// governor's metrics) only distinguishes the states of governors over different metrics.
template <std::size_t N, class Tag = void>
struct governor_state {
    /// Each metric's state word on a cache line of its own. (All words on one line would
    /// move one line per acquisition instead of N, but measured worse under contention: two
    /// threads then serialise on that line for the whole acquisition, while separate lines
    /// let one thread take metric 2 while the other takes metric 1.)
    struct alignas(RATEGOV_CACHE_LINE) padded_word {
        gcra::word value{gcra::initial_word};
    };

    /// Full buckets with these limits; tick 0 is `epoch_ticks` of the governor's clock.
    template <class... Q>
    explicit governor_state(std::int64_t epoch_ticks, const Q&... limits)
        : epoch(epoch_ticks)
        , buckets{{gcra(limits)...}} {}
    governor_state(const governor_state&) = delete;
    governor_state& operator=(const governor_state&) = delete;

    const std::int64_t epoch; ///< the clock's nanoseconds at tick 0
    std::array<padded_word, N> words;
    std::array<gcra, N> buckets;
    std::array<std::atomic<std::uint32_t>, N> keep{}; ///< priority headroom, 1/65536 of burst
};

} // namespace detail

/// The default store: the governor's state is a member of the governor, private to the
/// process. `rategov::governor<M>` is `rategov::governor<M, steady_clock, refund_on_drop,
/// in_process>`; another store is the fourth argument:
/// \code
/// rategov::governor<llm> here(rategov::per_minute(36'000));           // in this process
/// auto seg = rategov::shm::segment::open("/acme-limits");              // <rategov/shm/shm.hpp>
/// rategov::shm::governor<llm> shared(seg.place("acct/model"), rategov::steady_clock{},
///                                    rategov::per_minute(36'000));    // every process
/// \endcode
struct in_process {
    /// Where to put a governor's state: nowhere to say for this store.
    struct place {};

    /// Holds a `State` as a member.
    template <class State>
    class holder {
    public:
        /// Constructs the state from `make()` (a prvalue: the state is neither copied nor
        /// moved).
        template <class Make>
        holder(place, Make make)
            : m_state(make()) {}
        /// The state.
        [[nodiscard]] State& get() noexcept { return m_state; }
        /// The state.
        [[nodiscard]] const State& get() const noexcept { return m_state; }

    private:
        State m_state;
    };
};

namespace detail {
struct probe_state {
    int value = 0;
};
struct probe_make {
    probe_state operator()() const { return {}; }
};
} // namespace detail

/// A store policy: `S::place` says where a state goes, and `S::holder<State>` is constructed
/// from a place and a function returning the state to create when there is none yet, and
/// gives access to the state by `get()`.
template <class S>
concept state_store = std::copy_constructible<typename S::place> &&
    requires(typename S::template holder<detail::probe_state>& h,
             const typename S::template holder<detail::probe_state>& ch, typename S::place p) {
    typename S::template holder<detail::probe_state>;
    { h.get() } -> std::same_as<detail::probe_state&>;
    { ch.get() } -> std::same_as<const detail::probe_state&>;
    requires std::constructible_from < typename S::template holder<detail::probe_state>,
    typename S::place, detail::probe_make > ;
};

RATEGOV_NAMESPACE_END
