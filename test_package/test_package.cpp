// Uses the installed rategov: a bucket of 10 tokens a second in virtual time.
#include <chrono>
#include <cstdio>

#include <rategov/rategov.hpp>

int main() {
    using clk = rategov::testing::manual_clock;
    const clk virtual_time;
    rategov::bucket<clk> bucket(rategov::per_second(10), virtual_time);
    for (int i = 0; i < 10; ++i) {
        if (!bucket.try_acquire()) {
            std::printf("token %d of a fresh burst of 10 was denied\n", i);
            return 1;
        }
    }
    const auto denied = bucket.try_acquire();
    if (denied || denied.ready_at != clk::time_point(std::chrono::milliseconds(100))) {
        std::printf("the 11th token was not denied until 100 ms\n");
        return 1;
    }
    virtual_time.advance(std::chrono::milliseconds(100));
    if (!bucket.try_acquire()) {
        std::printf("no token after 100 ms\n");
        return 1;
    }
    std::printf("rategov %d.%d.%d (RATEGOV_VERSION %d): test_package passed\n",
                RATEGOV_VERSION_MAJOR, RATEGOV_VERSION_MINOR, RATEGOV_VERSION_PATCH,
                RATEGOV_VERSION);
    return 0;
}
