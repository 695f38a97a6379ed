// The OpenAI-compatible wire format shared by the local provider and the libcurl clients:
// the request body, the stand-in tokenizer, and the `usage` object read back into a cost.
// Not part of the library: rategov never looks inside requests or bodies.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include <rategov/rategov.hpp>

namespace chat {

namespace m = rategov::metric;
/// What the seed provider limits, per account and model.
using llm = rategov::metrics<m::requests, m::total_prompt, m::uncached_prompt, m::generated>;

/// A stand-in tokenizer: one token per 4 bytes of text, rounded up. The local provider
/// counts with it, so the clients' estimates are exact there; against a real provider an
/// estimate is only close, and each call is settled with the `usage` the provider reports.
[[nodiscard]] inline std::uint64_t count_tokens(std::string_view text) noexcept {
    return (text.size() + 3) / 4;
}

/// A chat completion request as the clients build it.
struct request {
    std::string model;
    std::string prompt; ///< one user message
    std::uint64_t max_tokens = 256;
    bool priority = false; ///< `service_tier: "priority"`

    /// The tokens the prompt counts (by the stand-in tokenizer).
    [[nodiscard]] std::uint64_t prompt_tokens() const noexcept { return count_tokens(prompt); }

    /// The JSON body of `POST /v1/chat/completions`.
    [[nodiscard]] std::string body() const {
        nlohmann::json j = {{"model", model},
                            {"messages", {{{"role", "user"}, {"content", prompt}}}},
                            {"max_tokens", max_tokens}};
        if (priority)
            j["service_tier"] = "priority";
        return j.dump();
    }

    /// The cost to reserve before sending: one request; the prompt, all of it counted as
    /// uncached (the cache hit is not known before); at most `max_tokens` generated.
    [[nodiscard]] rategov::cost<llm> estimate() const noexcept {
        const std::uint64_t p = prompt_tokens();
        return {rategov::amount<m::requests>{1}, rategov::amount<m::total_prompt>{p},
                rategov::amount<m::uncached_prompt>{p}, rategov::amount<m::generated>{max_tokens}};
    }
};

/// The cost a response body's `usage` reports, or `nullopt` when the body has none (an
/// error, or a body that is not JSON). `usage.prompt_tokens_details.cached_tokens` is the
/// cached share of the prompt (0 when absent). What the body says is trusted only within
/// reason: generated tokens are at most `max_tokens` (a provider cannot generate more), and
/// prompt tokens at most four times the estimate plus 4096 (room for a tokenizer unlike
/// ours and a chat template) — a hostile or broken body must not charge the governor into
/// a debt it would wait out for the rest of the run.
[[nodiscard]] inline std::optional<rategov::cost<llm>>
usage_of(std::string_view body, std::uint64_t prompt_estimate, std::uint64_t max_tokens) {
    const nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || !j.contains("usage") || !j["usage"].is_object())
        return std::nullopt;
    const nlohmann::json& u = j["usage"];
    auto count = [](const nlohmann::json& v) -> std::optional<std::uint64_t> {
        if (v.is_number_unsigned())
            return v.get<std::uint64_t>();
        return std::nullopt;
    };
    const auto prompt = u.contains("prompt_tokens") ? count(u["prompt_tokens"]) : std::nullopt;
    const auto completion =
        u.contains("completion_tokens") ? count(u["completion_tokens"]) : std::nullopt;
    if (!prompt || !completion)
        return std::nullopt;
    std::uint64_t cached = 0;
    if (u.contains("prompt_tokens_details") && u["prompt_tokens_details"].is_object() &&
        u["prompt_tokens_details"].contains("cached_tokens"))
        cached = count(u["prompt_tokens_details"]["cached_tokens"]).value_or(0);
    const std::uint64_t prompt_tokens = std::min<std::uint64_t>(
        *prompt, std::min<std::uint64_t>(prompt_estimate, std::uint64_t{1} << 32) * 4 + 4096);
    cached = std::min(cached, prompt_tokens);
    return rategov::cost<llm>{rategov::amount<m::requests>{1},
                              rategov::amount<m::total_prompt>{prompt_tokens},
                              rategov::amount<m::uncached_prompt>{prompt_tokens - cached},
                              rategov::amount<m::generated>{std::min(*completion, max_tokens)}};
}

/// The account name the local provider files a bearer token under: `"anonymous"` without
/// one, else `"key-"` and a 64-bit FNV-1a hash of it in hex — so that its statistics never
/// publish a key, and any bytes make a valid name.
[[nodiscard]] inline std::string account_id(std::string_view api_key) {
    if (api_key.empty())
        return "anonymous";
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (const char c : api_key)
        h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
    char buf[24];
    std::snprintf(buf, sizeof buf, "key-%016llx", static_cast<unsigned long long>(h));
    return buf;
}

/// The value `text` of command-line flag `flag` as a number in [lo, hi] (a whole one when
/// `whole`). \throws std::invalid_argument naming the flag and the range otherwise.
inline double parse_number(const std::string& flag, const std::string& text, double lo, double hi,
                           bool whole = false) {
    std::size_t used = 0;
    double x = -1;
    try {
        x = std::stod(text, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    if (used != text.size() || !(x >= lo && x <= hi) || (whole && x != std::floor(x))) {
        char range[64];
        std::snprintf(range, sizeof range, "[%g, %g]", lo, hi);
        throw std::invalid_argument(flag + " " + text + ": expected a " + (whole ? "whole " : "") +
                                    "number in " + range);
    }
    return x;
}

/// Parses `R,T,U,G` — per-minute limits on requests, total prompt, uncached prompt and
/// generated tokens — into `out`: four whole numbers in [1, 4·10^9].
/// \throws std::invalid_argument naming the text otherwise.
inline void parse_limits(const std::string& text, std::uint64_t (&out)[4]) {
    std::size_t pos = 0;
    for (std::size_t i = 0; i < 4; ++i) {
        const std::size_t end = i < 3 ? text.find(',', pos) : text.size();
        const std::string part =
            end == std::string::npos ? std::string() : text.substr(pos, end - pos);
        const bool digits = !part.empty() && part.size() <= 10 &&
                            part.find_first_not_of("0123456789") == std::string::npos;
        const std::uint64_t x = digits ? std::stoull(part) : 0;
        if (x == 0 || x > 4'000'000'000)
            throw std::invalid_argument("--limits: expected R,T,U,G, four whole numbers in "
                                        "[1, 4000000000] per minute, got '" +
                                        text + "'");
        out[i] = x;
        pos = end + 1;
    }
}

/// The `error.code` of an error body (`""` when there is none).
[[nodiscard]] inline std::string error_code_of(std::string_view body) {
    const nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_object() && j.contains("error") && j["error"].is_object() &&
        j["error"].contains("code") && j["error"]["code"].is_string())
        return j["error"]["code"].get<std::string>();
    return {};
}

} // namespace chat
