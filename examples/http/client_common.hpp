// What the two libcurl clients share: their settings (flags and environment), a libcurl
// request for one chat completion turned into a rategov response, the governor with its
// adaptive limits, and the report of what a run achieved.
//
// Where the governor's state lives is chosen when building:
//   (default)                     in the process: each client process has its own limits
//   RATEGOV_EXAMPLE_STORE_SHM=1   in a POSIX shared-memory segment (rategov/shm/shm.hpp):
//                                 the processes of one host that name the same segment and
//                                 key (--shm, --key) share one set of limits
//   RATEGOV_EXAMPLE_STORE_REDIS=1 in Redis, leased (rategov/redis/redis.hpp): the processes
//                                 of any host that name the same server and key (--redis,
//                                 --key) share one set of limits
// Another store is one more branch of the `#if` below and of `store_handle`.
#pragma once

#ifndef RATEGOV_EXAMPLE_STORE_SHM
#define RATEGOV_EXAMPLE_STORE_SHM 0
#endif
#ifndef RATEGOV_EXAMPLE_STORE_REDIS
#define RATEGOV_EXAMPLE_STORE_REDIS 0
#endif

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <curl/curl.h>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <signal.h>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include <rategov/rategov.hpp>
#if RATEGOV_EXAMPLE_STORE_SHM
#include <rategov/shm/shm.hpp>
#endif
#if RATEGOV_EXAMPLE_STORE_REDIS
#include <rategov/redis/redis.hpp>
#endif

#include "chat_wire.hpp"

namespace client {

using namespace std::chrono_literals;
namespace m = rategov::metric;
using chat::llm;
/// Where the governor's state lives (see the top of this file).
enum class store_kind { in_process, shm, redis };
#if RATEGOV_EXAMPLE_STORE_SHM
constexpr store_kind build_store = store_kind::shm;
using governor_type = rategov::shm::governor<llm>; // rategov::steady_clock
#elif RATEGOV_EXAMPLE_STORE_REDIS
constexpr store_kind build_store = store_kind::redis;
using governor_type = rategov::redis::leased_governor<llm>; // rategov::steady_clock
#else
constexpr store_kind build_store = store_kind::in_process;
using governor_type = rategov::governor<llm>; // rategov::steady_clock
#endif
/// Whether other processes share the governor's state (then `--key` names it).
constexpr bool shared_store = build_store != store_kind::in_process;
using time_point = governor_type::time_point;
constexpr std::size_t metric_count = llm::size;
constexpr const char* metric_names[metric_count] = {"requests", "total_prompt", "uncached_prompt",
                                                    "generated"};

// --- settings ---------------------------------------------------------------------------------

/// What to run against, from the environment (a real provider needs the first two):
///   RATEGOV_BASE_URL   the API's base URL (http://127.0.0.1:8080/v1, the local provider)
///   RATEGOV_API_KEY    sent as `Authorization: Bearer ...` (none by default)
///   RATEGOV_MODEL      the model to call (local-model)
/// and from the flags (see `usage`).
struct settings {
    std::string base_url = "http://127.0.0.1:8080/v1";
    std::string api_key;
    std::string model = "local-model";
    double seconds = 30;
    double warmup_s = -1; // default: burst_s (a burst left at the start is spent by then)
    double burst_s = 10;
    unsigned concurrency = 64;
    std::uint64_t prompt_tokens = 1500;
    std::uint64_t max_tokens = 256;
    std::string headers = "fireworks";
    std::uint64_t limits[metric_count] = {6'000, 3'600'000, 900'000, 36'000};
    double check_429 = -1;                         // < 0: no check
    double check_utilization = -1;                 // < 0: no check
    std::string shm_name = "/rategov-curl-client"; // the segment (shm store)
    std::string redis_host = "127.0.0.1";          // the server (Redis store)
    int redis_port = 6379;
    std::string key; // the state's key (shared stores): the model
};

inline void usage(const char* name, std::FILE* out) {
    std::fprintf(
        out,
        "usage: %s [options]\n"
        "  --seconds S              how long to run (30)\n"
        "  --warmup S               report rates from this point on (--burst-s)\n"
        "  --concurrency N          calls in progress at once (64)\n"
        "  --prompt-tokens N        mean prompt length, in tokens (1500)\n"
        "  --max-tokens N           max_tokens of each request (256)\n"
        "  --headers fireworks|openai|anthropic   which rate-limit headers to read (fireworks)\n"
        "  --limits R,T,U,G         starting limits per minute, learned from the headers\n"
        "                           afterwards (6000,3600000,900000,36000)\n"
        "  --burst-s S              the most taken at once: S seconds of each limit (10)\n"
        "  --check-429 F            with the local provider: fail if it answered more than\n"
        "                           this share of requests with 429\n"
        "  --check-utilization F    with the local provider: fail if the binding metric's\n"
        "                           use after the warm-up is below this share of its limit\n"
        "%s"
        "environment: RATEGOV_BASE_URL (http://127.0.0.1:8080/v1), RATEGOV_API_KEY (none),\n"
        "             RATEGOV_MODEL (local-model)\n",
        name,
        build_store == store_kind::shm
            ? "limits shared with other processes in POSIX shared memory (this build):\n"
              "  --shm NAME               the segment, created by the first process\n"
              "                           (/rategov-curl-client)\n"
              "  --key KEY                the governor's key in it: the processes naming the\n"
              "                           same key share its limits; the first sets them (the\n"
              "                           model)\n"
        : build_store == store_kind::redis
            ? "limits shared with other processes through Redis, leased (this build):\n"
              "  --redis HOST:PORT        the server (127.0.0.1:6379)\n"
              "  --key KEY                the governor's key in it: the processes naming the\n"
              "                           same key share its limits; the first sets them (the\n"
              "                           model)\n"
            : "");
}

inline settings parse(int argc, char** argv) {
    settings s;
    if (const char* v = std::getenv("RATEGOV_BASE_URL"); v != nullptr && *v != '\0')
        s.base_url = v;
    while (!s.base_url.empty() && s.base_url.back() == '/')
        s.base_url.pop_back();
    if (const char* v = std::getenv("RATEGOV_API_KEY"); v != nullptr)
        s.api_key = v;
    if (const char* v = std::getenv("RATEGOV_MODEL"); v != nullptr && *v != '\0')
        s.model = v;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--help" || a == "-h") {
            usage(argv[0], stdout);
            std::exit(0);
        }
        if (i + 1 >= argc)
            throw std::invalid_argument("unknown flag or missing value: " + a);
        const std::string v = argv[++i];
        auto number = [&](double lo, double hi) { return chat::parse_number(a, v, lo, hi); };
        if (a == "--seconds")
            s.seconds = number(0.1, 86'400);
        else if (a == "--warmup")
            s.warmup_s = number(0, 86'400);
        else if (a == "--burst-s")
            s.burst_s = number(0.001, 60);
        else if (a == "--concurrency")
            s.concurrency = static_cast<unsigned>(number(1, 4096));
        else if (a == "--prompt-tokens")
            s.prompt_tokens = static_cast<std::uint64_t>(number(1, 1'000'000));
        else if (a == "--max-tokens")
            s.max_tokens = static_cast<std::uint64_t>(number(1, 1'000'000));
        else if (a == "--headers") {
            if (v != "fireworks" && v != "openai" && v != "anthropic")
                throw std::invalid_argument("--headers: fireworks, openai or anthropic, got '" + v +
                                            "'");
            s.headers = v;
        } else if (a == "--limits") {
            chat::parse_limits(v, s.limits);
        } else if (a == "--check-429")
            s.check_429 = number(0, 1);
        else if (a == "--check-utilization")
            s.check_utilization = number(0, 1);
        else if ((a == "--shm" && build_store != store_kind::shm) ||
                 (a == "--redis" && build_store != store_kind::redis) ||
                 (a == "--key" && !shared_store))
            throw std::invalid_argument(
                a + ": not a flag of this build; limits shared between processes need the "
                    "build with RATEGOV_EXAMPLE_STORE_SHM=1 (curl_client_shm, --shm) or "
                    "RATEGOV_EXAMPLE_STORE_REDIS=1 (curl_client_redis, --redis)");
        else if (a == "--redis") {
            const auto colon = v.rfind(':');
            if (colon == std::string::npos || colon == 0)
                throw std::invalid_argument("--redis: HOST:PORT, got '" + v + "'");
            s.redis_host = v.substr(0, colon);
            char* end = nullptr;
            const long port = std::strtol(v.c_str() + colon + 1, &end, 10);
            if (end == v.c_str() + colon + 1 || *end != '\0' || port < 1 || port > 65535)
                throw std::invalid_argument("--redis: no port within [1, 65535] in '" + v + "'");
            s.redis_port = static_cast<int>(port);
        } else if (a == "--shm")
            s.shm_name = v;
        else if (a == "--key") {
            if (v.empty())
                throw std::invalid_argument("--key: an empty key");
            s.key = v;
        } else
            throw std::invalid_argument("unknown flag: " + a);
    }
    if (s.key.empty())
        s.key = s.model;
    if (s.warmup_s < 0)
        s.warmup_s = std::min(s.burst_s, s.seconds / 2);
    if (s.warmup_s >= s.seconds)
        throw std::invalid_argument("--warmup " + std::to_string(s.warmup_s) +
                                    " leaves nothing of --seconds " + std::to_string(s.seconds));
    return s;
}

// --- the governor -----------------------------------------------------------------------------

/// A starting limit with a burst of `burst_s` seconds' worth (10 by default): enough for
/// the requests in flight to hold their max_tokens, and no more than the provider accepts
/// at once (a provider enforcing buckets of that size; one enforcing a 60 s window accepts
/// more). Limits learned later keep this ratio of burst to rate.
inline rategov::quota start_quota(std::uint64_t per_minute, double burst_s) {
    const auto burst = static_cast<std::uint64_t>(static_cast<double>(per_minute) * burst_s / 60);
    return rategov::per_minute(per_minute).with_burst(std::max<std::uint64_t>(1, burst));
}

/// What holds the governor's state for the run: nothing in the process, the mapped segment
/// with the shm store (it must outlive the governor).
/// \throws rategov::config_error when the segment cannot be opened.
struct store_handle {
#if RATEGOV_EXAMPLE_STORE_SHM
    rategov::shm::segment segment;

    /// Opens (or creates) the segment; one opened while its creator still sets it up waits
    /// for it (up to 2 s).
    explicit store_handle(const settings& s)
        : segment(rategov::shm::segment::open(s.shm_name)) {}
    /// The governor of `s.key` in the segment, with these limits if it is new.
    template <class... Q>
    governor_type make(const settings& s, const Q&... limits) {
        return governor_type(segment.place(s.key), rategov::steady_clock{}, limits...);
    }
#elif RATEGOV_EXAMPLE_STORE_REDIS
    rategov::redis::options options;

    /// The server of `--redis`; everything else as `redis::options` says (leased slices
    /// of at most burst / 8, the local share of a quarter of each limit while Redis is
    /// down).
    explicit store_handle(const settings& s) {
        options.endpoint.host = s.redis_host;
        options.endpoint.port = s.redis_port;
    }
    /// The leased governor of `s.key` on the server, with these limits if it is new.
    template <class... Q>
    governor_type make(const settings& s, const Q&... limits) {
        return governor_type(rategov::steady_clock{}, options, s.key, limits...);
    }
#else
    explicit store_handle(const settings&) {}
    /// A governor of this process.
    template <class... Q>
    governor_type make(const settings&, const Q&... limits) {
        return governor_type(rategov::steady_clock{}, limits...);
    }
#endif
};

/// One account and model's limits, shared by every call (and, with a shared store, by
/// every process that names the same key): the governor, the limits it learns from the
/// headers (between a quarter and twenty times the start), a retry budget.
/// \throws rategov::config_error for limits the governor cannot take, or a store that
///         cannot hold them.
struct governed {
    store_handle store;
    governor_type gov;
    rategov::adaptive_limits<governor_type> adaptive{gov};
    rategov::backoff::retry_budget budget;

    explicit governed(const settings& s)
        : store(s)
        , gov(store.make(s, start_quota(s.limits[0], s.burst_s),
                         start_quota(s.limits[1], s.burst_s), start_quota(s.limits[2], s.burst_s),
                         start_quota(s.limits[3], s.burst_s))) {
        if constexpr (build_store == store_kind::redis)
            static_cast<void>(gov.debts()); // one round trip: the limits held in Redis
        for (std::size_t i = 0; i < metric_count; ++i) {
            const rategov::quota lower =
                rategov::per_minute(std::max<std::uint64_t>(1, s.limits[i] / 4));
            // an adaptive count is at most 2^32 - 1 per period
            const rategov::quota upper =
                rategov::per_minute(std::min<std::uint64_t>(s.limits[i] * 20, 0xFFFF'FFFF));
            rategov::quota start = start_quota(s.limits[i], s.burst_s);
            // `bound` sets the limit to its start: a process that attaches to a shared state
            // starts from the limit the others have learned, not from its flags (which would
            // set the start again for all of them until its own first response).
            if constexpr (shared_store) {
                const rategov::quota held = gov.limit(i);
                if (held.period() == start.period() && held.count() >= lower.count() &&
                    held.count() <= upper.count())
                    start = held;
            }
            adaptive.bound(i, {lower, start, upper});
        }
    }
};

/// The options of one call: read the headers with `Profile`, learn the limits, bound the
/// retries, and stop at `deadline`. Estimates exceed the usage (max_tokens), so a call
/// takes tokens only when they are there (`queue = false`; see `call_options::queue`).
template <class Profile>
rategov::call_options<governor_type, Profile> call_options_for(governed& g, time_point deadline) {
    rategov::call_options<governor_type, Profile> o;
    o.adaptive = &g.adaptive;
    o.budget = &g.budget;
    o.deadline = deadline;
    o.queue = false;
    return o;
}

/// The request of the `n`-th call: a prompt of 50–150 % of the mean length.
inline chat::request make_request(const settings& s, std::uint64_t n) {
    rategov::backoff::splitmix64 draw(n * 0x9E3779B97F4A7C15ULL + 1);
    const std::uint64_t tokens =
        std::max<std::uint64_t>(1, s.prompt_tokens / 2 + draw() % (s.prompt_tokens + 1));
    chat::request r;
    r.model = s.model;
    r.prompt.assign(tokens * 4, 'x'); // 4 bytes a token for the stand-in tokenizer
    r.prompt.replace(0, std::min<std::size_t>(r.prompt.size(), 24), "Say something long. ");
    r.max_tokens = s.max_tokens;
    return r;
}

// --- Ctrl-C -----------------------------------------------------------------------------------

/// Set by the first SIGINT or SIGTERM: no new call starts, waits end, transfers in progress
/// are aborted. A second signal kills the process (the handler resets itself).
inline std::atomic<bool> interrupted{false};
/// Set by a signal or by a run that stops on a failure: transfers in progress are aborted.
inline std::atomic<bool> abort_transfers{false};
extern "C" inline void on_interrupt(int) {
    interrupted.store(true);
    abort_transfers.store(true);
}
inline void install_interrupt_handler() {
    struct sigaction sa {};
    sa.sa_handler = on_interrupt;
    sa.sa_flags = static_cast<int>(SA_RESETHAND);
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
}

// --- one HTTP exchange with libcurl -------------------------------------------------------------

/// libcurl's global state, set up once for the process.
struct curl_global {
    curl_global() {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            throw std::runtime_error("curl_global_init failed");
    }
    ~curl_global() { curl_global_cleanup(); }
    curl_global(const curl_global&) = delete;
    curl_global& operator=(const curl_global&) = delete;
};

/// A response as the client loop needs it (`rategov::response_for<llm>`), plus the body.
struct http_response {
    int status = 0;
    rategov::owned_headers headers;
    std::optional<rategov::cost<llm>> usage;
    std::string error_code;
    std::string body;
};

/// One chat completion on a libcurl easy handle: set up with `prepare`, performed by the
/// caller (`curl_easy_perform`, or a multi handle), read back with `finish`.
class exchange {
public:
    exchange()
        : m_easy(curl_easy_init()) {
        if (m_easy == nullptr)
            throw std::runtime_error("curl_easy_init failed");
    }
    ~exchange() {
        curl_slist_free_all(m_list);
        curl_easy_cleanup(m_easy);
    }
    exchange(const exchange&) = delete;
    exchange& operator=(const exchange&) = delete;

    [[nodiscard]] CURL* handle() const noexcept { return m_easy; }
    /// Whether a transfer is prepared and not yet finished.
    [[nodiscard]] bool busy() const noexcept { return m_busy; }

    /// Sets the handle up to POST `req` to `s.base_url + "/chat/completions"`, giving up
    /// after 2 minutes. The connection is kept for the next one. (The call's deadline
    /// bounds the waits for tokens and the retries; a request sent is let finish.)
    void prepare(const settings& s, const chat::request& req) {
        m_response = {};
        m_body = req.body();
        m_max_tokens = req.max_tokens;
        m_prompt_tokens = req.prompt_tokens();
        m_busy = true;
        m_url = s.base_url + "/chat/completions";
        curl_slist_free_all(m_list);
        m_list = curl_slist_append(nullptr, "Content-Type: application/json");
        if (!s.api_key.empty())
            m_list = curl_slist_append(m_list, ("Authorization: Bearer " + s.api_key).c_str());
        curl_easy_setopt(m_easy, CURLOPT_URL, m_url.c_str());
        curl_easy_setopt(m_easy, CURLOPT_HTTPHEADER, m_list);
        curl_easy_setopt(m_easy, CURLOPT_POSTFIELDS, m_body.c_str());
        curl_easy_setopt(m_easy, CURLOPT_POSTFIELDSIZE_LARGE,
                         static_cast<curl_off_t>(m_body.size()));
        curl_easy_setopt(m_easy, CURLOPT_TIMEOUT, 120L);
        curl_easy_setopt(m_easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(m_easy, CURLOPT_ERRORBUFFER, m_error);
        curl_easy_setopt(m_easy, CURLOPT_HEADERFUNCTION, &exchange::on_header);
        curl_easy_setopt(m_easy, CURLOPT_HEADERDATA, this);
        curl_easy_setopt(m_easy, CURLOPT_WRITEFUNCTION, &exchange::on_body);
        curl_easy_setopt(m_easy, CURLOPT_WRITEDATA, this);
        // Ctrl-C, or a run stopped on a failure, aborts a transfer in progress.
        curl_easy_setopt(m_easy, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(m_easy, CURLOPT_XFERINFOFUNCTION, &exchange::on_progress);
        m_error[0] = '\0';
    }

    /// The response of a finished transfer; throws `rategov::transport_error` when libcurl
    /// failed, saying whether the request may have reached the provider.
    http_response finish(CURLcode code) {
        m_busy = false;
        if (code != CURLE_OK)
            fail(code);
        long status = 0;
        curl_easy_getinfo(m_easy, CURLINFO_RESPONSE_CODE, &status);
        m_response.status = static_cast<int>(status);
        m_response.usage = status / 100 == 2
                               ? chat::usage_of(m_response.body, m_prompt_tokens, m_max_tokens)
                               : std::nullopt;
        if (status / 100 != 2)
            m_response.error_code = chat::error_code_of(m_response.body);
        return std::move(m_response);
    }

private:
    [[noreturn]] void fail(CURLcode code) const {
        const std::string what =
            std::string("libcurl: ") + (m_error[0] != '\0' ? m_error : curl_easy_strerror(code));
        switch (code) {
        case CURLE_ABORTED_BY_CALLBACK: // the run is stopping: no retry
            throw rategov::transport_error(what, rategov::delivery::maybe_sent,
                                           rategov::feedback::outcome::fatal);
        case CURLE_URL_MALFORMAT:
        case CURLE_UNSUPPORTED_PROTOCOL:
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_CERTPROBLEM: // a mistake to fix, not to retry
            throw rategov::transport_error(what, rategov::delivery::not_sent,
                                           rategov::feedback::outcome::fatal);
        default:
            break;
        }
        // No byte of the request left (no connection, DNS, TLS handshake, a connect
        // timeout): surely never counted, refunded and retried. Else it may have been.
        long sent = 0;
        curl_easy_getinfo(m_easy, CURLINFO_REQUEST_SIZE, &sent);
        throw rategov::transport_error(what, sent == 0 ? rategov::delivery::not_sent
                                                       : rategov::delivery::maybe_sent);
    }

    static std::size_t on_header(char* data, std::size_t size, std::size_t n, void* self) {
        auto* x = static_cast<exchange*>(self);
        std::string_view line(data, size * n);
        if (line.rfind("HTTP/", 0) == 0) // a new response (after a 100 Continue, say)
            x->m_response.headers = {};
        const auto colon = line.find(':');
        if (colon != std::string_view::npos) {
            auto trim = [](std::string_view v) {
                while (!v.empty() && (v.front() == ' ' || v.front() == '\t'))
                    v.remove_prefix(1);
                while (!v.empty() && (v.back() == '\r' || v.back() == '\n' || v.back() == ' ' ||
                                      v.back() == '\t'))
                    v.remove_suffix(1);
                return v;
            };
            x->m_response.headers.add(std::string(line.substr(0, colon)),
                                      std::string(trim(line.substr(colon + 1))));
        }
        return size * n;
    }
    static int on_progress(void*, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
        return abort_transfers.load() ? 1 : 0; // nonzero aborts the transfer
    }
    static std::size_t on_body(char* data, std::size_t size, std::size_t n, void* self) {
        static_cast<exchange*>(self)->m_response.body.append(data, size * n);
        return size * n;
    }

    CURL* m_easy;
    curl_slist* m_list = nullptr;
    std::string m_url, m_body;
    http_response m_response;
    std::uint64_t m_max_tokens = 0, m_prompt_tokens = 0;
    bool m_busy = false;
    char m_error[CURL_ERROR_SIZE] = {};
};

/// GET `url` (a small JSON document, within 2 s), or `nullopt`.
inline std::optional<nlohmann::json> get_json(const std::string& url) {
    std::unique_ptr<CURL, void (*)(CURL*)> easy(curl_easy_init(), curl_easy_cleanup);
    if (!easy)
        return std::nullopt;
    std::string body;
    auto sink = +[](char* d, std::size_t size, std::size_t n, void* out) {
        static_cast<std::string*>(out)->append(d, size * n);
        return size * n;
    };
    curl_easy_setopt(easy.get(), CURLOPT_URL, url.c_str());
    curl_easy_setopt(easy.get(), CURLOPT_TIMEOUT_MS, 2000L);
    curl_easy_setopt(easy.get(), CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy.get(), CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(easy.get(), CURLOPT_WRITEDATA, &body);
    long status = 0;
    if (curl_easy_perform(easy.get()) != CURLE_OK ||
        curl_easy_getinfo(easy.get(), CURLINFO_RESPONSE_CODE, &status) != CURLE_OK || status != 200)
        return std::nullopt;
    auto j = nlohmann::json::parse(body, nullptr, false);
    return j.is_discarded() ? std::nullopt : std::optional(std::move(j));
}

// --- what a run achieved ----------------------------------------------------------------------

/// What a caller does after a call: start the next, pause first (the last calls failed), or
/// stop (the run is over, or cannot succeed).
enum class next_step { go_on, pause, stop };

/// Counts of a run, updated by the calls as they end (thread-safe), and the decision of
/// what follows each call.
class report {
public:
    /// Takes the provider's counts before the first request, when it publishes them.
    explicit report(const settings& s)
        : m_settings(s)
        , m_start(rategov::steady_clock::now())
        , m_server_start(server_counts()) {}

    /// Records how a call ended and, between the warm-up and the end, what its response used;
    /// says what the caller does next. A call that failed for a reason no retry can mend
    /// (a fatal answer, such as a wrong URL, model or key; an estimate larger than a burst;
    /// an unexpected exception) stops the run with the reason printed. One that failed after
    /// its retries asks for a pause, doubling from 1 s to 30 s while calls keep failing, so
    /// that a provider that is down is not hammered.
    template <class Summary>
    next_step on_call(const Summary& summary, const http_response* last) {
        using rategov::call_status;
        std::lock_guard lock(m_mutex);
        if (summary.status != call_status::success && stopped()) { // ended by the stop
            ++m_cancelled;
            return next_step::stop;
        }
        switch (summary.status) {
        case call_status::success:
            ++m_ok;
            m_failing = 0;
            if (last != nullptr && last->usage && m_phase == phase::measuring)
                for (std::size_t i = 0; i < metric_count; ++i)
                    m_used[i] += (*last->usage)[i];
            return next_step::go_on;
        case call_status::deadline:
            ++(summary.attempts == 0 ? m_unsent : m_failed); // 0: no tokens before the end
            return next_step::stop;
        case call_status::cancelled:
            ++m_cancelled;
            return next_step::stop;
        case call_status::exceeds_capacity:
            ++m_failed;
            stop_run("a request's estimate exceeds the burst of " +
                     std::string(metric_names[std::min(summary.metric, metric_count - 1)]) +
                     ": lower --max-tokens or --prompt-tokens, or raise --burst-s");
            return next_step::stop;
        case call_status::rejected:
        case call_status::error:
        case call_status::unavailable:
            ++m_failed;
            stop_run("a call failed and cannot succeed by retrying: " + why(summary, last));
            return next_step::stop;
        case call_status::retries_exhausted:
        case call_status::budget_exhausted:
            break;
        }
        ++m_failed;
        ++m_failing;
        note("calls are failing (pausing before the next): " + why(summary, last));
        return next_step::pause;
    }

    /// How long to pause after a failed call: 1 s, doubling while calls keep failing, ≤ 30 s.
    [[nodiscard]] std::chrono::milliseconds pause() const {
        std::lock_guard lock(m_mutex);
        const unsigned k = std::min<unsigned>(m_failing == 0 ? 0 : m_failing - 1, 5);
        return std::min<std::chrono::milliseconds>(std::chrono::milliseconds(1000) * (1 << k), 30s);
    }

    /// Whether the run must end now (a call failed for good, or Ctrl-C).
    [[nodiscard]] bool stopped() const { return m_stop.load() || interrupted.load(); }

    /// Called when the warm-up is over, then at the run's end: the rates are measured in
    /// between, here and (when it publishes its counts) at the provider.
    void begin_measuring() {
        auto counts = server_counts();
        std::lock_guard lock(m_mutex);
        m_server_begin = std::move(counts);
        m_measure_from = rategov::steady_clock::now();
        m_phase = phase::measuring;
    }
    void end_measuring() {
        auto counts = server_counts();
        std::lock_guard lock(m_mutex);
        m_server_end = std::move(counts);
        m_measure_to = rategov::steady_clock::now();
        m_phase = phase::ended;
    }

    /// Records one response's status (every attempt, so that 429s are counted).
    void on_status(int status) {
        std::lock_guard lock(m_mutex);
        ++m_responses;
        m_429 += status == 429 ? 1 : 0;
        m_503 += status == 503 ? 1 : 0;
    }

    /// Prints the report; returns the process's exit status (1 when the run stopped on a
    /// failure or a check failed).
    int print(const governor_type& gov) const {
        std::lock_guard lock(m_mutex);
        const double measured =
            std::chrono::duration<double>(m_measure_to - m_measure_from).count();
        std::printf("%.1f s against %s (model %s), %u calls at once\n", seconds_since(m_start),
                    m_settings.base_url.c_str(), m_settings.model.c_str(), m_settings.concurrency);
        if constexpr (build_store == store_kind::shm)
            std::printf("limits shared with other processes: segment %s, key %s\n",
                        m_settings.shm_name.c_str(), m_settings.key.c_str());
        if constexpr (build_store == store_kind::redis)
            std::printf("limits shared with other processes: Redis %s:%d, key %s\n",
                        m_settings.redis_host.c_str(), m_settings.redis_port,
                        m_settings.key.c_str());
        std::printf("calls: %" PRIu64 " succeeded, %" PRIu64 " failed, %" PRIu64
                    " cancelled, %" PRIu64 " ended waiting for tokens at the end; %" PRIu64
                    " responses, %" PRIu64 " of them 429 (%.2f%%), %" PRIu64 " 503\n",
                    m_ok, m_failed, m_cancelled, m_unsent, m_responses, m_429,
                    share(m_429, m_responses) * 100, m_503);
        if (interrupted.load()) { // a shortened run: no rates, no checks
            std::printf("interrupted\n");
            return 130;
        }
        if (m_stop.load())
            std::printf("the run stopped early: %s\n", m_stop_reason.c_str());
        if (measured > 0) {
            std::printf("after the %.0f s warm-up, per minute:  used      limit (learned)  share\n",
                        m_settings.warmup_s);
            if constexpr (shared_store)
                std::printf("  (used by this process; the limit is shared with the others)\n");
            for (std::size_t i = 0; i < metric_count; ++i) {
                const double per_min = static_cast<double>(m_used[i]) * 60 / measured;
                const double limit = gov.limit(i).per_second_value() * 60;
                std::printf("  %-36s %9.0f %16.0f  %5.3f\n", metric_names[i], per_min, limit,
                            per_min / limit);
            }
        }
        const bool checking = m_settings.check_429 >= 0 || m_settings.check_utilization >= 0;
        if (!m_server_start || !m_server_begin || !m_server_end || measured <= 0) {
            std::printf("(the provider publishes no counts: no provider-side figures)\n");
            if (checking)
                std::printf("FAIL: --check-* needs the local provider's /v1/rategov/stats\n");
            return checking || m_stop.load() || m_ok == 0 ? 1 : 0;
        }
        // What the provider counted: 429s over the whole run, use after the warm-up.
        const server_snapshot& s0 = *m_server_start;
        const server_snapshot& b = *m_server_begin;
        const server_snapshot& e = *m_server_end;
        const double server_429 = share(e.over_limit - s0.over_limit, e.submitted - s0.submitted);
        double binding = 0;
        std::size_t binding_metric = 0;
        std::printf("as the provider counted it:   429s %.2f%% of %" PRIu64 " requests\n",
                    server_429 * 100, e.submitted - s0.submitted);
        for (std::size_t i = 0; i < metric_count; ++i) {
            const double rate = static_cast<double>(e.served[i] - b.served[i]) /
                                std::max(1e-9, e.uptime_s - b.uptime_s) * 60;
            const double u = rate / static_cast<double>(std::max<std::uint64_t>(1, e.limits[i]));
            std::printf("  %-36s %9.0f %16" PRIu64 "  %5.3f\n", metric_names[i], rate, e.limits[i],
                        u);
            if (u > binding) {
                binding = u;
                binding_metric = i;
            }
        }
        int status = m_stop.load() || m_ok == 0 ? 1 : 0;
        if (m_ok == 0)
            std::printf("FAIL: no call succeeded\n");
        if (m_settings.check_429 >= 0 && server_429 > m_settings.check_429) {
            std::printf("FAIL: 429 share %.4f exceeds %.4f\n", server_429, m_settings.check_429);
            status = 1;
        }
        if (m_settings.check_utilization >= 0 && binding < m_settings.check_utilization) {
            std::printf("FAIL: %s used %.3f of its limit, below %.3f\n",
                        metric_names[binding_metric], binding, m_settings.check_utilization);
            status = 1;
        }
        if (status == 0 && checking)
            std::printf("checks passed: 429 share %.4f, %s used %.3f of its limit\n", server_429,
                        metric_names[binding_metric], binding);
        return status;
    }

private:
    struct server_snapshot {
        double uptime_s = 0;
        std::uint64_t submitted = 0, over_limit = 0;
        std::uint64_t served[metric_count] = {}, limits[metric_count] = {};
    };

    /// The local provider's counts for this client's account and model (zero before its
    /// first request), or `nullopt` when it publishes none (a real provider).
    [[nodiscard]] std::optional<server_snapshot> server_counts() const {
        const auto j = get_json(m_settings.base_url + "/rategov/stats");
        try {
            if (!j || !j->is_object() || !j->contains("uptime_s") ||
                !(*j)["uptime_s"].is_number() || !j->contains("accounts") ||
                !(*j)["accounts"].is_array())
                return std::nullopt;
            server_snapshot s;
            s.uptime_s = (*j)["uptime_s"].get<double>();
            const std::string account = chat::account_id(m_settings.api_key);
            for (const auto& a : (*j)["accounts"]) {
                if (!a.is_object() || a.value("account", "") != account ||
                    a.value("model", "") != m_settings.model || !a.contains("served") ||
                    !a.contains("limits_per_minute"))
                    continue;
                // Whole numbers only (a float cast to an integer could overflow).
                auto count = [](const nlohmann::json& o, const char* key, std::uint64_t dflt) {
                    return o.is_object() && o.contains(key) && o.at(key).is_number_unsigned()
                               ? o.at(key).get<std::uint64_t>()
                               : dflt;
                };
                s.submitted = count(a, "submitted", 0);
                s.over_limit = count(a, "over_limit", 0);
                for (std::size_t i = 0; i < metric_count; ++i) {
                    s.served[i] = count(a.at("served"), metric_names[i], 0);
                    s.limits[i] = count(a.at("limits_per_minute"), metric_names[i], 1);
                }
            }
            return s;
        } catch (const nlohmann::json::exception&) { // a document of another shape
            return std::nullopt;
        }
    }

    /// Why a call failed, in words.
    template <class Summary>
    static std::string why(const Summary& summary, const http_response* last) {
        if (summary.error) {
            try {
                std::rethrow_exception(summary.error);
            } catch (const std::exception& e) {
                return e.what();
            } catch (...) {
                return "an unknown exception";
            }
        }
        if (last != nullptr)
            return "HTTP " + std::to_string(last->status) +
                   (last->error_code.empty() ? "" : " (" + last->error_code + ")");
        return "no response";
    }
    /// Prints `message` once per run (m_mutex held).
    void note(const std::string& message) {
        if (m_noted.insert(message).second)
            std::fprintf(stderr, "%s\n", message.c_str());
    }
    /// Ends the run for `reason` (m_mutex held).
    void stop_run(const std::string& reason) {
        note(reason);
        abort_transfers.store(true);
        if (!m_stop.exchange(true))
            m_stop_reason = reason;
    }
    [[nodiscard]] static double seconds_since(rategov::steady_clock::time_point t) {
        return std::chrono::duration<double>(rategov::steady_clock::now() - t).count();
    }
    [[nodiscard]] static double share(std::uint64_t a, std::uint64_t b) {
        return b == 0 ? 0.0 : static_cast<double>(a) / static_cast<double>(b);
    }

    const settings& m_settings;
    const rategov::steady_clock::time_point m_start;
    mutable std::mutex m_mutex;
    std::atomic<bool> m_stop{false};
    std::string m_stop_reason;
    std::set<std::string> m_noted;
    enum class phase { warming, measuring, ended } m_phase = phase::warming;
    rategov::steady_clock::time_point m_measure_from{}, m_measure_to{};
    std::optional<server_snapshot> m_server_start, m_server_begin, m_server_end;
    std::uint64_t m_ok = 0, m_failed = 0, m_cancelled = 0, m_unsent = 0, m_responses = 0, m_429 = 0,
                  m_503 = 0;
    unsigned m_failing = 0;
    std::uint64_t m_used[metric_count] = {};
};

// --- main ----------------------------------------------------------------------------------

/// A client's `main`: parses the flags, sets up Ctrl-C and libcurl, and calls
/// `run(settings, profile)` with the header profile `--headers` names. Exit status: what
/// `run` returns; 2 for a bad flag or limits the governor cannot take.
template <class Run>
int client_main(int argc, char** argv, const char* name, Run run) {
    try {
        const settings s = parse(argc, argv);
        install_interrupt_handler();
        const curl_global curl;
        namespace fb = rategov::feedback;
        if (s.headers == "openai")
            return run(s, fb::openai_profile<llm>{});
        if (s.headers == "anthropic")
            return run(s, fb::anthropic_profile<llm>{});
        return run(s, fb::fireworks_profile<llm>{});
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: %s\n", name, e.what());
        usage(argv[0], stderr);
        return 2;
    }
}

} // namespace client
