/// \file
/// Keyed limits: one governor (or any value holding one) per key — per account, per model,
/// per model variant — created on first use, evicted when idle.
///
/// \code
/// using gov_t = rategov::governor<llm>;
/// rategov::keyed<rategov::model_key, rategov::keyed_limits<gov_t>> limits(
///     {.max_keys = 1024},
///     [](const rategov::model_key& k) {              // limits differ per model
///         return rategov::keyed_limits<gov_t>(rategov::per_minute(600),
///                                             rategov::per_minute(k.model() == "big" ? 36'000
///                                                                                    : 360'000));
///     });
/// auto h = limits.get({"acct-1", "llama-v3p1-8b", "turbo"});  // a handle: holds the entry
/// h->governor.try_acquire(cost);
/// \endcode
///
/// **How it is safe.** Lookups of an existing key take no lock and allocate nothing: a hash,
/// a probe of an open-addressing table and one atomic add on the entry's state, which
/// counts the handles that hold it (and, as they are given back, its uses, for idleness).
/// The state is striped over four cache lines, one chosen per thread, so that threads
/// looking up the same key do not contend. Creating and evicting entries take a mutex that
/// lookups never take. An entry is evicted only by compare-and-swaps that find no holder
/// and mark it dead, stripe by stripe, each from the word the sweep judged idle (a hold
/// taken meanwhile fails one, and the stripes already marked come alive again), so a handle
/// never outlives its entry, and a lookup that races with the eviction sees "dead" in the
/// word it just added to and looks again. The memory of an evicted entry is never returned
/// while the registry lives — it is reused for a later key — so a lookup that still holds
/// its address reads valid memory (a state word) and finds it dead or another key's.
///
/// Why reference counts rather than hazard pointers or epochs: a caller holds an entry for
/// a whole call (seconds, across retries), not for a short critical section; a count
/// expresses exactly that, costs one atomic add to take and one to give back, and needs
/// no per-thread registration. Hazard pointers would need a fence per lookup and a slot
/// per held entry; epochs would let one long call hold back every eviction.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cassert>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <rategov/adaptive/adaptive.hpp>
#include <rategov/client/call.hpp>
#include <rategov/clock/clock.hpp>
#include <rategov/config.hpp>

RATEGOV_NAMESPACE_BEGIN

/// A ready key: account, model and model variant (empty for the base deployment). The hash
/// is computed once, at construction: build keys once and reuse them on the hot path.
class model_key {
public:
    model_key()
        : m_hash(compute_hash()) {}
    /// The key of `model` (variant `variant`, empty for the base deployment) on `account`;
    /// hashes the three parts once.
    model_key(std::string account, std::string model, std::string variant = {})
        : m_account(std::move(account))
        , m_model(std::move(model))
        , m_variant(std::move(variant))
        , m_hash(compute_hash()) {}
    /// Copies the parts and the hash.
    model_key(const model_key&) = default;
    /// Copies the parts and the hash.
    model_key& operator=(const model_key&) = default;
    /// A moved-from key is a valid key again (its hash matches its parts).
    model_key(model_key&& o) noexcept
        : m_account(std::move(o.m_account))
        , m_model(std::move(o.m_model))
        , m_variant(std::move(o.m_variant))
        , m_hash(o.m_hash) {
        o.m_hash = o.compute_hash();
    }
    /// Takes `o`'s parts and hash; `o` is left a valid key (its hash matches its parts).
    model_key& operator=(model_key&& o) noexcept {
        if (this != &o) {
            m_account = std::move(o.m_account);
            m_model = std::move(o.m_model);
            m_variant = std::move(o.m_variant);
            m_hash = o.m_hash;
            o.m_hash = o.compute_hash();
        }
        return *this;
    }
    ~model_key() = default;

    /// The account.
    [[nodiscard]] const std::string& account() const noexcept { return m_account; }
    /// The model.
    [[nodiscard]] const std::string& model() const noexcept { return m_model; }
    /// The model variant (empty for the base deployment).
    [[nodiscard]] const std::string& variant() const noexcept { return m_variant; }
    /// The hash computed at construction (what `std::hash<model_key>` returns).
    [[nodiscard]] std::size_t hash() const noexcept { return m_hash; }

    /// Whether account, model and variant are all equal (the hashes compared first).
    friend bool operator==(const model_key& a, const model_key& b) noexcept {
        return a.m_hash == b.m_hash && a.m_account == b.m_account && a.m_model == b.m_model &&
               a.m_variant == b.m_variant;
    }

private:
    [[nodiscard]] std::size_t compute_hash() const noexcept {
        // FNV-1a over the three parts, each followed by a separator that cannot occur in
        // the lengths' encoding: ("ab","c") and ("a","bc") differ.
        std::uint64_t h = 0xCBF29CE484222325ULL;
        for (const std::string* s : {&m_account, &m_model, &m_variant}) {
            for (const char c : *s)
                h = (h ^ static_cast<unsigned char>(c)) * 0x100000001B3ULL;
            h = (h ^ (s->size() & 0xFF) ^ 0x100) * 0x100000001B3ULL;
        }
        return static_cast<std::size_t>(h ^ (h >> 29));
    }

    std::string m_account, m_model, m_variant;
    std::size_t m_hash;
};

RATEGOV_NAMESPACE_END

/// Hashes a `rategov::model_key` with its precomputed hash, so that it can key unordered
/// containers and `rategov::keyed`.
template <>
struct std::hash<rategov::model_key> {
    /// `k.hash()`: computed at `k`'s construction, not now.
    std::size_t operator()(const rategov::model_key& k) const noexcept { return k.hash(); }
};

RATEGOV_NAMESPACE_BEGIN

/// A ready value for a registry: a governor and its adaptive limits, side by side.
/// Constructed from the governor's arguments.
template <class Governor>
struct keyed_limits {
    /// Constructs the governor from `args` (e.g. its quotas); the adaptive limits start with
    /// no bounds (bind them with `adaptive.bound`, e.g. in the registry's `on_create`).
    template <class... A>
    requires std::constructible_from<Governor, A...>
    explicit keyed_limits(A&&... args)
        : governor(std::forward<A>(args)...) {}
    keyed_limits(const keyed_limits&) = delete;
    keyed_limits& operator=(const keyed_limits&) = delete;

    /// The key's governor.
    Governor governor;
    /// The adaptive limits of `governor` (no metric bounded until `bound` is called).
    adaptive_limits<Governor> adaptive{governor};
};

/// What a registry does when a new key arrives and `max_keys` entries exist.
enum class when_full : std::uint8_t {
    evict_idlest, ///< evict the entry idle longest with no holder; refuse if every one is held
    refuse,       ///< refuse the new key (`keyed_status::full`) until entries are evicted
};

/// Options of a registry.
template <class Clock>
struct keyed_options {
    /// At most this many keys at once (1 ≤ max_keys ≤ 2^24).
    std::size_t max_keys = 1024;
    /// `evict_idle()` with no argument evicts entries unused for this long.
    typename Clock::duration idle_after =
        std::chrono::duration_cast<typename Clock::duration>(std::chrono::minutes(10));
    /// The policy when full.
    when_full full = when_full::evict_idlest;
};

/// How a lookup went.
enum class keyed_status : std::uint8_t {
    found,   ///< the key existed
    created, ///< the key was created by this call
    absent,  ///< `find` only: no such key
    full,    ///< no entry could be made: `max_keys` reached and none evictable
};

/// What `for_each` reports of an entry.
template <class Duration>
struct keyed_stats {
    std::uint32_t uses;    ///< handles given back so far: completed uses (modulo 2^32)
    std::uint32_t holders; ///< handles alive now
    Duration idle_for;     ///< time since last seen in use, as of the last sweep (0 if in use)
};

/// A concurrent registry from `Key` to `Value` (a governor, `keyed_limits<Governor>`, or
/// your own type), created on first use by a factory.
///
/// - `get(key)` returns a `handle` to the entry, creating it with `factory(key)` if
///   absent. Lookups of existing keys are lock-free and allocation-free; creations (and
///   evictions) are serialised among themselves and never block lookups. The factory runs
///   once per created entry, under the registry's mutex; if it throws, the exception
///   propagates and nothing is created.
/// - A `handle` holds its entry: an entry with a live handle is never evicted. Handles
///   must not outlive the registry.
/// - `evict_idle()` evicts entries unused for `idle_after` (call it from a housekeeping
///   thread, or rely on creations, which sweep when the registry is full). Idleness is
///   judged at sweeps from a use counter, so no clock is read on the hot path: an entry is
///   never evicted before `idle_after` has passed since its last use; a sweep that sees new
///   uses restarts its idle time, so with sweeps every `s` an entry goes at the latest
///   `idle_after + 2s` after its last use.
/// - When full with `when_full::evict_idlest`, the idlest entry is evicted before the factory
///   runs for the new key; a factory that throws then leaves the registry one entry smaller.
///
/// `Value` is built in place from the factory's return value (guaranteed copy elision:
/// `Value` need not be movable — a governor is not).
///
/// The factory, `on_create`, a `for_each` callback and `Value`'s destructor run under the
/// registry's mutex: they must not call `get`, `evict_idle` or `for_each` on the same
/// registry (`find` is safe). `Hash` and `KeyEqual` must not throw.
template <class Key, class Value, class Clock = steady_clock, class Hash = std::hash<Key>,
          class KeyEqual = std::equal_to<Key>>
class keyed {
    static_assert(check_clock<Clock>());
    static_assert(std::is_invocable_r_v<std::size_t, const Hash&, const Key&>,
                  "rategov: keyed needs Hash callable as `size_t(const Key&)`; specialise "
                  "std::hash<Key> or pass a Hash type.");
    static_assert(std::is_invocable_r_v<bool, const KeyEqual&, const Key&, const Key&>,
                  "rategov: keyed needs KeyEqual callable as `bool(const Key&, const Key&)`; "
                  "define operator== for Key or pass a KeyEqual type.");

    // An entry's state is kept in `stripes` words, each on a cache line of its own:
    // [uses:32 | holders:31 | dead:1]. A thread takes and gives back its holds on one stripe
    // (chosen per thread), so that threads looking up the same key do not share a line; the
    // entry is dead when every stripe is. A use is counted when a handle is given back.
    static constexpr unsigned stripes = 4;
    static constexpr std::uint64_t dead_bit = 1;
    static constexpr std::uint64_t one_holder = 2;
    static constexpr std::uint64_t holder_mask = (std::uint64_t{1} << 32) - 2;
    static constexpr std::uint64_t one_use = std::uint64_t{1} << 32;

    struct alignas(RATEGOV_CACHE_LINE) stripe {
        std::atomic<std::uint64_t> word{dead_bit};
    };
    using words = std::array<std::uint64_t, stripes>;

    struct node {
        // The state, striped (see above). See the file comment for the protocol.
        stripe state[stripes];
        std::atomic<std::size_t> hash{0}; // read before the state: a filter only
        // Below: written under the registry mutex only.
        std::uint32_t seen_uses = 0;
        typename Clock::time_point idle_since{};
        // The idle start before the last restart: between entries whose uses one sweep saw
        // together, the one idle since earlier before was used least recently.
        typename Clock::time_point idle_before{};
        std::size_t slot = 0;
        alignas(Key) unsigned char key_bytes[sizeof(Key)];
        alignas(Value) unsigned char value_bytes[sizeof(Value)];

        [[nodiscard]] Key& key() noexcept {
            return *std::launder(reinterpret_cast<Key*>(key_bytes));
        }
        [[nodiscard]] Value& value() noexcept {
            return *std::launder(reinterpret_cast<Value*>(value_bytes));
        }
        /// Every stripe's word, each read once.
        [[nodiscard]] words read(std::memory_order order) const noexcept {
            words w{};
            for (unsigned k = 0; k < stripes; ++k)
                w[k] = state[k].word.load(order);
            return w;
        }
    };
    [[nodiscard]] static std::uint32_t holders_of(const words& w) noexcept {
        std::uint64_t h = 0;
        for (const std::uint64_t x : w)
            h += (x & holder_mask) >> 1;
        return static_cast<std::uint32_t>(h);
    }
    [[nodiscard]] static std::uint32_t uses_of(const words& w) noexcept {
        std::uint32_t u = 0;
        for (const std::uint64_t x : w)
            u += static_cast<std::uint32_t>(x >> 32); // modulo 2^32
        return u;
    }

    /// This thread's stripe: the first threads get distinct ones.
    [[nodiscard]] static unsigned my_stripe() noexcept {
        static std::atomic<unsigned> next{0};
        thread_local unsigned mine = stripes; // constant-initialised: no guard on the hot path
        if (mine == stripes)
            mine = next.fetch_add(1, std::memory_order_relaxed) % stripes; // relaxed: a count
        return mine;
    }

public:
    /// The type of the keys.
    using key_type = Key;
    /// The type of the entries' values.
    using value_type = Value;
    /// The clock idleness is judged on.
    using clock_type = Clock;
    /// A duration of `Clock` (`idle_after`, `keyed_stats::idle_for`).
    using duration = typename Clock::duration;
    /// The registry's options.
    using options_type = keyed_options<Clock>;
    /// What `for_each` reports of an entry.
    using stats_type = keyed_stats<duration>;

    /// Holds one entry (move-only). Empty when the lookup found or made nothing.
    class handle {
    public:
        handle() = default;
        /// Takes over `o`'s hold; `o` becomes empty (its `status()` unchanged).
        handle(handle&& o) noexcept
            : m_node(std::exchange(o.m_node, nullptr))
            , m_stripe(o.m_stripe)
            , m_status(o.m_status) {}
        /// Gives back the entry held, then takes over `o`'s hold; `o` becomes empty.
        handle& operator=(handle&& o) noexcept {
            if (this != &o) {
                release();
                m_node = std::exchange(o.m_node, nullptr);
                m_stripe = o.m_stripe;
                m_status = o.m_status;
            }
            return *this;
        }
        handle(const handle&) = delete;
        handle& operator=(const handle&) = delete;
        ~handle() { release(); }

        /// Whether the handle holds an entry.
        [[nodiscard]] explicit operator bool() const noexcept { return m_node != nullptr; }
        /// How the lookup that made the handle went (kept after `reset()` or a move).
        [[nodiscard]] keyed_status status() const noexcept { return m_status; }
        /// The entry's value. The handle must hold an entry.
        [[nodiscard]] Value& operator*() const noexcept { return m_node->value(); }
        /// The entry's value. The handle must hold an entry.
        [[nodiscard]] Value* operator->() const noexcept { return &m_node->value(); }
        /// The entry's key. The handle must hold an entry.
        [[nodiscard]] const Key& key() const noexcept { return m_node->key(); }
        /// Gives the entry back now (the handle becomes empty).
        void reset() noexcept {
            release();
            m_node = nullptr;
        }

    private:
        friend keyed;
        handle(node* n, unsigned stripe_index, keyed_status s) noexcept
            : m_node(n)
            , m_stripe(stripe_index)
            , m_status(s) {}
        void release() noexcept {
            // One add gives the hold back and counts a use: an entry is in use until it is
            // given back, so a long hold ends with a fresh use (and idleness starts then).
            // release: our uses of the value happen before an evictor's CAS (acquire) that
            // sees no holder and destroys it.
            if (m_node != nullptr)
                m_node->state[m_stripe].word.fetch_add(one_use - one_holder,
                                                       std::memory_order_release);
        }
        node* m_node = nullptr;
        unsigned m_stripe = 0; // the stripe of the hold (the handle may move to a thread)
        keyed_status m_status = keyed_status::absent;
    };

    /// A registry over a default-constructed clock (see the next constructor).
    /// \throws config_error if `options.max_keys` is 0 or above 2^24.
    template <class Factory, class OnCreate = void (*)(const Key&, Value&)>
    requires std::is_invocable_r_v<Value, Factory&, const Key&> &&
        std::is_invocable_v<OnCreate&, const Key&, Value&>
        keyed(
            options_type options, Factory factory, OnCreate on_create = [](const Key&, Value&) {})
        : keyed(Clock{}, options, std::move(factory), std::move(on_create)) {}

    /// A registry whose idleness is judged on `clock` (copied: a handle). `factory(key)`
    /// returns the value of a new key (it may be move-only); `on_create(key, value)`, if
    /// given, finishes it in place — e.g. binds adaptive limits, which a factory cannot do
    /// to a value it returns. If either throws, nothing is created.
    template <class Factory, class OnCreate = void (*)(const Key&, Value&)>
    requires std::is_invocable_r_v<Value, Factory&, const Key&> &&
        std::is_invocable_v<OnCreate&, const Key&, Value&>
        keyed(
            const Clock& clock, options_type options, Factory factory,
            OnCreate on_create = [](const Key&, Value&) {})
        : m_clock(clock)
        , m_options(options)
        , m_make(std::make_unique<maker<Factory, OnCreate>>(std::move(factory),
                                                            std::move(on_create))) {
        if (options.max_keys == 0 || options.max_keys > (std::size_t{1} << 24))
            detail::throw_config_error("keyed_options::max_keys " +
                                       std::to_string(options.max_keys) +
                                       " is not within [1, 2^24]");
        std::size_t cap = 8;
        while (cap < 2 * options.max_keys)
            cap *= 2;
        m_slots = std::make_unique<std::atomic<node*>[]>(cap);
        for (std::size_t i = 0; i < cap; ++i)
            m_slots[i].store(nullptr, std::memory_order_relaxed);
        m_mask = cap - 1;
        m_candidates.reserve(options.max_keys);
        m_live.reserve(options.max_keys);
    }

    keyed(const keyed&) = delete;
    keyed& operator=(const keyed&) = delete;

    /// Destroys every entry. No handle may be alive (checked by `assert`).
    ~keyed() {
        for (std::size_t i = 0; i <= m_mask; ++i) {
            node* n = m_slots[i].load(std::memory_order_relaxed);
            if (n != nullptr && n != tombstone()) {
                assert(holders_of(n->read(std::memory_order_acquire)) == 0 &&
                       "rategov::keyed destroyed while a handle holds an entry");
                destroy(*n);
            }
        }
    }

    /// The entry of `key`, created with the factory if absent. Empty (`status() == full`)
    /// when `max_keys` entries exist and none can be evicted.
    /// \throws whatever the factory throws (nothing is created then).
    [[nodiscard]] handle get(const Key& key) {
        const std::size_t h = m_hash(key);
        const unsigned k = my_stripe();
        if (node* n = settled_lookup(key, h, k))
            return handle(n, k, keyed_status::found);
        return create(key, h, k);
    }

    /// The entry of `key` if it exists; never creates. Takes no lock and allocates nothing.
    [[nodiscard]] handle find(const Key& key) const {
        const unsigned k = my_stripe();
        node* n = settled_lookup(key, m_hash(key), k);
        return n != nullptr ? handle(n, k, keyed_status::found) : handle();
    }

    /// Evicts the entries without holders that were not used for `idle_after` (as judged
    /// at this sweep and the ones before). Returns how many were evicted.
    std::size_t evict_idle(duration idle_after) {
        std::lock_guard lock(m_mutex);
        return sweep(idle_after, false);
    }
    /// The same with `options.idle_after`.
    std::size_t evict_idle() { return evict_idle(m_options.idle_after); }

    /// Calls `f(key, value, stats)` for every entry. Takes the registry's mutex (creations
    /// and evictions wait; lookups do not), so keep `f` short.
    template <class F>
    void for_each(F&& f) const {
        std::lock_guard lock(m_mutex);
        const auto now = m_clock.now();
        for (std::size_t i = 0; i <= m_mask; ++i) {
            node* n = m_slots[i].load(std::memory_order_relaxed);
            if (n == nullptr || n == tombstone())
                continue;
            const words w = n->read(std::memory_order_acquire);
            const std::uint32_t holders = holders_of(w);
            const std::uint32_t uses = uses_of(w);
            const duration idle =
                holders == 0 && uses == n->seen_uses ? now - n->idle_since : duration::zero();
            f(static_cast<const Key&>(n->key()), static_cast<const Value&>(n->value()),
              stats_type{uses, holders, idle});
        }
    }

    /// The hash table's occupancy (for monitoring): slots in all, and how many hold an
    /// entry, a tombstone (an evicted entry's place) or nothing. Tombstones are cleared once
    /// they exceed a quarter of the slots, so at least a quarter stay empty.
    struct table_stats {
        /// The number of slots in all (`live + tombstones + empty`).
        std::size_t slots, live, tombstones, empty;
        /// \var live
        /// The slots that hold an entry.
        /// \var tombstones
        /// The slots that hold a tombstone (an evicted entry's place).
        /// \var empty
        /// The slots that hold nothing.
    };
    /// The occupancy now. Takes the registry's mutex (lookups do not wait).
    [[nodiscard]] table_stats table() const {
        std::lock_guard lock(m_mutex);
        table_stats t{m_mask + 1, 0, 0, 0};
        for (std::size_t i = 0; i <= m_mask; ++i) {
            node* n = m_slots[i].load(std::memory_order_relaxed);
            ++(n == nullptr ? t.empty : n == tombstone() ? t.tombstones : t.live);
        }
        return t;
    }

    /// Entries now.
    [[nodiscard]] std::size_t size() const noexcept {
        return m_size.load(std::memory_order_relaxed);
    }
    /// The options the registry was made with.
    [[nodiscard]] const options_type& options() const noexcept { return m_options; }

private:
    // The factory, type-erased without std::function (which needs a copyable callable).
    struct maker_base {
        virtual ~maker_base() = default;
        virtual void make(const Key& k, void* where) = 0;
    };
    template <class F, class G>
    struct maker final : maker_base {
        maker(F f, G g)
            : factory(std::move(f))
            , on_create(std::move(g)) {}
        void make(const Key& k, void* where) override {
            Value* v = ::new (where) Value(factory(k)); // a prvalue: built in place, no move
            try {
                on_create(k, *v);
            } catch (...) {
                v->~Value();
                throw;
            }
        }
        F factory;
        G on_create;
    };

    [[nodiscard]] static node* tombstone() noexcept {
        return reinterpret_cast<node*>(std::uintptr_t{alignof(node)}); // never dereferenced
    }

    /// `lookup`, with a miss trusted only if no move ran meanwhile: a rebuild (a lookup may
    /// pass an entry's new place before it gets there) or an eviction attempt (a stripe
    /// marked dead may come alive again). Waits out a move in progress — a walk over the
    /// slots or a few CASes, no user code.
    [[nodiscard]] node* settled_lookup(const Key& key, std::size_t h, unsigned k) const noexcept {
        for (;;) {
            // acquire: pairs with the release that ends a move: its placements are seen.
            const std::uint64_t before = m_moves.load(std::memory_order_acquire);
            if ((before & 1) != 0) {
                std::this_thread::yield();
                continue;
            }
            if (node* n = lookup(key, h, k))
                return n;
            // After the slot loads (acquire: later loads stay after them). A slot emptied or a
            // stripe marked by a move was written after the move's first increment: seen here.
            if (m_moves.load(std::memory_order_acquire) == before)
                return nullptr;
        }
    }

    /// Finds `key` and takes a holder on it, on stripe k; nullptr if absent.
    [[nodiscard]] node* lookup(const Key& key, std::size_t h, unsigned k) const noexcept {
        std::size_t i = h & m_mask;
        for (std::size_t probes = 0; probes <= m_mask; ++probes, i = (i + 1) & m_mask) {
            // acquire: pairs with the release store that published the entry, so that its
            // hash and (once a holder is taken) key and value are visible.
            node* n = m_slots[i].load(std::memory_order_acquire);
            if (n == nullptr)
                return nullptr;
            if (n == tombstone() || n->hash.load(std::memory_order_relaxed) != h)
                continue;
            // acq_rel: acquire pairs with the publication (and the CAS that made the entry
            // alive), so that the key and value we read next are the entry's; release keeps
            // the hold in the release sequence that the evictor's CAS reads. (The use is
            // counted when the hold ends.)
            std::atomic<std::uint64_t>& word = n->state[k].word;
            const std::uint64_t s = word.fetch_add(one_holder, std::memory_order_acq_rel);
            if ((s & dead_bit) == 0 && m_equal(n->key(), key))
                return n;
            // Dead (being evicted or reused) or another key with the same hash: let go, with
            // no use counted (a lookup of another key is no use of this one).
            word.fetch_sub(one_holder, std::memory_order_release);
        }
        return nullptr;
    }

    handle create(const Key& key, std::size_t h, unsigned k) {
        std::lock_guard lock(m_mutex);
        if (node* n = lookup(key, h, k)) // made by another thread meanwhile
            return handle(n, k, keyed_status::found);
        if (m_size.load(std::memory_order_relaxed) >= m_options.max_keys) {
            if (m_options.full == when_full::refuse)
                return handle(nullptr, k, keyed_status::full);
            // A lookup (of this key or of another with the same hash) may hold an entry for
            // an instant while the sweep looks: sweep again, a few times, before refusing.
            bool evicted = false;
            for (int attempt = 0; attempt < 4 && !evicted; ++attempt) {
                if (attempt > 0)
                    std::this_thread::yield();
                evicted = sweep(m_options.idle_after, true) != 0;
            }
            if (!evicted)
                return handle(nullptr, k, keyed_status::full);
        }
        node* n = spare_node();
        try {
            ::new (static_cast<void*>(n->key_bytes)) Key(key);
        } catch (...) {
            m_spare.push_back(n); // capacity reserved: cannot throw
            throw;
        }
        try {
            m_make->make(key, static_cast<void*>(n->value_bytes));
        } catch (...) {
            n->key().~Key();
            m_spare.push_back(n);
            throw;
        }
        n->hash.store(h, std::memory_order_relaxed);
        n->seen_uses = 0;
        n->idle_since = m_clock.now();
        n->idle_before = n->idle_since;
        // Alive, with our holder on our stripe. A stale lookup may hold a word for an
        // instant (it saw this node before its reuse, and lets go at once): wait it out.
        for (unsigned j = 0; j < stripes; ++j) {
            std::atomic<std::uint64_t>& word = n->state[j].word;
            std::uint64_t s = word.load(std::memory_order_relaxed);
            for (;;) {
                if ((s & holder_mask) != 0) {
                    std::this_thread::yield();
                    s = word.load(std::memory_order_relaxed);
                    continue;
                }
                // release: a lookup that finds the entry alive (acquire) sees it built.
                if (word.compare_exchange_weak(s, j == k ? one_holder : 0,
                                               std::memory_order_release,
                                               std::memory_order_relaxed))
                    break;
            }
        }
        place(*n); // the first free place of its probe sequence (a tombstone or empty)
        m_size.fetch_add(1, std::memory_order_relaxed);
        return handle(n, k, keyed_status::created);
    }

    /// A node to build an entry in: a spare one whose stale holders are gone, or a new one.
    node* spare_node() {
        for (std::size_t j = m_spare.size(); j-- > 0;) {
            node* n = m_spare[j];
            if (holders_of(n->read(std::memory_order_relaxed)) == 0) {
                m_spare[j] = m_spare.back();
                m_spare.pop_back();
                return n;
            }
        }
        m_nodes.push_back(std::make_unique<node>());
        // Room for every node in the spare list, so that giving one back never allocates
        // (an eviction or a failed creation must not fail half-way).
        m_spare.reserve(m_nodes.size());
        return m_nodes.back().get();
    }

    /// Under the mutex: updates idleness; evicts entries idle ≥ `idle_after` (or, with
    /// `one_idlest`, only the one without holders idle longest — the least recently used as
    /// far as sweeps tell — whatever its idle time). Returns evictions.
    std::size_t sweep(duration idle_after, bool one_idlest) {
        const auto now = m_clock.now();
        std::size_t evicted = 0;
        m_candidates.clear();
        for (std::size_t i = 0; i <= m_mask; ++i) {
            node* n = m_slots[i].load(std::memory_order_relaxed);
            if (n == nullptr || n == tombstone())
                continue;
            const words s = n->read(std::memory_order_relaxed);
            const std::uint32_t uses = uses_of(s);
            const bool held = holders_of(s) != 0;
            if (held || uses != n->seen_uses) {
                n->seen_uses = uses; // in use since the last sweep: idle from now at most
                n->idle_before = n->idle_since;
                n->idle_since = now;
                if (held || !one_idlest)
                    continue;
            }
            // Evicted only from the very words judged here: a hold taken and given back since
            // changes the uses, and the eviction's CAS fails.
            if (one_idlest) {
                m_candidates.emplace_back(n, s);
            } else if (now - n->idle_since >= idle_after) {
                evicted += try_evict(*n, s) ? 1U : 0U;
            }
        }
        // The idlest first; if a lookup takes it before the CAS, the next idlest, and so on.
        std::sort(m_candidates.begin(), m_candidates.end(), [](const auto& a, const auto& b) {
            return a.first->idle_since != b.first->idle_since
                       ? a.first->idle_since < b.first->idle_since
                       : a.first->idle_before < b.first->idle_before;
        });
        for (const auto& [c, seen] : m_candidates) {
            if (try_evict(*c, seen)) {
                ++evicted;
                break;
            }
        }
        if (m_tombstones > (m_mask + 1) / 4) // after the walk over the slots, never during
            rebuild();
        return evicted;
    }

    /// Under the mutex: evicts `n` if its state word is still `seen` (no holder, no use
    /// since), in one CAS that also marks it dead.
    bool try_evict(node& n, const words& seen) {
        if (holders_of(seen) != 0)
            return false;
        // Marks the stripes dead one by one, each from the word the sweep judged. A lookup
        // that meets a stripe marked dead before the eviction fails on a later stripe would
        // take a miss for the truth: the count of moves tells it to look again. acq_rel: the
        // increment comes before the marks that a lookup may see.
        m_moves.fetch_add(1, std::memory_order_acq_rel);
        for (unsigned j = 0; j < stripes; ++j) {
            std::uint64_t s = seen[j];
            // acq_rel: acquire pairs with the release of each holder's give-back on this
            // stripe, so that its uses of the value happen before the destruction below.
            if (!n.state[j].word.compare_exchange_strong(s, s | dead_bit, std::memory_order_acq_rel,
                                                         std::memory_order_relaxed)) {
                // Taken (or used) meanwhile: alive again on the stripes already marked.
                for (unsigned i = 0; i < j; ++i)
                    n.state[i].word.fetch_and(~dead_bit, std::memory_order_release);
                m_moves.fetch_add(1, std::memory_order_release);
                return false;
            }
        }
        m_moves.fetch_add(1, std::memory_order_release);
        m_slots[n.slot].store(tombstone(), std::memory_order_release);
        ++m_tombstones;
        // Tombstones at the end of a probe sequence can become empty again: nothing lies
        // beyond an empty slot, so no lookup can need to pass them.
        std::size_t i = n.slot;
        while (m_slots[(i + 1) & m_mask].load(std::memory_order_relaxed) == nullptr &&
               m_slots[i].load(std::memory_order_relaxed) == tombstone()) {
            m_slots[i].store(nullptr, std::memory_order_release);
            --m_tombstones;
            i = (i - 1) & m_mask;
        }
        destroy(n);
        m_spare.push_back(&n);
        m_size.fetch_sub(1, std::memory_order_relaxed);
        return true;
    }

    /// Under the mutex: clears the tombstones by placing every entry again, so that at least
    /// a quarter of the slots stay empty and probes stay short. A lookup running meanwhile
    /// may miss an entry that moves: `settled_lookup` then looks again; a hit is always
    /// right (it checks the key on the entry it holds).
    void rebuild() {
        // relaxed: the release stores of the slots below carry this increment to a lookup
        // that reads one of them.
        m_moves.fetch_add(1, std::memory_order_relaxed);
        // Never allocates (m_live holds max_keys): a failure here would leave the count odd
        // and every lookup that misses waiting for ever.
        m_live.clear();
        for (std::size_t i = 0; i <= m_mask; ++i) {
            node* n = m_slots[i].load(std::memory_order_relaxed);
            if (n != nullptr && n != tombstone())
                m_live.push_back(n);
            m_slots[i].store(nullptr, std::memory_order_release);
        }
        m_tombstones = 0;
        for (node* n : m_live)
            place(*n);
        // release: a lookup that reads the even count sees every entry placed again.
        m_moves.fetch_add(1, std::memory_order_release);
    }

    /// Under the mutex: puts `n` at the first free slot of its probe sequence.
    void place(node& n) {
        std::size_t i = n.hash.load(std::memory_order_relaxed) & m_mask;
        for (;;) {
            node* cur = m_slots[i].load(std::memory_order_relaxed);
            if (cur == nullptr)
                break;
            if (cur == tombstone()) {
                --m_tombstones;
                break;
            }
            i = (i + 1) & m_mask;
        }
        n.slot = i;
        // release: publishes the entry (hash, key, value, state) to lookups.
        m_slots[i].store(&n, std::memory_order_release);
    }

    static void destroy(node& n) noexcept {
        n.value().~Value();
        n.key().~Key();
    }

    Clock m_clock;
    options_type m_options;
    std::unique_ptr<maker_base> m_make;
    [[no_unique_address]] Hash m_hash{};
    [[no_unique_address]] KeyEqual m_equal{};
    std::unique_ptr<std::atomic<node*>[]> m_slots;
    std::size_t m_mask = 0;
    std::size_t m_tombstones = 0; // under the mutex
    std::atomic<std::size_t> m_size{0};
    mutable std::mutex m_mutex;
    std::vector<std::unique_ptr<node>> m_nodes;        // every node ever made (never freed early)
    std::vector<node*> m_spare;                        // evicted nodes, to reuse
    std::vector<std::pair<node*, words>> m_candidates; // sweep's scratch (under the mutex)
    std::vector<node*> m_live;                         // rebuild's scratch (under the mutex)
    // Moves so far (rebuilds and eviction attempts), times two; odd while one runs. A lookup
    // that misses during one (an entry being moved, or marked dead by an eviction that may
    // yet fail) looks again instead of trusting the miss.
    std::atomic<std::uint64_t> m_moves{0};
};

namespace keyed_detail {

/// The governor inside a registry's value: the value itself, or its `governor` member.
template <class V>
[[nodiscard]] auto& governor_of(V& v) noexcept {
    if constexpr (requires { v.governor; })
        return v.governor;
    else
        return v;
}

/// The governor type inside a registry value `V`.
template <class V>
using governor_t = std::remove_cvref_t<decltype(governor_of(std::declval<V&>()))>;

} // namespace keyed_detail

/// `call()` through a registry: takes the entry of `key` (creating it if absent) for the
/// whole call, and uses its `adaptive` member (if it has one, e.g. `keyed_limits`) unless
/// `options.adaptive` is set. When the registry is full, returns `call_status::unavailable`
/// without sending.
/// \code
/// auto r = rategov::call(limits, rategov::model_key{"acct", "llama", ""}, req, est, send, opt);
/// \endcode
template <class K, class V, class C, class H, class E, class Request, class Transport,
          class Options = call_options<keyed_detail::governor_t<V>>>
auto call(keyed<K, V, C, H, E>& registry, const std::type_identity_t<K>& key,
          const Request& request, const typename keyed_detail::governor_t<V>::cost_type& estimate,
          Transport&& transport, Options options = {}) {
    auto h = registry.get(key);
    using gov_t = std::remove_cvref_t<decltype(keyed_detail::governor_of(*h))>;
    using result_t = decltype(call(keyed_detail::governor_of(*h), request, estimate,
                                   std::forward<Transport>(transport), std::move(options)));
    if (!h) {
        result_t out;
        out.status = call_status::unavailable;
        out.metric = gov_t::metrics_type::size;
        return out;
    }
    if constexpr (requires { h->adaptive; } &&
                  std::same_as<decltype(options.adaptive), adaptive_limits<gov_t>*>) {
        if (options.adaptive == nullptr)
            options.adaptive = &h->adaptive;
    }
    return call(keyed_detail::governor_of(*h), request, estimate,
                std::forward<Transport>(transport), std::move(options));
}

RATEGOV_NAMESPACE_END
