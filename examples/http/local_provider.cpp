// local_provider: an OpenAI-compatible HTTP server on 127.0.0.1 that plays the seed
// provider in real time — rategov::testing::provider_simulator behind cpp-httplib. Point a
// client at it instead of a real provider to see what it gets, without an account:
//
//   build/dev/examples/http/local_provider --port 8080
//   RATEGOV_BASE_URL=http://127.0.0.1:8080/v1 build/dev/examples/http/curl_client
//
// POST /v1/chat/completions   a chat completion: 200 with `usage`, 429 over a limit
//                             (with Retry-After), 503 when shedding load, 400 too large;
//                             the seed provider's rate-limit headers on every response
// GET  /v1/rategov/stats      what it counted, per account (the bearer token) and model
//
// Prompt tokens are counted by a stand-in tokenizer (one per 4 bytes of content); the reply
// generates between a quarter of `max_tokens` and all of it. See --help.
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <httplib.h>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <signal.h>
#include <stdexcept>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <utility>
#include <vector>

#include <rategov/rategov.hpp>
#include <rategov/testing/provider_simulator.hpp>

#include "chat_wire.hpp"

namespace {

namespace rt = rategov::testing;
using json = nlohmann::json;
using clock_type = rategov::steady_clock;

struct options {
    std::string host = "127.0.0.1";
    int port = 8080;
    std::string port_file;
    double exit_after_s = 0; // 0: until SIGINT/SIGTERM
    int threads = 256;
    rt::simulator_config sim;
};

void usage(std::FILE* out) {
    std::fputs(
        "usage: local_provider [options]\n"
        "  --host ADDR            address to listen on (127.0.0.1)\n"
        "  --port N               port, 0 for any free one (8080)\n"
        "  --port-file PATH       write the port there once listening\n"
        "  --exit-after SECONDS   stop after this long (default: at SIGINT/SIGTERM)\n"
        "  --threads N            connections served at once; a kept-alive connection holds\n"
        "                         its thread until it closes (256)\n"
        "  --limits R,T,U,G       per minute: requests, total prompt, uncached prompt and\n"
        "                         generated tokens (6000,3600000,900000,36000)\n"
        "  --adaptive on|off      limits adapt between a quarter and ten times the start (off)\n"
        "  --enforcement bucket|window   token buckets or a sliding window (bucket)\n"
        "  --burst-s S            a bucket holds S seconds of each limit (10)\n"
        "  --window-s S           the sliding window (60)\n"
        "  --ttft-ms N            time to first token (200)\n"
        "  --per-token-ms N       time per generated token (10)\n"
        "  --cache-hit F          share of each prompt served from cache (0.3)\n"
        "  --shed-rate F          probability of a 503 for regular traffic (0)\n"
        "  --headers fireworks|openai|anthropic   rate-limit headers to send (fireworks)\n"
        "  --seed N               seed of the shedding and output-length draws (1)\n",
        out);
}

options parse(int argc, char** argv) {
    options o;
    o.sim.mode = rt::enforcement::bucket;
    o.sim.bucket_burst = std::chrono::seconds(10);
    o.sim.cache_hit = 0.3;
    bool adaptive = false;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--help" || a == "-h") {
            usage(stdout);
            std::exit(0);
        }
        if (i + 1 >= argc)
            throw std::invalid_argument("unknown flag or missing value: " + a);
        const std::string v = argv[++i];
        // A number in [0, hi] (whole when `whole`), or an error naming the flag.
        auto number = [&](double hi, bool whole = false) {
            return chat::parse_number(a, v, 0, hi, whole);
        };
        auto ms = [&](double hi_ms) {
            return std::chrono::nanoseconds(static_cast<std::int64_t>(number(hi_ms) * 1e6));
        };
        if (a == "--host")
            o.host = v;
        else if (a == "--port")
            o.port = static_cast<int>(number(65535, true));
        else if (a == "--port-file")
            o.port_file = v;
        else if (a == "--exit-after")
            o.exit_after_s = number(1e6);
        else if (a == "--threads")
            o.threads = static_cast<int>(number(4096, true));
        else if (a == "--limits") {
            std::uint64_t l[4];
            chat::parse_limits(v, l);
            o.sim.start = {l[0], l[1], l[2], l[3]};
        } else if (a == "--adaptive") {
            if (v != "on" && v != "off")
                throw std::invalid_argument("--adaptive: on or off, got '" + v + "'");
            adaptive = v == "on";
        } else if (a == "--enforcement") {
            if (v != "bucket" && v != "window")
                throw std::invalid_argument("--enforcement: bucket or window, got '" + v + "'");
            o.sim.mode = v == "bucket" ? rt::enforcement::bucket : rt::enforcement::window;
        } else if (a == "--burst-s")
            o.sim.bucket_burst = ms(86'400) * 1000;
        else if (a == "--window-s")
            o.sim.window = ms(86'400) * 1000;
        else if (a == "--ttft-ms")
            o.sim.time_to_first_token = ms(3'600'000);
        else if (a == "--per-token-ms")
            o.sim.per_output_token = ms(10'000);
        else if (a == "--cache-hit")
            o.sim.cache_hit = number(1);
        else if (a == "--shed-rate")
            o.sim.shed_rate = number(1);
        else if (a == "--headers") {
            if (v == "fireworks")
                o.sim.headers = rt::header_style::fireworks;
            else if (v == "openai")
                o.sim.headers = rt::header_style::openai;
            else if (v == "anthropic")
                o.sim.headers = rt::header_style::anthropic;
            else
                throw std::invalid_argument("--headers: fireworks, openai or anthropic, got '" + v +
                                            "'");
        } else if (a == "--seed")
            o.sim.seed = static_cast<std::uint64_t>(number(1e15, true));
        else
            throw std::invalid_argument("unknown flag: " + a);
    }
    if (adaptive) {
        o.sim.lower = o.sim.start.scaled(0.25);
        o.sim.upper = o.sim.start.scaled(10.0);
    }
    if (o.threads < 1)
        throw std::invalid_argument("--threads must be at least 1");
    o.sim.validate(); // a config_error names the bad value
    return o;
}

/// Set by the first SIGINT or SIGTERM (a second one kills: the handler resets itself).
std::atomic<bool> stop_requested{false};
extern "C" void on_signal(int) {
    stop_requested.store(true);
}

/// An OpenAI-style error body.
std::string error_body(std::string_view message, std::string_view type, std::string_view code) {
    return json{{"error", {{"message", message}, {"type", type}, {"code", code}}}}.dump();
}

/// The provider: one simulator (not thread-safe, so behind a mutex) on the real clock.
class provider {
public:
    explicit provider(const rt::simulator_config& cfg)
        : m_sim(clock_type{}, cfg)
        , m_draw(cfg.seed ^ 0x5DEECE66DULL) {}

    void chat(const httplib::Request& in, httplib::Response& out) {
        const json body = json::parse(in.body, nullptr, /*allow_exceptions=*/false);
        std::string bad;
        rt::llm_request req;
        if (!body.is_object())
            bad = "the body is not a JSON object";
        else if (!body.contains("model") || !body["model"].is_string())
            bad = "`model` must be a string";
        else if (!body.contains("messages") || !body["messages"].is_array() ||
                 body["messages"].empty())
            bad = "`messages` must be a non-empty array";
        if (bad.empty()) {
            for (const json& msg : body["messages"]) {
                if (!msg.is_object() || !msg.contains("content") || !msg["content"].is_string()) {
                    bad = "each message needs a string `content`";
                    break;
                }
                req.prompt_tokens += chat::count_tokens(msg["content"].get<std::string>());
            }
            // `max_completion_tokens` (the newer name) wins; null means absent.
            const char* key =
                body.contains("max_completion_tokens") && !body["max_completion_tokens"].is_null()
                    ? "max_completion_tokens"
                    : "max_tokens";
            req.max_tokens = 256;
            if (body.contains(key) && !body[key].is_null()) {
                if (!body[key].is_number_unsigned() || body[key].get<std::uint64_t>() == 0 ||
                    body[key].get<std::uint64_t>() > 1'000'000)
                    bad = std::string("`") + key + "` must be an integer in [1, 1000000]";
                else
                    req.max_tokens = body[key].get<std::uint64_t>();
            }
            if (body.contains("service_tier") && !body["service_tier"].is_null() &&
                !body["service_tier"].is_string())
                bad = "`service_tier` must be a string";
            else
                req.priority = body.contains("service_tier") && body["service_tier"] == "priority";
        }
        if (!bad.empty()) {
            out.status = 400;
            out.set_content(error_body(bad, "invalid_request_error", "invalid_request"),
                            "application/json");
            return;
        }
        req.model = body["model"].get<std::string>();
        const std::string auth = in.get_header_value("Authorization");
        // Filed under a hash of the key: the statistics never publish a key.
        req.account = chat::account_id(auth.rfind("Bearer ", 0) == 0 ? auth.substr(7) : "");

        rt::provider_simulator<clock_type>::ticket ticket;
        {
            std::lock_guard lock(m_mutex);
            // What the model will say: a quarter of max_tokens to all of it.
            const std::uint64_t lo = (req.max_tokens + 3) / 4;
            req.output_tokens = lo + m_draw() % (req.max_tokens - lo + 1);
            m_keys.insert({req.account, req.model});
            ticket = m_sim.submit(req);
        }
        rt::llm_response r;
        {
            std::unique_lock lock(m_mutex);
            // Generating, in real time; a shutdown ends the wait (and the reply is a 503).
            if (m_stopped.wait_until(lock, ticket.ready_at, [&] { return m_stopping; })) {
                out.status = 503;
                out.set_content(
                    error_body("the server is shutting down", "server_error", "shutting_down"),
                    "application/json");
                return;
            }
            r = m_sim.collect(ticket);
        }
        out.status = r.status;
        for (const auto& [name, value] : r.headers)
            out.set_header(name, value);
        if (r.status == 200) {
            const auto& u = *r.usage;
            const std::uint64_t prompt = u.get<rategov::metric::total_prompt>();
            const std::uint64_t cached = prompt - u.get<rategov::metric::uncached_prompt>();
            const std::uint64_t generated = u.get<rategov::metric::generated>();
            std::string text;
            text.reserve(generated * 4);
            for (std::uint64_t i = 0; i < generated; ++i)
                text += "tok ";
            const json reply = {
                {"id", "chatcmpl-" + std::to_string(ticket.id)},
                {"object", "chat.completion"},
                {"created", std::chrono::duration_cast<std::chrono::seconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count()},
                {"model", req.model},
                {"choices",
                 {{{"index", 0},
                   {"message", {{"role", "assistant"}, {"content", text}}},
                   {"finish_reason", generated == req.max_tokens ? "length" : "stop"}}}},
                {"usage",
                 {{"prompt_tokens", prompt},
                  {"completion_tokens", generated},
                  {"total_tokens", prompt + generated},
                  {"prompt_tokens_details", {{"cached_tokens", cached}}}}}};
            out.set_content(reply.dump(), "application/json");
        } else if (r.status == 429) {
            out.set_content(error_body("rate limit exceeded for this account and model",
                                       "rate_limit_error", "rate_limit_exceeded"),
                            "application/json");
        } else if (r.status == 503) {
            out.set_content(error_body("the service is overloaded, retry later", "server_error",
                                       "service_unavailable"),
                            "application/json");
        } else {
            out.set_content(error_body("the request exceeds a limit it can never pass",
                                       "invalid_request_error", r.error_code),
                            "application/json");
        }
    }

    /// Ends the replies still generating (they answer 503) and refuses to wait from now on.
    void shut_down() {
        {
            std::lock_guard lock(m_mutex);
            m_stopping = true;
        }
        m_stopped.notify_all();
    }

    /// What was counted, per account and model: counts, tokens served, limits in force.
    std::string stats() {
        std::lock_guard lock(m_mutex);
        static constexpr const char* names[4] = {"requests", "total_prompt", "uncached_prompt",
                                                 "generated"};
        json accounts = json::array();
        const auto now = clock_type::now();
        for (const auto& [account, model] : m_keys) {
            const rt::llm_counters c = m_sim.counters(account, model);
            const rt::llm_limits limits = m_sim.limits(account, model);
            json served = json::object(), limit = json::object();
            for (std::size_t i = 0; i < 4; ++i) {
                served[names[i]] = c.served[i];
                limit[names[i]] = limits[i];
            }
            accounts.push_back({{"account", account},
                                {"model", model},
                                {"submitted", c.submitted},
                                {"ok", c.ok},
                                {"over_limit", c.over_limit},
                                {"shed", c.shed},
                                {"too_large", c.too_large},
                                {"served", served},
                                {"limits_per_minute", limit}});
        }
        const auto& cfg = m_sim.config();
        return json{{"uptime_s", std::chrono::duration<double>(now - m_started).count()},
                    {"enforcement", cfg.mode == rt::enforcement::bucket ? "bucket" : "window"},
                    {"burst_s", std::chrono::duration<double>(cfg.bucket_burst).count()},
                    {"window_s", std::chrono::duration<double>(cfg.window).count()},
                    {"accounts", accounts}}
            .dump(2, ' ', false, json::error_handler_t::replace); // any bytes: valid JSON
    }

private:
    std::mutex m_mutex;
    rt::provider_simulator<clock_type> m_sim;
    rategov::backoff::splitmix64 m_draw;
    std::set<std::pair<std::string, std::string>> m_keys;
    std::condition_variable m_stopped;
    bool m_stopping = false;
    const clock_type::time_point m_started = clock_type::now();
};

} // namespace

int main(int argc, char** argv) {
    options opt;
    try {
        opt = parse(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "local_provider: %s\n", e.what());
        usage(stderr);
        return 2;
    }
    provider p(opt.sim);
    httplib::Server server;
    const int threads = opt.threads;
    // One thread per request in progress: a reply waits (in real time) for its tokens.
    server.new_task_queue = [threads] {
        return new httplib::ThreadPool(static_cast<size_t>(threads));
    };
    server.Post("/v1/chat/completions",
                [&p](const httplib::Request& in, httplib::Response& out) { p.chat(in, out); });
    server.Get("/v1/rategov/stats", [&p](const httplib::Request&, httplib::Response& out) {
        out.set_content(p.stats(), "application/json");
    });

    // Replies of up to 8 MB; SO_REUSEADDR only (httplib's default adds SO_REUSEPORT, which
    // would let a second provider share a busy port and split the traffic silently).
    server.set_payload_max_length(std::size_t{8} << 20);
    server.set_socket_options([](socket_t sock) {
        int yes = 1;
        setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });
    const int port = opt.port == 0 ? server.bind_to_any_port(opt.host)
                                   : (server.bind_to_port(opt.host, opt.port) ? opt.port : -1);
    if (port <= 0) {
        std::fprintf(stderr, "local_provider: cannot listen on %s:%d\n", opt.host.c_str(),
                     opt.port);
        return 1;
    }
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sa.sa_flags = static_cast<int>(SA_RESETHAND);
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    if (!opt.port_file.empty()) { // written whole, then renamed: a reader never sees half
        const std::string tmp = opt.port_file + ".tmp";
        std::ofstream f(tmp);
        f << port << '\n';
        f.close();
        if (!f || std::rename(tmp.c_str(), opt.port_file.c_str()) != 0) {
            std::fprintf(stderr, "local_provider: cannot write the port to %s\n",
                         opt.port_file.c_str());
            return 1;
        }
    }
    std::printf("local_provider: listening on http://%s:%d/v1 (%s enforcement)\n", opt.host.c_str(),
                port, opt.sim.mode == rt::enforcement::bucket ? "bucket" : "window");
    std::fflush(stdout);

    // Stops at the first signal or after --exit-after: wakes the replies still generating,
    // then stops the server once it runs (a stop() before that is not remembered).
    std::atomic<bool> listening_done{false};
    std::thread watcher([&] {
        const auto until = std::chrono::steady_clock::now() +
                           std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                               std::chrono::duration<double>(opt.exit_after_s));
        while (!stop_requested.load() &&
               (opt.exit_after_s == 0 || std::chrono::steady_clock::now() < until))
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        p.shut_down();
        while (!server.is_running() && !listening_done.load())
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        server.stop();
    });
    server.listen_after_bind();
    listening_done.store(true);
    watcher.join();
    std::printf("%s\n", p.stats().c_str());
    return 0;
}
