/// \file
/// `redis::connection` and `redis::connection_pool`: a blocking hiredis connection with a
/// connect and a command timeout, lazy reconnection, and Lua scripts run by `EVALSHA` with a
/// `SCRIPT LOAD` fallback. Errors and timeouts are returned as values, never thrown.
///
/// Optional part of rategov: it needs hiredis (link `hiredis`, pkg-config name `hiredis`).
/// `rategov/rategov.hpp` does not include it.
#pragma once

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <hiredis/hiredis.h>
#include <memory>
#include <mutex>
#include <optional>
#include <poll.h>
#include <pthread.h>
#include <string>
#include <string_view>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unordered_map>
#include <utility>
#include <vector>

#include <rategov/config.hpp>

RATEGOV_NAMESPACE_BEGIN
namespace redis {

/// Where a Redis server listens, and how long to wait for it.
///
/// Validated when a `connection` (or a governor) is made: an empty host, a port outside
/// 1..65535, or a timeout that is not positive throw `config_error` naming the value.
struct endpoint {
    /// Host name or IPv4/IPv6 address.
    std::string host = "127.0.0.1";
    /// TCP port, 1..65535.
    int port = 6379;
    /// The longest a connection attempt may take.
    std::chrono::milliseconds connect_timeout{50};
    /// The longest a command may wait for its reply (sending included).
    std::chrono::milliseconds command_timeout{50};
};

/// Throws `config_error` naming the bad value unless `ep` is usable (see `endpoint`).
inline void validate(const endpoint& ep) {
    if (ep.host.empty())
        detail::throw_config_error("redis::endpoint: empty host");
    if (ep.port <= 0 || ep.port > 65535)
        detail::throw_config_error("redis::endpoint: port " + std::to_string(ep.port) +
                                   " is not within 1..65535");
    if (ep.connect_timeout.count() <= 0)
        detail::throw_config_error("redis::endpoint: connect_timeout of " +
                                   std::to_string(ep.connect_timeout.count()) +
                                   " ms — it must be positive");
    if (ep.command_timeout.count() <= 0)
        detail::throw_config_error("redis::endpoint: command_timeout of " +
                                   std::to_string(ep.command_timeout.count()) +
                                   " ms — it must be positive");
}

/// Why a command has no reply.
enum class error_kind : std::uint8_t {
    none,        ///< no error
    unreachable, ///< the connection could not be made (refused, no route, connect timeout)
    timeout,     ///< the command timeout passed before the reply came
    io,          ///< the connection broke (reset, closed by the server, protocol error)
    server,      ///< the server answered with an error reply (the message is its text)
};

/// An error: its kind and a message for logs.
struct error {
    /// What went wrong.
    error_kind kind = error_kind::none;
    /// Human-readable detail (hiredis' or the server's text).
    std::string message{};
};

/// A Redis reply, copied out of hiredis' reply object.
struct reply {
    /// The RESP type of a reply.
    enum class type : std::uint8_t { string, array, integer, nil, status, error };
    /// This reply's type.
    type kind = type::nil;
    /// The value of an integer reply.
    long long integer = 0;
    /// The text of a string, status or error reply.
    std::string text{};
    /// The elements of an array reply.
    std::vector<reply> elements{};

    /// An integer reply's value, or a string reply parsed as a decimal integer; nullopt for
    /// anything else.
    [[nodiscard]] std::optional<long long> as_integer() const noexcept {
        if (kind == type::integer)
            return integer;
        if (kind != type::string || text.empty())
            return std::nullopt;
        long long v = 0;
        std::size_t i = 0;
        const bool negative = text[0] == '-';
        if (negative)
            i = 1;
        if (i == text.size())
            return std::nullopt;
        for (; i < text.size(); ++i) {
            if (text[i] < '0' || text[i] > '9' || v > (INT64_MAX - 9) / 10)
                return std::nullopt;
            v = v * 10 + (text[i] - '0');
        }
        return negative ? -v : v;
    }
};

/// The outcome of a command: a reply, or an error. Converts to `true` when there is a reply.
struct command_result {
    /// The reply (absent on error; an error reply from the server is an `error` instead).
    std::optional<redis::reply> value{};
    /// Why there is no reply (`error_kind::none` when there is one).
    redis::error error{};
    /// Whether there is a reply.
    [[nodiscard]] explicit operator bool() const noexcept { return value.has_value(); }
};

namespace detail {

inline reply copy_reply(const redisReply* r) {
    reply out;
    switch (r->type) {
    case REDIS_REPLY_STRING:
        out.kind = reply::type::string;
        out.text.assign(r->str, r->len);
        break;
    case REDIS_REPLY_ARRAY:
        out.kind = reply::type::array;
        out.elements.reserve(r->elements);
        for (std::size_t i = 0; i < r->elements; ++i)
            out.elements.push_back(copy_reply(r->element[i]));
        break;
    case REDIS_REPLY_INTEGER:
        out.kind = reply::type::integer;
        out.integer = r->integer;
        break;
    case REDIS_REPLY_STATUS:
        out.kind = reply::type::status;
        out.text.assign(r->str, r->len);
        break;
    case REDIS_REPLY_ERROR:
        out.kind = reply::type::error;
        out.text.assign(r->str, r->len);
        break;
    default:
        out.kind = reply::type::nil;
        break;
    }
    return out;
}

[[nodiscard]] inline timeval timeval_of(std::chrono::milliseconds ms) noexcept {
    timeval tv{};
    tv.tv_sec = static_cast<decltype(tv.tv_sec)>(ms.count() / 1000);
    tv.tv_usec = static_cast<decltype(tv.tv_usec)>((ms.count() % 1000) * 1000);
    return tv;
}

/// Blocks SIGPIPE on this thread while a command writes to a socket the server may have
/// closed (hiredis writes with write(2), which would otherwise kill the process), then
/// discards a SIGPIPE raised meanwhile and restores the mask.
class sigpipe_guard {
public:
    sigpipe_guard() noexcept {
        sigemptyset(&m_pipe);
        sigaddset(&m_pipe, SIGPIPE);
        sigset_t pending;
        sigemptyset(&pending);
        sigpending(&pending);
        m_was_pending = sigismember(&pending, SIGPIPE) == 1;
        pthread_sigmask(SIG_BLOCK, &m_pipe, &m_old);
    }
    ~sigpipe_guard() {
        if (!m_was_pending) {
            sigset_t pending;
            sigemptyset(&pending);
            sigpending(&pending);
            if (sigismember(&pending, SIGPIPE) == 1) {
                const timespec zero{};
                while (sigtimedwait(&m_pipe, nullptr, &zero) == -1 && errno == EINTR) {
                }
            }
        }
        pthread_sigmask(SIG_SETMASK, &m_old, nullptr);
    }
    sigpipe_guard(const sigpipe_guard&) = delete;
    sigpipe_guard& operator=(const sigpipe_guard&) = delete;

private:
    sigset_t m_pipe{};
    sigset_t m_old{};
    bool m_was_pending = false;
};

} // namespace detail

/// One blocking connection to a Redis server. Not thread-safe: use one per thread, or a
/// `connection_pool`.
///
/// It connects on first use and again after any error (a broken connection is dropped at
/// once), so a server restart costs one failed command at most. Commands never wait longer
/// than `endpoint::command_timeout` for a reply, and never throw: a failure is returned.
/// A command that fails on a connection that had worked before, without timing out (the
/// server closed it, e.g. it restarted), is sent once more on a new connection.
///
/// \code
/// rategov::redis::connection c({.host = "127.0.0.1", .port = 6379});
/// if (auto r = c.command({"PING"})) std::puts(r.value->text.c_str()); // PONG
/// \endcode
class connection {
public:
    /// A connection to `where` (validated: bad values throw `config_error`). Does not
    /// connect yet.
    explicit connection(endpoint where)
        : m_where(std::move(where)) {
        validate(m_where);
    }
    ~connection() { disconnect(); }
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    /// Where it connects.
    [[nodiscard]] const endpoint& where() const noexcept { return m_where; }
    /// Whether a connection is open now (it may still turn out broken on the next command).
    [[nodiscard]] bool connected() const noexcept { return m_ctx != nullptr; }
    /// Whether the server has closed this connection: its socket is readable and reads
    /// end-of-file (or fails). No byte is consumed; never blocks.
    [[nodiscard]] bool closed_by_peer() const noexcept {
        pollfd p{m_ctx->fd, POLLIN, 0};
        if (::poll(&p, 1, 0) <= 0)
            return false; // nothing to read: open (or not known to be closed)
        if ((p.revents & (POLLERR | POLLHUP | POLLNVAL)) != 0)
            return true;
        char byte = 0;
        const auto n = ::recv(m_ctx->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
        return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
    }
    /// Closes the connection, if open; the next command opens a new one.
    void disconnect() noexcept {
        if (m_ctx != nullptr)
            redisFree(m_ctx);
        m_ctx = nullptr;
    }
    /// How many times a script was (re)loaded with `SCRIPT LOAD` on this connection: once
    /// per script, plus once after each server restart or `SCRIPT FLUSH`.
    [[nodiscard]] std::uint64_t script_loads() const noexcept { return m_script_loads; }

    /// Sends one command, its arguments binary-safe, and waits for the reply.
    ///
    /// A connection the server has closed (it restarted) is noticed before the command is
    /// written — its socket reads end-of-file — and replaced by a fresh one. A command that
    /// failed after it was written is never sent again: it may have run with only its reply
    /// lost, and a refund run twice would hand tokens out twice.
    command_result command(const std::vector<std::string_view>& args) {
        if (m_ctx != nullptr && m_used && closed_by_peer())
            disconnect();
        return once(args);
    }
    /// The same from a list: `c.command({"GET", key})`.
    command_result command(std::initializer_list<std::string_view> args) {
        return command(std::vector<std::string_view>(args));
    }

    /// Runs the Lua script `text` by its SHA1 (`EVALSHA`), loading it first (`SCRIPT
    /// LOAD`) on first use and again when the server answers NOSCRIPT. `text` must outlive
    /// the connection (its address keys the SHA cache): pass a string literal.
    command_result eval(std::string_view text, const std::vector<std::string_view>& keys,
                        const std::vector<std::string_view>& args) {
        for (int attempt = 0; attempt < 2; ++attempt) {
            auto it = m_sha.find(text.data());
            if (it == m_sha.end()) {
                command_result load = command({"SCRIPT", "LOAD", text});
                if (!load)
                    return load;
                ++m_script_loads;
                it = m_sha.emplace(text.data(), load.value->text).first;
            }
            const std::string numkeys = std::to_string(keys.size());
            std::vector<std::string_view> argv;
            argv.reserve(3 + keys.size() + args.size());
            argv.push_back("EVALSHA");
            argv.push_back(it->second);
            argv.push_back(numkeys);
            argv.insert(argv.end(), keys.begin(), keys.end());
            argv.insert(argv.end(), args.begin(), args.end());
            command_result r = command(argv);
            if (!r && r.error.kind == error_kind::server &&
                r.error.message.rfind("NOSCRIPT", 0) == 0) {
                m_sha.erase(it); // the server lost its script cache (restart, SCRIPT FLUSH)
                continue;
            }
            return r;
        }
        return {std::nullopt, {error_kind::server, "NOSCRIPT after SCRIPT LOAD"}};
    }

private:
    bool ensure(error& e) {
        if (m_ctx != nullptr)
            return true;
        m_used = false;
        m_ctx = redisConnectWithTimeout(m_where.host.c_str(), m_where.port,
                                        detail::timeval_of(m_where.connect_timeout));
        if (m_ctx == nullptr) {
            e = {error_kind::unreachable, "cannot allocate a redis context"};
            return false;
        }
        if (m_ctx->err != 0) {
            e = {error_kind::unreachable, m_ctx->errstr};
            disconnect();
            return false;
        }
        if (redisSetTimeout(m_ctx, detail::timeval_of(m_where.command_timeout)) != REDIS_OK) {
            e = {error_kind::unreachable, "cannot set the command timeout"};
            disconnect();
            return false;
        }
        return true;
    }

    command_result once(const std::vector<std::string_view>& args) {
        command_result out;
        if (!ensure(out.error))
            return out;
        std::vector<const char*> argv;
        std::vector<std::size_t> argvlen;
        argv.reserve(args.size());
        argvlen.reserve(args.size());
        for (const auto& a : args) {
            argv.push_back(a.data());
            argvlen.push_back(a.size());
        }
        void* raw = nullptr;
        int saved_errno = 0;
        {
            detail::sigpipe_guard guard;
            errno = 0;
            raw =
                redisCommandArgv(m_ctx, static_cast<int>(argv.size()), argv.data(), argvlen.data());
            saved_errno = errno;
        }
        if (raw == nullptr) {
            const bool timed_out = m_ctx->err == REDIS_ERR_IO &&
                                   (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK ||
                                    saved_errno == ETIMEDOUT || saved_errno == EINPROGRESS);
            out.error = {timed_out ? error_kind::timeout : error_kind::io, m_ctx->errstr};
            disconnect(); // a context with an error cannot be used again
            return out;
        }
        m_used = true;
        const auto* r = static_cast<const redisReply*>(raw);
        reply copy = detail::copy_reply(r);
        freeReplyObject(raw);
        if (copy.kind == reply::type::error) {
            out.error = {error_kind::server, std::move(copy.text)};
            return out;
        }
        out.value = std::move(copy);
        return out;
    }

    endpoint m_where;
    redisContext* m_ctx = nullptr;
    bool m_used = false; // a command has succeeded on m_ctx
    std::unordered_map<const void*, std::string> m_sha;
    std::uint64_t m_script_loads = 0;
};

/// A thread-safe pool of `connection`s to one endpoint, so that concurrent callers do not
/// queue on one socket. `acquire()` hands out an idle connection or makes a new one; the
/// handle gives it back when destroyed. At most `max_idle` idle connections are kept.
/// A mutex guards the free list: Redis is the slow path, and the lock is held only to pop
/// or push a pointer.
///
/// \code
/// rategov::redis::connection_pool pool({.port = 6379});
/// auto c = pool.acquire();
/// auto r = c->command({"PING"});
/// \endcode
class connection_pool {
public:
    /// A pool for `where` (validated: bad values throw `config_error`); `max_idle` ≥ 1.
    explicit connection_pool(endpoint where, std::size_t max_idle = 16)
        : m_where(std::move(where))
        , m_max_idle(max_idle) {
        validate(m_where);
        if (max_idle == 0)
            rategov::detail::throw_config_error("redis::connection_pool: max_idle 0 — keep at "
                                                "least one idle connection");
    }

    /// A connection borrowed from a pool; returned to it on destruction. Move-only.
    class handle {
    public:
        /// Takes over `other`'s connection.
        handle(handle&& other) noexcept
            : m_pool(std::exchange(other.m_pool, nullptr))
            , m_conn(std::move(other.m_conn)) {}
        handle& operator=(handle&&) = delete;
        handle(const handle&) = delete;
        handle& operator=(const handle&) = delete;
        ~handle() {
            if (m_pool != nullptr && m_conn)
                m_pool->release(std::move(m_conn));
        }
        /// The connection.
        [[nodiscard]] connection* operator->() const noexcept { return m_conn.get(); }
        /// The connection.
        [[nodiscard]] connection& operator*() const noexcept { return *m_conn; }

    private:
        friend connection_pool;
        handle(connection_pool* pool, std::unique_ptr<connection> c) noexcept
            : m_pool(pool)
            , m_conn(std::move(c)) {}
        connection_pool* m_pool;
        std::unique_ptr<connection> m_conn;
    };

    /// An idle connection, or a new one (not yet connected). Thread-safe.
    [[nodiscard]] handle acquire() {
        {
            std::lock_guard lock(m_mutex);
            if (!m_free.empty()) {
                auto c = std::move(m_free.back());
                m_free.pop_back();
                return handle(this, std::move(c));
            }
        }
        return handle(this, std::make_unique<connection>(m_where));
    }

    /// Closes every idle connection (borrowed ones close when given back broken or on their
    /// next error). Thread-safe.
    void clear() {
        std::lock_guard lock(m_mutex);
        m_free.clear();
    }

    /// Where its connections go.
    [[nodiscard]] const endpoint& where() const noexcept { return m_where; }

private:
    void release(std::unique_ptr<connection> c) {
        std::lock_guard lock(m_mutex);
        if (m_free.size() < m_max_idle)
            m_free.push_back(std::move(c));
    }

    endpoint m_where;
    std::size_t m_max_idle;
    std::mutex m_mutex;
    std::vector<std::unique_ptr<connection>> m_free;
};

} // namespace redis
RATEGOV_NAMESPACE_END
