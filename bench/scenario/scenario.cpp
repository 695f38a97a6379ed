// rategov_scenario: how much of a provider's limit a client really gets, in virtual time.
//
// N virtual clients (a discrete-event loop on one thread, deterministic for a seed) send
// chat requests back to back against `testing::provider_simulator` for a virtual duration;
// one JSON object reports what the provider counted. See `--help` and the README's
// "Scenario benchmark".
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <queue>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <rategov/rategov.hpp>
#include <rategov/testing/provider_simulator.hpp>

namespace {

using namespace std::chrono_literals;
namespace rt = rategov::testing;
namespace fb = rategov::feedback;
namespace m = rategov::metric;
using clock_type = rt::manual_clock;
using time_point = clock_type::time_point;
using llm = rt::llm_metrics;
using governor_type = rategov::governor<llm, clock_type>;
constexpr std::size_t metric_count = 4;
constexpr const char* metric_names[metric_count] = {"requests", "total_prompt", "uncached_prompt",
                                                    "generated"};

// ---------------------------------------------------------------------------------------
// Random numbers: our own generator and transforms, so that a seed gives the same run on
// every standard library.

struct rng {
    explicit rng(std::uint64_t seed)
        : gen(seed) {}
    rategov::backoff::splitmix64 gen;
    std::uint64_t next() { return gen(); }
    double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; } // [0, 1)
    double normal() {                                                          // Box–Muller
        const double u1 = 1.0 - uniform(), u2 = uniform();
        return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
    }
};

/// `fixed:n`, `uniform:a,b` or `lognormal:mean,sd` (mean and sd of the tokens themselves).
struct distribution {
    enum class kind { fixed, uniform, lognormal } k = kind::fixed;
    double a = 0, b = 0;
    std::string text;

    static distribution parse(const std::string& s) {
        distribution d;
        d.text = s;
        const auto colon = s.find(':');
        const std::string name = s.substr(0, colon);
        const std::string args = colon == std::string::npos ? "" : s.substr(colon + 1);
        const auto comma = args.find(',');
        auto number = [&](const std::string& v) {
            std::size_t used = 0;
            double x = 0;
            try {
                x = std::stod(v, &used);
            } catch (...) {
                used = 0;
            }
            if (used != v.size() || !(x >= 0) || !std::isfinite(x))
                throw std::invalid_argument("bad number '" + v + "' in distribution '" + s + "'");
            return x;
        };
        if (name == "fixed" && comma == std::string::npos && !args.empty()) {
            d.k = kind::fixed;
            d.a = number(args);
        } else if ((name == "uniform" || name == "lognormal") && comma != std::string::npos) {
            d.k = name == "uniform" ? kind::uniform : kind::lognormal;
            d.a = number(args.substr(0, comma));
            d.b = number(args.substr(comma + 1));
            if (d.k == kind::uniform && d.b < d.a)
                throw std::invalid_argument("uniform:a,b needs a ≤ b, got '" + s + "'");
            if (d.k == kind::lognormal && d.a <= 0)
                throw std::invalid_argument("lognormal:mean,sd needs mean > 0, got '" + s + "'");
        } else {
            throw std::invalid_argument("distribution '" + s +
                                        "': expected fixed:n, uniform:a,b or lognormal:mean,sd");
        }
        return d;
    }
    std::uint64_t draw(rng& r, std::uint64_t lo, std::uint64_t hi) const {
        double x = a;
        if (k == kind::uniform)
            x = a + (b - a) * r.uniform();
        else if (k == kind::lognormal) {
            const double s2 = std::log(1.0 + (b * b) / (a * a));
            x = std::exp(std::log(a) - s2 / 2 + std::sqrt(s2) * r.normal());
        }
        return std::clamp(static_cast<std::uint64_t>(std::llround(x)), lo, hi);
    }
};

// ---------------------------------------------------------------------------------------
// Options

struct options {
    std::string client = "rategov";
    std::string scenario = "steady";
    unsigned clients = 64;
    double duration_s = 600;
    std::uint64_t seed = 1;
    std::string enforcement = "window";
    double burst_s = 10;
    distribution prompt = distribution::parse("lognormal:1500,1200");
    double cache_hit = 0.3;
    distribution output = distribution::parse("lognormal:150,120");
    std::uint64_t max_tokens = 512;
    std::uint64_t max_prompt = 8'192;
    std::string headers = "fireworks";
    std::string counting = "streamed";
    double priority_share = 0.0; // set by the priority scenario unless given
    bool priority_share_set = false;
    std::string csv;
    unsigned timeout_s = 120; // the rategov clients' deadline per call
    double warmup_s = -1;     // -1: min(60, duration / 5)
    bool hold = true;         // the provider holds max_tokens against the generated limit
};

[[noreturn]] void usage(int code) {
    std::fputs(
        "usage: rategov_scenario [options]\n"
        "  --client rategov|rategov-blind|naive-backoff|fixed-window|pause-on-429\n"
        "  --scenario steady|halve|double|priority|shed\n"
        "  --clients N            concurrent clients (64)\n"
        "  --duration SECONDS     virtual duration (600)\n"
        "  --seed N               (1)\n"
        "  --server-enforcement window|bucket   (window)\n"
        "  --server-burst SECONDS bucket mode: burst in seconds of each limit (10)\n"
        "  --prompt-tokens DIST   prompt size (lognormal:1500,1200); DIST is fixed:n,\n"
        "                         uniform:a,b or lognormal:mean,sd\n"
        "  --cache-hit SHARE      share of each prompt served from the cache (0.3)\n"
        "  --output-tokens DIST   generated tokens (lognormal:150,120), at most --max-tokens\n"
        "  --max-tokens N         the requests' max_tokens (512; prompts are at most 8192)\n"
        "  --counting streamed|at_completion   when generated tokens count (streamed)\n"
        "  --headers fireworks|openai|anthropic|none   what the provider sends (fireworks)\n"
        "  --priority-share SHARE share of priority requests (0; 0.1 in `priority`)\n"
        "  --timeout SECONDS      deadline of each rategov call (120)\n"
        "  --warmup SECONDS       measure after this (60, or a fifth of a shorter run)\n"
        "  --server-hold max_tokens|none   whether the provider holds max_tokens against\n"
        "                         the generated limit until generated (max_tokens)\n"
        "  --csv FILE             a time series per second for plotting\n",
        code == 0 ? stdout : stderr);
    std::exit(code);
}

options parse(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--help" || a == "-h")
            usage(0);
        if (i + 1 >= argc) {
            std::fprintf(stderr, "rategov_scenario: %s needs a value\n", a.c_str());
            usage(2);
        }
        const std::string v = argv[++i];
        auto num = [&](double lo, double hi) {
            std::size_t used = 0;
            double x = 0;
            try {
                x = std::stod(v, &used);
            } catch (...) {
                used = 0;
            }
            if (used != v.size() || !(x >= lo && x <= hi)) {
                std::fprintf(stderr, "rategov_scenario: %s %s: expected a number in [%g, %g]\n",
                             a.c_str(), v.c_str(), lo, hi);
                std::exit(2);
            }
            return x;
        };
        auto whole = [&](double lo, double hi) { // an integer in [lo, hi]
            const double x = num(lo, hi);
            if (x != std::floor(x)) {
                std::fprintf(stderr, "rategov_scenario: %s %s: expected a whole number\n",
                             a.c_str(), v.c_str());
                std::exit(2);
            }
            return x;
        };
        auto one_of = [&](std::initializer_list<const char*> names) {
            for (const char* n : names)
                if (v == n)
                    return v;
            std::fprintf(stderr, "rategov_scenario: %s %s: not one of", a.c_str(), v.c_str());
            for (const char* n : names)
                std::fprintf(stderr, " %s", n);
            std::fputc('\n', stderr);
            std::exit(2);
        };
        try {
            if (a == "--client")
                o.client = one_of(
                    {"rategov", "rategov-blind", "naive-backoff", "fixed-window", "pause-on-429"});
            else if (a == "--scenario")
                o.scenario = one_of({"steady", "halve", "double", "priority", "shed"});
            else if (a == "--clients")
                o.clients = static_cast<unsigned>(whole(1, 100'000));
            else if (a == "--duration")
                o.duration_s = num(1, 86'400);
            else if (a == "--seed")
                o.seed = static_cast<std::uint64_t>(whole(0, 9e15));
            else if (a == "--server-enforcement")
                o.enforcement = one_of({"window", "bucket"});
            else if (a == "--server-burst")
                o.burst_s = num(0.001, 86'400);
            else if (a == "--prompt-tokens")
                o.prompt = distribution::parse(v);
            else if (a == "--cache-hit")
                o.cache_hit = num(0, 1);
            else if (a == "--output-tokens")
                o.output = distribution::parse(v);
            else if (a == "--max-tokens")
                o.max_tokens = static_cast<std::uint64_t>(whole(1, 1e7));
            else if (a == "--counting")
                o.counting = one_of({"streamed", "at_completion"});
            else if (a == "--headers")
                o.headers = one_of({"fireworks", "openai", "anthropic", "none"});
            else if (a == "--priority-share") {
                o.priority_share = num(0, 1);
                o.priority_share_set = true;
            } else if (a == "--warmup")
                o.warmup_s = num(0, 86'400);
            else if (a == "--server-hold")
                o.hold = one_of({"max_tokens", "none"}) == "max_tokens";
            else if (a == "--timeout")
                o.timeout_s = static_cast<unsigned>(whole(1, 86'400));
            else if (a == "--csv")
                o.csv = v;
            else {
                std::fprintf(stderr, "rategov_scenario: unknown option %s\n", a.c_str());
                usage(2);
            }
        } catch (const std::invalid_argument& e) {
            std::fprintf(stderr, "rategov_scenario: %s: %s\n", a.c_str(), e.what());
            std::exit(2);
        }
    }
    if (o.scenario == "priority" && !o.priority_share_set)
        o.priority_share = 0.1;
    if (o.warmup_s < 0)
        o.warmup_s = std::floor(std::min(60.0, o.duration_s / 5));
    if (o.warmup_s >= o.duration_s) {
        std::fprintf(stderr, "rategov_scenario: --warmup %g must be shorter than --duration %g\n",
                     o.warmup_s, o.duration_s);
        std::exit(2);
    }
    return o;
}

// ---------------------------------------------------------------------------------------
// The world: clock, provider, event queue, measurements.

struct request_spec {
    rt::llm_request req;
    std::uint64_t id;
};

struct world;

/// One virtual client: woken at the times it asks for.
class client {
public:
    virtual ~client() = default;
    /// Called at its wake-up time; returns the next wake-up time.
    virtual time_point wake(world& w) = 0;
};

struct world {
    options opt;
    clock_type clock;
    rt::provider_simulator<clock_type> sim;
    time_point start;
    time_point end;
    time_point measured_from; // after the warm-up
    rng requests_rng;
    std::uint64_t next_request = 0;

    // Measurements.
    std::vector<double> wait_regular_ms, wait_priority_ms;
    std::uint64_t calls_ok = 0, calls_failed = 0;
    std::uint64_t useful_tokens = 0;
    // Per second: offered (attempted) tokens of each metric.
    std::vector<std::array<std::uint64_t, metric_count>> offered;

    world(const options& o, rt::simulator_config cfg)
        : opt(o)
        , sim(clock, std::move(cfg))
        , start(clock.now())
        , end(start + std::chrono::duration_cast<clock_type::duration>(
                          std::chrono::duration<double>(o.duration_s)))
        , measured_from(start + std::chrono::duration_cast<clock_type::duration>(
                                    std::chrono::duration<double>(o.warmup_s)))
        , requests_rng{o.seed * 0x9E3779B97F4A7C15ULL + 1} {
        offered.resize(static_cast<std::size_t>(std::ceil(o.duration_s)) + 1);
    }

    /// The next request of the run's demand (one stream for all clients: deterministic).
    request_spec next() {
        request_spec s;
        s.req.prompt_tokens = opt.prompt.draw(requests_rng, 1, opt.max_prompt);
        s.req.max_tokens = opt.max_tokens;
        s.req.output_tokens = opt.output.draw(requests_rng, 1, opt.max_tokens);
        s.req.priority = opt.priority_share > 0 && requests_rng.uniform() < opt.priority_share;
        s.id = ++next_request;
        return s;
    }

    /// Sends one attempt now (recording what it offers).
    rt::provider_simulator<clock_type>::ticket send(const rt::llm_request& r) {
        const auto now = clock.now();
        const std::size_t sec = static_cast<std::size_t>((now - start) / 1s);
        if (sec < offered.size()) {
            auto& o = offered[sec];
            o[0] += 1;
            o[1] += r.prompt_tokens;
            o[2] += r.prompt_tokens - static_cast<std::uint64_t>(std::floor(
                                          static_cast<double>(r.prompt_tokens) * opt.cache_hit));
            o[3] += r.output_tokens;
        }
        return sim.submit(r);
    }

    void finished(const request_spec& s, bool ok, time_point issued, time_point sent,
                  const rt::llm_response* r) {
        if (issued < measured_from)
            return; // issued during the warm-up
        if (!ok) {
            ++calls_failed;
            return;
        }
        ++calls_ok;
        const double ms = std::chrono::duration<double, std::milli>(sent - issued).count();
        (s.req.priority ? wait_priority_ms : wait_regular_ms).push_back(ms);
        if (r != nullptr && r->usage)
            useful_tokens += r->usage->get<m::total_prompt>() + r->usage->get<m::generated>();
    }
};

// ---------------------------------------------------------------------------------------
// Clients

/// A profile that reads the status and nothing else (a client blind to headers).
template <class Metrics>
struct status_only_profile {
    template <fb::header_lookup L>
    fb::response_feedback<Metrics::size> read(int status, const L&, fb::wall_time,
                                              std::string_view = {}) const noexcept {
        fb::response_feedback<Metrics::size> f;
        f.kind = fb::classify_status(status);
        return f;
    }
};

/// The seed provider's starting limits, each with a burst of ten seconds' worth: enough
/// for the requests in flight to hold their max_tokens (7 × 512 here), and no more than a
/// provider that enforces buckets may accept at once.
rategov::quota start_quota(std::uint64_t per_minute) {
    return rategov::per_minute(per_minute).with_burst(std::max<std::uint64_t>(1, per_minute / 6));
}

/// What every rategov client shares: one governor for the account and model, its adaptive
/// limits, a retry budget.
struct rategov_shared {
    governor_type gov;
    rategov::adaptive_limits<governor_type> adaptive{gov};
    rategov::backoff::retry_budget budget;

    explicit rategov_shared(const clock_type& c, const options& o)
        : gov(c, start_quota(6'000), start_quota(3'600'000), start_quota(900'000),
              start_quota(36'000)) {
        const rt::llm_limits s{};
        for (std::size_t i = 1; i < metric_count; ++i)
            adaptive.bound(i, {rategov::per_minute(s[i] / 4), start_quota(s[i]),
                               rategov::per_minute(s[i] * 20)});
        if (o.priority_share > 0)
            gov.set_priority_headroom(0.1);
    }
};

template <class Profile>
class rategov_client final : public client {
    using opts = rategov::call_options<governor_type, Profile>;

public:
    rategov_client(rategov_shared& s, std::uint64_t seed)
        : m_shared(&s)
        , m_rng{seed} {}

    time_point wake(world& w) override {
        for (;;) {
            if (!m_machine) {
                m_spec = w.next();
                opts o;
                o.adaptive = &m_shared->adaptive;
                o.budget = &m_shared->budget;
                o.seed = m_rng.next() | 1;
                // Estimates exceed the usage and the provider reports what remains: take
                // tokens only when they are there (see call_options::queue).
                o.queue = false;
                o.deadline = w.clock.now() + std::chrono::seconds(w.opt.timeout_s);
                o.priority = m_spec.req.priority ? rategov::traffic_class::priority
                                                 : rategov::traffic_class::regular;
                // Prompt tokens are known, the cached share is not (count all as uncached),
                // generated tokens at most max_tokens: reserved, then settled to the usage.
                const rategov::cost<llm> estimate{
                    rategov::amount<m::requests>{1},
                    rategov::amount<m::total_prompt>{m_spec.req.prompt_tokens},
                    rategov::amount<m::uncached_prompt>{m_spec.req.prompt_tokens},
                    rategov::amount<m::generated>{m_spec.req.max_tokens}};
                m_machine.emplace(m_shared->gov, estimate, std::move(o));
                m_issued = w.clock.now();
            }
            if (m_ticket) {
                const rt::llm_response r = w.sim.collect(*m_ticket);
                m_ticket.reset();
                m_machine->on_response(r);
                if (m_machine->done())
                    finish(w, &r);
                continue;
            }
            const auto step = m_machine->next();
            using action = typename rategov::call_machine<governor_type, opts>::action;
            if (step.what == action::wait)
                return step.until;
            if (step.what == action::done) {
                const bool sent = m_machine->result().attempts > 0;
                finish(w, nullptr);
                if (!sent) // refused at once (e.g. larger than a burst): not a busy loop
                    return w.clock.now() + 100ms;
                continue;
            }
            if (step.what != action::send) // in_flight: cannot happen here (fed at once)
                throw std::logic_error("rategov_scenario: call_machine in flight without a send");
            m_sent = w.clock.now();
            const auto t = w.send(m_spec.req);
            m_ticket = t;
            return t.ready_at;
        }
    }

private:
    void finish(world& w, const rt::llm_response* r) {
        w.finished(m_spec, m_machine->result().status == rategov::call_status::success, m_issued,
                   m_sent, r);
        m_machine.reset();
    }

    rategov_shared* m_shared;
    rng m_rng;
    std::optional<rategov::call_machine<governor_type, opts>> m_machine;
    std::optional<rt::provider_simulator<clock_type>::ticket> m_ticket;
    request_spec m_spec{};
    time_point m_issued{}, m_sent{};
};

/// Baselines share this shape: a request is sent when `may_send` allows, retried on 429/503
/// after `retry_delay`, up to `max_attempts`.
class baseline_client : public client {
public:
    explicit baseline_client(std::uint64_t seed)
        : m_rng{seed} {}

    time_point wake(world& w) override {
        for (;;) {
            const time_point now = w.clock.now();
            if (!m_active) {
                m_spec = w.next();
                m_active = true;
                m_attempt = 0;
                m_issued = now;
            }
            if (m_ticket) {
                const rt::llm_response r = w.sim.collect(*m_ticket);
                m_ticket.reset();
                if (r.status == 200) {
                    w.finished(m_spec, true, m_issued, m_sent, &r);
                    m_active = false;
                    continue;
                }
                on_failure(w, r.status);
                // Only 429 and 503 are retried (a 400 never succeeds).
                if (m_attempt >= max_attempts() || (r.status != 429 && r.status != 503)) {
                    w.finished(m_spec, false, m_issued, m_sent, nullptr);
                    m_active = false;
                    continue;
                }
                m_retry_at = now + retry_delay(w, r.status);
                continue;
            }
            if (now < m_retry_at)
                return m_retry_at;
            if (const auto until = may_send(w, m_spec.req); until > now)
                return until;
            ++m_attempt;
            m_sent = now;
            const auto t = w.send(m_spec.req);
            m_ticket = t;
            return t.ready_at;
        }
    }

protected:
    virtual unsigned max_attempts() const { return 6; }
    /// When the request may be sent (now or earlier: at once); takes its cost then.
    virtual time_point may_send(world& w, const rt::llm_request&) { return w.clock.now(); }
    virtual void on_failure(world&, int) {}
    /// tenacity's `wait_random_exponential(min=1, max=60)`, as the provider cookbooks use:
    /// after the n-th failed attempt, uniform in [1, max(1, min(60, 2^(n-1)))] seconds.
    virtual clock_type::duration retry_delay(world&, int) {
        const double hi =
            std::max(1.0, std::min(60.0, std::ldexp(1.0, static_cast<int>(m_attempt) - 1)));
        const double s = 1.0 + (hi - 1.0) * m_rng.uniform();
        return std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(s));
    }

    rng m_rng;
    unsigned m_attempt = 0;

private:
    bool m_active = false;
    request_spec m_spec{};
    std::optional<rt::provider_simulator<clock_type>::ticket> m_ticket;
    time_point m_issued{}, m_sent{}, m_retry_at{};
};

/// Fire as fast as possible; exponential backoff with jitter on 429 and 503.
class naive_client final : public baseline_client {
public:
    using baseline_client::baseline_client;
};

/// The estimate the baselines count: the prompt for both prompt metrics, max_tokens for
/// generated (all that is known before the response).
std::array<std::uint64_t, metric_count> up_front(const rt::llm_request& r) {
    return {1, r.prompt_tokens, r.prompt_tokens, r.max_tokens};
}

/// A fixed one-minute window counter per metric on estimated tokens, shared by all
/// clients, never reconciled with the real usage.
struct fixed_window_shared {
    std::int64_t window = -1;
    std::array<std::uint64_t, metric_count> used{};
};

class fixed_window_client final : public baseline_client {
public:
    fixed_window_client(fixed_window_shared& s, std::uint64_t seed)
        : baseline_client(seed)
        , m_shared(&s) {}

protected:
    time_point may_send(world& w, const rt::llm_request& r) override {
        const time_point now = w.clock.now();
        const std::int64_t win = (now - w.start) / 1min;
        if (win != m_shared->window) {
            m_shared->window = win;
            m_shared->used = {};
        }
        const auto c = up_front(r);
        const rt::llm_limits limits{};
        for (std::size_t i = 0; i < metric_count; ++i)
            if (m_shared->used[i] + c[i] > limits[i])
                return w.start + (win + 1) * 1min; // the next window
        for (std::size_t i = 0; i < metric_count; ++i)
            m_shared->used[i] += c[i];
        return now;
    }

private:
    fixed_window_shared* m_shared;
};

/// The widely copied parallel request processor: a capacity per metric that refills at the
/// limit per minute up to one minute's worth, the up-front estimate taken and never
/// refunded, and a pause of 15 s for every client after any 429.
struct pause_shared {
    std::array<double, metric_count> capacity{};
    time_point updated{};
    time_point paused_until{};
    bool started = false;
};

class pause_client final : public baseline_client {
public:
    pause_client(pause_shared& s, std::uint64_t seed)
        : baseline_client(seed)
        , m_shared(&s) {}

protected:
    unsigned max_attempts() const override { return 5; }
    time_point may_send(world& w, const rt::llm_request& r) override {
        const time_point now = w.clock.now();
        if (now < m_shared->paused_until)
            return m_shared->paused_until;
        const rt::llm_limits limits{};
        if (!m_shared->started) {
            m_shared->started = true;
            m_shared->updated = now;
            for (std::size_t i = 0; i < metric_count; ++i)
                m_shared->capacity[i] = static_cast<double>(limits[i]);
        }
        const double minutes = std::chrono::duration<double>(now - m_shared->updated).count() / 60;
        m_shared->updated = now;
        const auto c = up_front(r);
        clock_type::duration wait{0};
        for (std::size_t i = 0; i < metric_count; ++i) {
            const double l = static_cast<double>(limits[i]);
            m_shared->capacity[i] = std::min(l, m_shared->capacity[i] + l * minutes);
            const double missing = static_cast<double>(c[i]) - m_shared->capacity[i];
            if (missing > 0)
                wait = std::max(wait, std::chrono::duration_cast<clock_type::duration>(
                                          std::chrono::duration<double>(missing / l * 60)) +
                                          1ms);
        }
        if (wait > clock_type::duration{0})
            return now + wait;
        for (std::size_t i = 0; i < metric_count; ++i)
            m_shared->capacity[i] -= static_cast<double>(c[i]);
        return now;
    }
    void on_failure(world& w, int status) override {
        if (status == 429)
            m_shared->paused_until = std::max(m_shared->paused_until, w.clock.now() + 15s);
    }
    clock_type::duration retry_delay(world&, int) override { return 0s; } // queued again

private:
    pause_shared* m_shared;
};

// ---------------------------------------------------------------------------------------
// The run

struct sample {
    double t;
    rt::llm_limits limit;
    rt::llm_counters counters;
};

double percentile(std::vector<double> v, double p) {
    if (v.empty())
        return 0;
    std::sort(v.begin(), v.end());
    const auto k = static_cast<std::size_t>(std::ceil(p * static_cast<double>(v.size()))) - 1;
    return v[std::min(k, v.size() - 1)];
}

int run(const options& o) {
    rt::simulator_config cfg;
    cfg.mode = o.enforcement == "bucket" ? rt::enforcement::bucket : rt::enforcement::window;
    cfg.bucket_burst = std::chrono::duration_cast<std::chrono::nanoseconds>(
        std::chrono::duration<double>(o.burst_s));
    cfg.cache_hit = o.cache_hit;
    cfg.counting = o.counting == "streamed" ? rt::generated_counting::streamed
                                            : rt::generated_counting::at_completion;
    cfg.headers = o.headers == "fireworks"   ? rt::header_style::fireworks
                  : o.headers == "openai"    ? rt::header_style::openai
                  : o.headers == "anthropic" ? rt::header_style::anthropic
                                             : rt::header_style::none;
    cfg.seed = o.seed;
    cfg.hold_max_tokens = o.hold;
    // The account sits at its upper bound: the limits can shrink (to half) but not grow,
    // until a scenario moves the bounds.
    cfg.lower = rt::llm_limits{}.scaled(0.5);
    cfg.upper = rt::llm_limits{};
    const double mid = o.duration_s / 2;
    if (o.scenario == "shed") {
        cfg.shed_rate = 0.01;
        for (double t = 30; t < o.duration_s; t += 60) // a 10 s burst of shedding each minute
            cfg.shed_windows.push_back({std::chrono::duration_cast<std::chrono::nanoseconds>(
                                            std::chrono::duration<double>(t)),
                                        std::chrono::duration_cast<std::chrono::nanoseconds>(
                                            std::chrono::duration<double>(t + 10)),
                                        0.8});
    }
    world w(o, cfg);

    std::vector<std::unique_ptr<client>> clients;
    rategov_shared shared(w.clock, o);
    fixed_window_shared fixed;
    pause_shared paused;
    rng seeds{o.seed ^ 0xC0FFEEULL};
    for (unsigned i = 0; i < o.clients; ++i) {
        const std::uint64_t s = seeds.next();
        // rategov reads the headers the provider sends, with the matching profile.
        if (o.client == "rategov" && o.headers == "openai")
            clients.push_back(std::make_unique<rategov_client<fb::openai_profile<llm>>>(shared, s));
        else if (o.client == "rategov" && o.headers == "anthropic")
            clients.push_back(
                std::make_unique<rategov_client<fb::anthropic_profile<llm>>>(shared, s));
        else if (o.client == "rategov")
            clients.push_back(
                std::make_unique<rategov_client<fb::fireworks_profile<llm>>>(shared, s));
        else if (o.client == "rategov-blind")
            clients.push_back(
                std::make_unique<rategov_client<status_only_profile<llm>>>(shared, s));
        else if (o.client == "naive-backoff")
            clients.push_back(std::make_unique<naive_client>(s));
        else if (o.client == "fixed-window")
            clients.push_back(std::make_unique<fixed_window_client>(fixed, s));
        else
            clients.push_back(std::make_unique<pause_client>(paused, s));
    }
    // The event loop: (time, sequence, client), earliest first; ties in order of scheduling.
    struct ev {
        time_point at;
        std::uint64_t seq;
        std::size_t who;
        bool operator>(const ev& b) const { return at != b.at ? at > b.at : seq > b.seq; }
    };
    std::priority_queue<ev, std::vector<ev>, std::greater<>> q;
    std::uint64_t seq = 0;
    for (std::size_t i = 0; i < clients.size(); ++i)
        q.push({w.start, seq++, i});

    std::vector<sample> samples;
    time_point next_sample = w.start;
    bool changed = false;
    const time_point change_at = w.start + std::chrono::duration_cast<clock_type::duration>(
                                               std::chrono::duration<double>(mid));
    auto take_samples_until = [&](time_point t) {
        while (next_sample <= t && next_sample <= w.end) {
            w.clock.set(next_sample);
            samples.push_back({std::chrono::duration<double>(next_sample - w.start).count(),
                               w.sim.limits(), w.sim.counters()});
            next_sample += 1s;
        }
    };
    while (!q.empty()) {
        const ev e = q.top();
        if (e.at > w.end)
            break;
        q.pop();
        if (!changed && e.at >= change_at) {
            take_samples_until(change_at - 1ns);
            w.clock.set(change_at);
            changed = true;
            const auto [lo, hi] = w.sim.bounds();
            if (o.scenario == "halve")
                w.sim.set_bounds(lo.scaled(0.5), hi.scaled(0.5));
            else if (o.scenario == "double")
                w.sim.set_bounds(lo, hi.scaled(2.0));
        }
        take_samples_until(e.at);
        w.clock.set(e.at);
        const time_point next = clients[e.who]->wake(w);
        q.push({std::max(next, e.at), seq++, e.who});
    }
    take_samples_until(w.end);
    w.clock.set(w.end);

    // --- results ---
    // Counted from the end of the warm-up (samples are per second from the start).
    const auto first = static_cast<std::size_t>(o.warmup_s);
    const rt::llm_counters end_counters = w.sim.counters();
    const rt::llm_counters& from = samples.at(first).counters;
    rt::llm_counters c = end_counters;
    c.submitted -= from.submitted;
    c.ok -= from.ok;
    c.over_limit -= from.over_limit;
    c.shed -= from.shed;
    c.too_large -= from.too_large;
    for (std::size_t i = 0; i < metric_count; ++i)
        c.served[i] -= from.served[i];
    const double dur = o.duration_s - static_cast<double>(first);
    std::array<double, metric_count> limit_avg{}, used{}, util{};
    for (std::size_t i = 0; i < metric_count; ++i) {
        double sum = 0;
        for (std::size_t k = first; k < samples.size(); ++k)
            sum += static_cast<double>(samples[k].limit[i]);
        limit_avg[i] = sum / static_cast<double>(samples.size() - first);
        used[i] = static_cast<double>(c.served[i]) / (dur / 60);
        util[i] = limit_avg[i] > 0 ? used[i] / limit_avg[i] : 0;
    }
    std::size_t binding = 1;
    for (std::size_t i = 1; i < metric_count; ++i)
        if (util[i] > util[binding])
            binding = i;

    // Adaptation (virtual seconds from the change at mid-run), for the binding metric, over
    // a minute (the provider's own unit; it also lets a client spend its local burst):
    // `halve` — until what the client offers (sends, admitted or not) over the next minute
    // is within 105 % of the new limit; null when it offered no more than that in the minute
    // before the change (nothing to adapt to); `double` — until what the provider counts
    // over a minute first reaches 95 % of the new upper bound. Never within the run: the
    // time left, with "adapted": false.
    double adaptation = -1;
    bool adapted = false;
    if (o.scenario == "halve" || o.scenario == "double") {
        const auto k0 = static_cast<std::size_t>(std::ceil(mid));
        constexpr std::size_t span = 60;
        if (o.scenario == "halve") {
            const std::size_t last = std::min(samples.size(), w.offered.size());
            double before = 0; // offered in the minute before the change
            for (std::size_t j = k0 >= span ? k0 - span : 0; j < k0 && j < last; ++j)
                before += static_cast<double>(w.offered[j][binding]);
            const double new_limit =
                k0 < samples.size() ? static_cast<double>(samples[k0].limit[binding]) : 0;
            const bool applicable = before > new_limit * 1.05;
            for (std::size_t k = k0; applicable && k + span <= last; ++k) {
                double offered = 0;
                for (std::size_t j = k; j < k + span; ++j)
                    offered += static_cast<double>(w.offered[j][binding]);
                if (offered <= static_cast<double>(samples[k].limit[binding]) * 1.05) {
                    adaptation = static_cast<double>(k - k0);
                    adapted = true;
                    break;
                }
            }
            if (!applicable)
                adaptation = -2; // nothing to adapt to
        } else {
            const double bound = static_cast<double>(rt::llm_limits{}.scaled(2.0)[binding]) / 60;
            for (std::size_t k = k0; k + span < samples.size(); ++k) {
                const double served =
                    static_cast<double>(samples[k + span].counters.served[binding] -
                                        samples[k].counters.served[binding]);
                if (served >= span * bound * 0.95) {
                    adaptation = static_cast<double>(k - k0);
                    adapted = true;
                    break;
                }
            }
        }
        if (!adapted && adaptation != -2)
            adaptation = o.duration_s - mid;
    }

    const double reqs = static_cast<double>(c.submitted);
    auto share = [&](std::uint64_t n) { return reqs > 0 ? static_cast<double>(n) / reqs : 0.0; };
    std::vector<double> all = w.wait_regular_ms;
    all.insert(all.end(), w.wait_priority_ms.begin(), w.wait_priority_ms.end());
    std::printf(
        "{\"client\": \"%s\", \"scenario\": \"%s\", \"seed\": %llu, \"duration_s\": %g, "
        "\"warmup_s\": %g, "
        "\"enforcement\": \"%s\", \"server_hold\": \"%s\", \"headers\": \"%s\", \"clients\": %u, "
        "\"requests\": %llu, \"ok\": %llu, \"calls_failed\": %llu, "
        "\"share_429\": %.6f, \"share_503\": %.6f, \"metrics\": {",
        o.client.c_str(), o.scenario.c_str(), static_cast<unsigned long long>(o.seed), o.duration_s,
        static_cast<double>(first), o.enforcement.c_str(), o.hold ? "max_tokens" : "none",
        o.headers.c_str(), o.clients, static_cast<unsigned long long>(c.submitted),
        static_cast<unsigned long long>(c.ok), static_cast<unsigned long long>(w.calls_failed),
        share(c.over_limit), share(c.shed));
    for (std::size_t i = 0; i < metric_count; ++i)
        std::printf("%s\"%s\": {\"limit_avg\": %.1f, \"used\": %.1f, \"utilization\": %.4f}",
                    i == 0 ? "" : ", ", metric_names[i], limit_avg[i], used[i], util[i]);
    std::printf("}, \"binding_metric\": \"%s\", \"binding_utilization\": %.4f, "
                "\"useful_tokens_per_s\": %.1f, \"wait_p50_ms\": %.1f, \"wait_p99_ms\": %.1f, "
                "\"priority_wait_p99_ms\": %.1f, \"regular_wait_p99_ms\": %.1f, "
                "\"adaptation_s\": %s, \"adapted\": %s}\n",
                metric_names[binding], util[binding], static_cast<double>(w.useful_tokens) / dur,
                percentile(all, 0.5), percentile(all, 0.99), percentile(w.wait_priority_ms, 0.99),
                percentile(w.wait_regular_ms, 0.99),
                adaptation < 0 ? "null" : std::to_string(adaptation).c_str(),
                adaptation < 0 ? "null"
                : adapted      ? "true"
                               : "false");

    if (!o.csv.empty()) {
        std::ofstream f(o.csv);
        if (!f) {
            std::fprintf(stderr, "rategov_scenario: cannot write %s\n", o.csv.c_str());
            return 1;
        }
        f << "t";
        for (const char* n : metric_names)
            f << ',' << n << "_limit," << n << "_used";
        f << ",ok,over_limit,shed\n";
        for (std::size_t k = 1; k < samples.size(); ++k) {
            const sample& s = samples[k];
            const sample& p = samples[k - 1];
            f << s.t;
            for (std::size_t i = 0; i < metric_count; ++i) // per minute, as the limits
                f << ',' << s.limit[i] << ',' << (s.counters.served[i] - p.counters.served[i]) * 60;
            f << ',' << s.counters.ok - p.counters.ok << ','
              << s.counters.over_limit - p.counters.over_limit << ','
              << s.counters.shed - p.counters.shed << '\n';
        }
    }
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    try {
        return run(parse(argc, argv));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "rategov_scenario: %s\n", e.what());
        return 1;
    }
}
