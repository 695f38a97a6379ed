// A key type without a hash is named as such, with the two ways to give one.
#include <cstddef>
#include <functional>

#include <rategov/keyed/keyed.hpp>

namespace m = rategov::metric;
using gov_t = rategov::governor<rategov::metrics<m::generated>>;

struct model_id {
    int account;
    int model;
    friend bool operator==(const model_id&, const model_id&) = default;
};
struct model_id_hash {
    std::size_t operator()(const model_id& k) const noexcept {
        return std::hash<int>{}(k.account * 31 + k.model);
    }
};

int main() {
#ifdef RATEGOV_COMPILE_FAIL
    using registry = rategov::keyed<model_id, gov_t>;
#else
    using registry = rategov::keyed<model_id, gov_t, rategov::steady_clock, model_id_hash>;
#endif
    registry r({.max_keys = 4}, [](const model_id&) { return gov_t(rategov::per_minute(60)); });
    return r.get({1, 2}) ? 0 : 1;
}
