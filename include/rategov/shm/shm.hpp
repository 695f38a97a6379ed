/// \file
/// Limits shared by the processes of one host: governors whose state lives in a named POSIX
/// shared-memory segment (`shm_open` + `mmap`; header-only, no dependency beyond the C
/// library; Linux and other POSIX systems).
///
/// \code
/// auto seg = rategov::shm::segment::open("/acme-llm-limits");
/// rategov::shm::governor<llm> gov(seg.place("acct-1/llama-70b"), rategov::steady_clock{},
///                                 rategov::per_minute(3'600'000), rategov::per_minute(36'000));
/// // every process that runs these lines shares one set of limits
/// \endcode
///
/// ## What is shared, and how
///
/// A segment holds a table of keys (one per governor: account, model, variant — any string)
/// and, for each, the governor's state: the metrics' GCRA words and parameters, the priority
/// headroom and the tick at which the governor's time begins. Every operation is the
/// in-process governor's, on those words: lock-free across processes (a compare-and-swap of
/// a 64-bit word), all-or-nothing across metrics, exact. The first process to name a key
/// creates its state with its limits; the others attach to it as it is (`set_limit` from
/// any of them changes the limit for all). Every process must read the same clock:
/// `steady_clock` (`CLOCK_MONOTONIC`) does across the processes of a host.
///
/// ## When a process dies
///
/// - Nothing committed is lost: the state is only ever changed by a single compare-and-swap
///   of a whole word, so a process killed at any instruction leaves every word as it was
///   before or after its operation.
/// - What it held uncommitted — a reservation it had not settled, tokens it had taken for a
///   request it never sent — stays taken, as tokens of a request that was sent; time gives
///   them back like any other taken tokens (a full bucket again after at most burst / rate,
///   e.g. one minute for a per-minute limit whose burst is the minute's amount). That is
///   all it can leak.
/// - A process that dies while it changes a limit (`set_limit`, or the rare epoch move)
///   holds the right to change: the next process that wants to change it finds the holder
///   gone (by its process id), repairs what it left half done and goes on. Acquisitions
///   never wait for a change.
/// - A process that dies while it creates a key's state leaves the key being created: the
///   next process that names the key finds the creator gone and creates it again.
///
/// The segment lives until it is removed (`segment::remove`, or a reboot): limits survive
/// the restart of every process that uses them.
#pragma once

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fcntl.h>
#include <new>
#include <string>
#include <string_view>
#include <sys/mman.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <utility>

#include <rategov/clock/clock.hpp>
#include <rategov/config.hpp>
#include <rategov/detail/process.hpp>
#include <rategov/governor/governor.hpp>
#include <rategov/keyed/keyed.hpp>
#include <rategov/store/store.hpp>

RATEGOV_NAMESPACE_BEGIN
/// Limits shared between the processes of one host through POSIX shared memory.
namespace shm {

namespace detail {

/// Changes whenever the segment's layout changes: a process built with another layout
/// refuses the segment rather than misread it.
inline constexpr std::uint32_t layout_version = 1;
/// "rategov1" in ASCII: the segment is one of ours, and its creator finished it.
inline constexpr std::uint64_t segment_magic = 0x3176'6f67'6574'6172ULL;
/// The longest key, in bytes.
inline constexpr std::size_t key_max = 200;

/// The first page of a segment.
struct header {
    std::atomic<std::uint64_t> magic; ///< set last by the creator (release)
    std::uint32_t layout;             ///< layout_version
    std::uint32_t cache_line;         ///< RATEGOV_CACHE_LINE of the creator
    std::uint64_t fingerprint;        ///< sizes of the types laid out in it
    std::uint64_t bytes;              ///< the segment's size
    std::uint64_t capacity;           ///< entries in the key table
    std::uint64_t entries;            ///< offset of the key table
    std::uint64_t heap;               ///< offset of the states
    std::atomic<std::uint64_t> next;  ///< the next free byte of the heap
    std::atomic<std::uint64_t> keys;  ///< entries in use
    std::uint64_t pid_namespace;      ///< the creator's PID namespace (0: unknown)
};

/// One key of the table. `claim` is 0 while free, else the state of the entry in its top
/// two bits (1: being created, 2: ready) and the creating process's id below; the other
/// fields are written by the creator before it publishes `ready` and never change after.
struct entry {
    static constexpr std::uint64_t creating = std::uint64_t{1} << 62;
    static constexpr std::uint64_t ready = std::uint64_t{2} << 62;
    static constexpr std::uint64_t state_mask = std::uint64_t{3} << 62;

    std::atomic<std::uint64_t> claim;
    std::uint64_t hash;
    std::uint64_t state_size;
    std::uint64_t state_offset; ///< 0: not allocated yet
    std::uint64_t type;         ///< the state's type (see `type_tag`)
    std::uint32_t key_size;
    char key[key_max];
};

/// The sizes a segment's layout depends on, mixed into one number.
[[nodiscard]] inline std::uint64_t fingerprint() noexcept {
    return (std::uint64_t{sizeof(header)} << 48) ^ (std::uint64_t{sizeof(entry)} << 32) ^
           (std::uint64_t{sizeof(rategov::detail::gcra)} << 16) ^
           std::uint64_t{alignof(rategov::detail::gcra)};
}

/// FNV-1a, 64 bits.
[[nodiscard]] constexpr std::uint64_t hash_of(std::string_view key) noexcept {
    std::uint64_t h = 0xcbf2'9ce4'8422'2325ULL;
    for (const char c : key) {
        h ^= static_cast<unsigned char>(c);
        h *= 0x100'0000'01b3ULL;
    }
    return h;
}

/// A hash of `T`'s name as the compiler spells it: states of different types (governors over
/// different metrics) never share a key. (Builds by different compilers may spell a type
/// differently: they refuse each other's keys rather than risk a misread.)
template <class T>
[[nodiscard]] constexpr std::uint64_t type_tag() noexcept {
#if defined(__GNUC__) || defined(__clang__)
    return hash_of(__PRETTY_FUNCTION__);
#elif defined(_MSC_VER)
    return hash_of(__FUNCSIG__);
#else
    return sizeof(T);
#endif
}

/// The PID namespace of this process (its inode; 0 where unknown). Whether a process that
/// holds a lock is alive can only be told within one namespace.
[[nodiscard]] inline std::uint64_t pid_namespace() noexcept {
#if defined(__linux__)
    struct stat st {};
    if (::stat("/proc/self/ns/pid", &st) == 0)
        return static_cast<std::uint64_t>(st.st_ino);
#endif
    return 0;
}

[[nodiscard]] constexpr std::uint64_t round_up(std::uint64_t n, std::uint64_t to) noexcept {
    return (n + to - 1) / to * to;
}

[[noreturn]] inline void fail(const std::string& name, const std::string& what) {
    rategov::detail::throw_config_error("shm::segment '" + name + "': " + what);
}

[[nodiscard]] inline std::string errno_text(int e) {
    return std::strerror(e);
}

} // namespace detail

/// How a segment is created (ignored when it exists already: its creator's values hold).
struct segment_options {
    /// How many keys (governors) it can hold.
    std::size_t capacity = 1024;
    /// Bytes for the governors' states (about 1 KiB per metric of each key).
    std::size_t state_bytes = std::size_t{16} << 20;
    /// Access mode of a new segment (owner read/write by default).
    unsigned mode = 0600;
};

class segment;

/// The store policy of a governor whose state lives in a `segment` (see
/// `rategov::state_store`). Use `shm::governor<Metrics>` and `segment::place(key)`.
struct store {
    /// Where a governor's state goes: a segment (which must outlive the governor) and a key.
    struct place {
        /// `key` in `*where` (which must outlive the governor).
        place(segment* where_, std::string key_)
            : where(where_)
            , key(std::move(key_)) {}
        segment* where;  ///< the segment
        std::string key; ///< the key in it: account, model, variant — any string
    };

    /// Holds a pointer to the state in the segment: created there if the key has none yet.
    template <class State>
    class holder {
    public:
        /// Attaches to (or creates) the state of `p.key` in `*p.where`.
        /// \throws config_error for a null segment, a bad key, a full segment, or a key
        ///         whose state is of another type (a governor over other metrics).
        template <class Make>
        holder(const place& p, Make make);
        /// The state in the segment.
        [[nodiscard]] State& get() noexcept { return *m_state; }
        /// The state in the segment.
        [[nodiscard]] const State& get() const noexcept { return *m_state; }

    private:
        State* m_state;
    };
};

/// A governor whose state lives in a shared-memory segment: every process that attaches
/// the same key of the same segment shares its limits (see the file comment).
template <class Metrics, class Clock = steady_clock, class DropPolicy = refund_on_drop>
using governor = rategov::governor<Metrics, Clock, DropPolicy, store>;

/// A named POSIX shared-memory segment holding governors' states by key. Opened (created by
/// the first process, attached by the others) with `open`; the mapping ends with the object
/// (which governors placed in it must not outlive), the segment itself with `remove`.
class segment {
public:
    /// Opens the segment `name` (a POSIX name: "/" then up to 250 characters, no other
    /// "/"), creating it with `o` if it does not exist.
    /// \throws config_error for a bad name or options, a system error (named, with its
    ///         reason), a segment that is not one of ours or has another layout (another
    ///         version of rategov), or one whose creator died before finishing it (remove it).
    [[nodiscard]] static segment open(const std::string& name, const segment_options& o = {}) {
        check_name(name);
        if (o.capacity == 0 || o.capacity > (std::size_t{1} << 24))
            detail::fail(name, "capacity " + std::to_string(o.capacity) +
                                   " is not within [1, 2^24] keys");
        if (o.state_bytes < 4096 || o.state_bytes > (std::size_t{1} << 40))
            detail::fail(name, "state_bytes " + std::to_string(o.state_bytes) +
                                   " is not within [4096, 2^40]");
        for (int attempt = 0;; ++attempt) {
            const int fd = ::shm_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL,
                                      static_cast<mode_t>(o.mode & 0777));
            if (fd >= 0) {
                ::fchmod(fd, static_cast<mode_t>(o.mode & 0777)); // the mode, not the umask's
                return create(name, fd, o);
            }
            if (errno != EEXIST)
                detail::fail(name, "shm_open: " + detail::errno_text(errno));
            const int existing = ::shm_open(name.c_str(), O_RDWR, 0);
            if (existing >= 0)
                return attach(name, existing);
            if (errno != ENOENT || attempt == 8) // removed meanwhile: create it again
                detail::fail(name, "shm_open: " + detail::errno_text(errno));
        }
    }

    /// Removes the segment's name: processes that have it open keep their mapping; the next
    /// `open` creates a new one. Returns false if there was none (or it could not be removed).
    static bool remove(const std::string& name) noexcept { return ::shm_unlink(name.c_str()) == 0; }

    /// Takes over `other`'s mapping; `other` is left with none.
    segment(segment&& other) noexcept
        : m_name(std::move(other.m_name))
        , m_base(std::exchange(other.m_base, nullptr))
        , m_bytes(std::exchange(other.m_bytes, 0))
        , m_created(other.m_created) {}
    /// Unmaps this segment, then takes over `other`'s mapping.
    segment& operator=(segment&& other) noexcept {
        if (this != &other) {
            unmap();
            m_name = std::move(other.m_name);
            m_base = std::exchange(other.m_base, nullptr);
            m_bytes = std::exchange(other.m_bytes, 0);
            m_created = other.m_created;
        }
        return *this;
    }
    segment(const segment&) = delete;
    segment& operator=(const segment&) = delete;
    /// Unmaps the segment (it stays, for the other processes and the next `open`).
    ~segment() { unmap(); }

    /// The segment's name.
    [[nodiscard]] const std::string& name() const noexcept { return m_name; }
    /// Whether this `open` created the segment.
    [[nodiscard]] bool created() const noexcept { return m_created; }
    /// How many keys it can hold.
    [[nodiscard]] std::size_t capacity() const noexcept {
        return m_base == nullptr ? 0 : head().capacity;
    }
    /// How many keys it holds (0 for a moved-from segment).
    [[nodiscard]] std::size_t keys() const noexcept {
        return m_base == nullptr ? 0 : head().keys.load(std::memory_order_relaxed);
    }

    /// Where a governor's state for `key` goes in this segment: pass it to a
    /// `shm::governor`'s constructor.
    [[nodiscard]] store::place place(std::string key) { return {this, std::move(key)}; }
    /// The place of an account's model (variant): the three parts, each preceded by its
    /// length, so that no two keys share a place. With a `rategov::keyed` registry, its
    /// factory attaches each key it creates:
    /// \code
    /// rategov::keyed<rategov::model_key, rategov::keyed_limits<shm_gov>> registry(
    ///     {}, [&](const rategov::model_key& k) {
    ///         return rategov::keyed_limits<shm_gov>(seg.place(k), rategov::steady_clock{},
    ///                                               rategov::per_minute(6000));
    ///     });
    /// \endcode
    [[nodiscard]] store::place place(const model_key& k) {
        std::string key;
        for (const std::string* part : {&k.account(), &k.model(), &k.variant()})
            key += std::to_string(part->size()) + ":" + *part;
        return {this, std::move(key)};
    }

    /// The state of type `State` for `key`: attached if the key has one, else created by
    /// `make()` (a prvalue, constructed in place). What `store::holder` calls.
    /// \throws config_error (see `store::holder`).
    template <class State, class Make>
    State& state(std::string_view key, Make make) {
        static_assert(alignof(State) <= 4096, "rategov: a state aligned beyond a page");
        if (m_base == nullptr)
            detail::fail(m_name, "a moved-from segment holds no mapping");
        if (key.empty() || key.size() > detail::key_max)
            detail::fail(m_name, "key of " + std::to_string(key.size()) +
                                     " bytes: a key has 1 to " + std::to_string(detail::key_max) +
                                     " bytes");
        const std::uint64_t h = detail::hash_of(key);
        const std::uint64_t me = rategov::detail::this_process();
        const std::uint64_t n = head().capacity;
        for (std::uint64_t probe = 0; probe < n; ++probe) {
            detail::entry& e = entry_at((h + probe) % n);
            for (unsigned spins = 1;; ++spins) {
                // acquire: pairs with the release that published `ready` (the entry's fields
                // and the state are visible).
                std::uint64_t c = e.claim.load(std::memory_order_acquire);
                if (c == 0) {
                    if (e.claim.compare_exchange_strong(c, detail::entry::creating | me,
                                                        std::memory_order_acquire,
                                                        std::memory_order_relaxed)) {
                        head().keys.fetch_add(1, std::memory_order_relaxed);
                        return create_state<State>(e, key, h, me, make);
                    }
                    continue;
                }
                if ((c & detail::entry::state_mask) == detail::entry::creating) {
                    const std::uint64_t creator = c & ~detail::entry::state_mask;
                    // A creator that died leaves the entry being created: take it over.
                    if (spins % 256 == 0 && !rategov::detail::process_alive(creator) &&
                        e.claim.compare_exchange_strong(c, detail::entry::creating | me,
                                                        std::memory_order_acquire,
                                                        std::memory_order_relaxed))
                        return create_state<State>(e, key, h, me, make);
                    std::this_thread::yield();
                    continue;
                }
                if (e.hash != h || std::string_view(e.key, e.key_size) != key)
                    break; // another key: probe on
                if (e.state_size != sizeof(State) || e.type != detail::type_tag<State>())
                    detail::fail(m_name, "key '" + std::string(key) +
                                             "' holds the state of another type: a governor "
                                             "over other metrics, or built by another compiler");
                return *std::launder(reinterpret_cast<State*>(m_base + e.state_offset));
            }
        }
        detail::fail(m_name, "full: all " + std::to_string(n) + " keys in use (key '" +
                                 std::string(key) + "')");
    }

private:
    segment(std::string name, unsigned char* base, std::size_t bytes, bool created) noexcept
        : m_name(std::move(name))
        , m_base(base)
        , m_bytes(bytes)
        , m_created(created) {}

    static void check_name(const std::string& name) {
        if (name.size() < 2 || name.size() > 251 || name[0] != '/' ||
            name.find('/', 1) != std::string::npos || name.find('\0') != std::string::npos)
            detail::fail(name, "a segment's name is \"/\" then 1 to 250 characters, none of "
                               "them \"/\"");
    }

    static segment create(const std::string& name, int fd, const segment_options& o) {
        const std::uint64_t entries = 4096;
        const std::uint64_t heap =
            detail::round_up(entries + o.capacity * sizeof(detail::entry), 4096);
        const std::uint64_t bytes = heap + detail::round_up(o.state_bytes, 4096);
        if (::ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
            const int e = errno;
            ::close(fd);
            ::shm_unlink(name.c_str());
            detail::fail(name, "ftruncate to " + std::to_string(bytes) +
                                   " bytes: " + detail::errno_text(e));
        }
        unsigned char* base = map(name, fd, bytes, true);
        ::close(fd); // the mapping keeps the segment
        // A new segment is zero-filled: every entry free, every counter 0.
        auto* h = new (base) detail::header{};
        h->layout = detail::layout_version;
        h->cache_line = RATEGOV_CACHE_LINE;
        h->fingerprint = detail::fingerprint();
        h->bytes = bytes;
        h->capacity = o.capacity;
        h->entries = entries;
        h->heap = heap;
        h->next.store(heap, std::memory_order_relaxed);
        h->pid_namespace = detail::pid_namespace();
        // release: whoever sees the magic sees the header and a zeroed table.
        h->magic.store(detail::segment_magic, std::memory_order_release);
        return segment(name, base, bytes, true);
    }

    static segment attach(const std::string& name, int fd) {
        // The creator may still be sizing or filling it: wait for the magic, for a while.
        const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(2);
        for (;;) {
            struct stat st {};
            if (::fstat(fd, &st) != 0) {
                const int e = errno;
                ::close(fd);
                detail::fail(name, "fstat: " + detail::errno_text(e));
            }
            if (static_cast<std::uint64_t>(st.st_size) >= sizeof(detail::header)) {
                unsigned char* base = map(name, fd, static_cast<std::size_t>(st.st_size), false);
                auto* h = std::launder(reinterpret_cast<detail::header*>(base));
                const std::uint64_t magic = h->magic.load(std::memory_order_acquire);
                if (magic != 0) {
                    ::close(fd); // the mapping keeps the segment
                    return checked(name, base, static_cast<std::size_t>(st.st_size), *h, magic);
                }
                ::munmap(base, static_cast<std::size_t>(st.st_size));
            }
            if (std::chrono::steady_clock::now() > give_up) {
                ::close(fd);
                detail::fail(name, "never initialised (its creator died while creating it?): "
                                   "remove it with shm::segment::remove");
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    }

    static segment checked(const std::string& name, unsigned char* base, std::size_t size,
                           const detail::header& h, std::uint64_t magic) {
        std::string wrong;
        if (magic != detail::segment_magic)
            wrong = "not a rategov segment (magic " + std::to_string(magic) + ")";
        else if (h.layout != detail::layout_version)
            wrong = "layout version " + std::to_string(h.layout) + ", this program reads " +
                    std::to_string(detail::layout_version) + " (another version of rategov)";
        else if (h.cache_line != RATEGOV_CACHE_LINE || h.fingerprint != detail::fingerprint())
            wrong = "laid out by a build with other type sizes (another version of rategov or "
                    "another platform)";
        else if (h.bytes != size || h.heap > size || h.capacity == 0 ||
                 h.entries + h.capacity * sizeof(detail::entry) > h.heap)
            wrong = "size " + std::to_string(size) + " bytes does not match its header (" +
                    std::to_string(h.bytes) + " bytes): damaged";
        else if (h.pid_namespace != detail::pid_namespace())
            wrong = "created in another PID namespace: processes that share a segment must "
                    "see each other's process ids (e.g. containers with a shared PID "
                    "namespace), to tell a dead lock holder from a live one";
        if (!wrong.empty()) {
            ::munmap(base, size);
            detail::fail(name, wrong);
        }
        return segment(name, base, size, false);
    }

    static unsigned char* map(const std::string& name, int fd, std::size_t bytes, bool created) {
        void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        const int e = errno;
        if (p == MAP_FAILED) {
            ::close(fd);
            if (created)
                ::shm_unlink(name.c_str());
            detail::fail(name,
                         "mmap of " + std::to_string(bytes) + " bytes: " + detail::errno_text(e));
        }
        return static_cast<unsigned char*>(p);
    }

    template <class State, class Make>
    State& create_state(detail::entry& e, std::string_view key, std::uint64_t h, std::uint64_t me,
                        Make& make) {
        // Only this process writes the entry now (it holds `creating | me`).
        e.hash = h;
        e.key_size = static_cast<std::uint32_t>(key.size());
        std::memcpy(e.key, key.data(), key.size());
        if (e.state_offset == 0 || e.state_size != sizeof(State)) {
            const std::uint64_t align = std::max<std::uint64_t>(alignof(State), 64);
            const std::uint64_t size = detail::round_up(sizeof(State), align);
            const std::uint64_t at = head().next.fetch_add(size + align, std::memory_order_relaxed);
            const std::uint64_t start = detail::round_up(at, align);
            if (start + size > head().bytes) {
                // Free the entry again: whoever waits for it tries (and fails) in turn.
                head().keys.fetch_sub(1, std::memory_order_relaxed);
                e.claim.store(0, std::memory_order_release);
                detail::fail(m_name, "no room for the state of key '" + std::string(key) +
                                         "': state_bytes exhausted");
            }
            e.state_offset = start;
            e.state_size = sizeof(State);
        }
        e.type = detail::type_tag<State>();
        State* s = nullptr;
        try {
            s = new (m_base + e.state_offset) State(make());
        } catch (...) {
            // Nothing was created: free the entry for the next attempt (the state's room
            // stays allocated to it).
            head().keys.fetch_sub(1, std::memory_order_relaxed);
            e.claim.store(0, std::memory_order_release);
            throw;
        }
        // release: the state and the entry's fields are visible to whoever sees `ready`.
        e.claim.store(detail::entry::ready | me, std::memory_order_release);
        return *s;
    }

    [[nodiscard]] detail::header& head() const noexcept {
        return *std::launder(reinterpret_cast<detail::header*>(m_base));
    }
    [[nodiscard]] detail::entry& entry_at(std::uint64_t i) const noexcept {
        return *std::launder(
            reinterpret_cast<detail::entry*>(m_base + head().entries + i * sizeof(detail::entry)));
    }

    void unmap() noexcept {
        if (m_base != nullptr)
            ::munmap(m_base, m_bytes);
        m_base = nullptr;
    }

    std::string m_name;
    unsigned char* m_base = nullptr;
    std::size_t m_bytes = 0;
    bool m_created = false;
};

template <class State>
template <class Make>
store::holder<State>::holder(const place& p, Make make)
    : m_state(nullptr) {
    if (p.where == nullptr)
        rategov::detail::throw_config_error("shm::store: a place with no segment (use "
                                            "segment::place(key))");
    m_state = &p.where->template state<State>(p.key, make);
}

} // namespace shm
RATEGOV_NAMESPACE_END
