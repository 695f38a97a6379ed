/// \file
/// `testing::redis_server`: runs a real `redis-server` on 127.0.0.1 and a free port, in a
/// temporary directory, for tests and benchmarks (POSIX). Not included by
/// `rategov/rategov.hpp`.
#pragma once

#include <algorithm>
#include <arpa/inet.h>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <netinet/in.h>
#include <stdexcept>
#include <string>
#if defined(__linux__)
#include <sys/prctl.h>
#endif
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <rategov/config.hpp>

RATEGOV_NAMESPACE_BEGIN
namespace testing {

/// How to run the server.
struct redis_server_options {
    /// `--appendonly yes` (state survives `restart()`) or `no`.
    bool append_only = false;
    /// `--appendfsync always` (with `append_only`): every write is on disk before the reply.
    bool fsync_always = true;
    /// The longest `start()` waits for the server to answer PING.
    std::chrono::milliseconds start_timeout{5000};
};

/// A `redis-server` child process on 127.0.0.1 and a free port, in a fresh temporary
/// directory (`--save ""`, `--daemonize no`). The executable is `$RATEGOV_REDIS_SERVER` if
/// set, else `redis-server` on PATH. The constructor starts it and waits until it answers
/// PING; the destructor kills it and removes the directory. Not thread-safe.
///
/// \code
/// rategov::testing::redis_server server;            // throws if it cannot start
/// rategov::redis::endpoint ep{.port = server.port()};
/// server.pause();  /* SIGSTOP: commands time out */  server.resume();
/// \endcode
class redis_server {
public:
    /// Whether a redis-server executable can be found (`$RATEGOV_REDIS_SERVER` or PATH).
    [[nodiscard]] static bool available() { return !executable().empty(); }

    /// Starts a server. \throws std::runtime_error when none can be found or started.
    explicit redis_server(redis_server_options opt = {})
        : m_opt(opt) {
        m_exe = executable();
        if (m_exe.empty())
            throw std::runtime_error("redis_server: no redis-server (set RATEGOV_REDIS_SERVER "
                                     "or put it on PATH)");
        char tmpl[] = "/tmp/rategov-redis-XXXXXX";
        if (::mkdtemp(tmpl) == nullptr)
            throw std::runtime_error("redis_server: mkdtemp failed");
        m_dir = tmpl;
        m_port = free_port();
        start();
    }
    redis_server(const redis_server&) = delete;
    redis_server& operator=(const redis_server&) = delete;
    /// Kills the server (SIGKILL, after resuming it) and removes its directory.
    ~redis_server() {
        kill_now();
        std::error_code ec;
        std::filesystem::remove_all(m_dir, ec);
    }

    /// The port it listens on (kept across `restart()`).
    [[nodiscard]] int port() const noexcept { return m_port; }
    /// Its working directory (the append-only file lives there).
    [[nodiscard]] const std::string& directory() const noexcept { return m_dir; }
    /// Whether the process is running (started and not stopped).
    [[nodiscard]] bool running() const noexcept { return m_pid > 0; }

    /// Stops the server gracefully (SIGTERM, then SIGKILL after 5 s) and waits for it.
    void stop() {
        if (m_pid <= 0)
            return;
        resume();
        ::kill(m_pid, SIGTERM);
        for (int i = 0; i < 500; ++i) {
            if (::waitpid(m_pid, nullptr, WNOHANG) == m_pid) {
                m_pid = -1;
                return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        kill_now();
    }
    /// Stops it and starts it again on the same port and directory.
    /// \throws std::runtime_error when it does not answer PING within the start timeout.
    void restart() {
        stop();
        start();
    }
    /// SIGSTOP: the server stops answering (connections still open), as a stalled host.
    void pause() {
        if (m_pid > 0 && !m_paused) {
            ::kill(m_pid, SIGSTOP);
            m_paused = true;
        }
    }
    /// SIGCONT after `pause()`.
    void resume() {
        if (m_pid > 0 && m_paused) {
            ::kill(m_pid, SIGCONT);
            m_paused = false;
        }
    }

    /// Runs one command over a raw socket (no hiredis needed): sends `args` as a RESP
    /// array and returns the first line of the reply ("" on failure). For checks in tests
    /// (`PTTL`, `EXISTS`); integers come back as ":N".
    [[nodiscard]] std::string query(const std::vector<std::string>& args) const {
        const int fd = connect_fd();
        if (fd < 0)
            return {};
        std::string req = "*" + std::to_string(args.size()) + "\r\n";
        for (const auto& a : args)
            req += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
        std::string out;
        if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
            char buf[512];
            const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
            if (n > 0)
                out.assign(buf, static_cast<std::size_t>(n));
        }
        ::close(fd);
        const auto eol = out.find("\r\n");
        return eol == std::string::npos ? out : out.substr(0, eol);
    }

private:
    static std::string executable() {
        if (const char* e = std::getenv("RATEGOV_REDIS_SERVER"); e != nullptr && *e != '\0')
            return ::access(e, X_OK) == 0 ? std::string(e) : std::string();
        const char* path = std::getenv("PATH");
        std::string p = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
        std::size_t from = 0;
        while (from <= p.size()) {
            const std::size_t to = std::min(p.find(':', from), p.size());
            const std::string cand = p.substr(from, to - from) + "/redis-server";
            if (to > from && ::access(cand.c_str(), X_OK) == 0)
                return cand;
            from = to + 1;
        }
        return {};
    }

    static int free_port() {
        const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0)
            throw std::runtime_error("redis_server: socket failed");
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = 0;
        socklen_t len = sizeof a;
        if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
            ::close(fd);
            throw std::runtime_error("redis_server: cannot find a free port");
        }
        ::close(fd);
        return ntohs(a.sin_port);
    }

    [[nodiscard]] int connect_fd() const {
        const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0)
            return -1;
        timeval tv{0, 200'000};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons(static_cast<std::uint16_t>(m_port));
        if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
            ::close(fd);
            return -1;
        }
        return fd;
    }

    void start() {
        std::vector<std::string> args{m_exe,
                                      "--port",
                                      std::to_string(m_port),
                                      "--bind",
                                      "127.0.0.1",
                                      "--dir",
                                      m_dir,
                                      "--save",
                                      "",
                                      "--daemonize",
                                      "no",
                                      "--appendonly",
                                      m_opt.append_only ? "yes" : "no",
                                      "--appendfsync",
                                      m_opt.fsync_always ? "always" : "everysec",
                                      "--logfile",
                                      m_dir + "/redis.log"};
        std::vector<char*> argv;
        for (auto& a : args)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        const pid_t pid = ::fork();
        if (pid < 0)
            throw std::runtime_error("redis_server: fork failed");
        if (pid == 0) {
#if defined(__linux__)
            // The server dies with the test that started it, even one that crashes.
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
            const int null = ::open("/dev/null", O_RDWR);
            if (null >= 0) {
                ::dup2(null, 0);
                ::dup2(null, 1);
                ::dup2(null, 2);
            }
            ::execv(argv[0], argv.data());
            ::_exit(127);
        }
        m_pid = pid;
        m_paused = false;
        const auto deadline = std::chrono::steady_clock::now() + m_opt.start_timeout;
        while (std::chrono::steady_clock::now() < deadline) {
            if (query({"PING"}) == "+PONG")
                return;
            if (::waitpid(m_pid, nullptr, WNOHANG) == m_pid) {
                m_pid = -1;
                throw std::runtime_error("redis_server: redis-server exited at start (see " +
                                         m_dir + "/redis.log)");
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        kill_now();
        throw std::runtime_error("redis_server: no PING answer within the start timeout");
    }

    void kill_now() noexcept {
        if (m_pid <= 0)
            return;
        ::kill(m_pid, SIGCONT);
        ::kill(m_pid, SIGKILL);
        ::waitpid(m_pid, nullptr, 0);
        m_pid = -1;
        m_paused = false;
    }

    redis_server_options m_opt;
    std::string m_exe;
    std::string m_dir;
    int m_port = 0;
    pid_t m_pid = -1;
    bool m_paused = false;
};

} // namespace testing
RATEGOV_NAMESPACE_END
