// A process that shares a governor through a shared-memory segment with the test that starts
// it: shm_worker SEGMENT CONTROL INDEX MODE, MODE one of
//   hammer   take the unit cost as fast as it can, counting grants, until told to stop
//   reserve  reserve {500, 1500}, report it, then wait to be killed
//   change   change metric 0's limit back and forth until killed
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "shared_control.hpp"

int main(int argc, char** argv) {
    if (argc != 5) {
        std::fprintf(stderr, "usage: shm_worker SEGMENT CONTROL INDEX hammer|reserve|change\n");
        return 2;
    }
    const std::string mode = argv[4];
    const int index = std::atoi(argv[3]);
    if (index < 0 || index >= shm_test::max_workers)
        return 2;
    shm_test::control* c = shm_test::map_control(argv[2], false);
    auto seg = rategov::shm::segment::open(argv[1]);
    shm_test::gov_t gov(seg.place(shm_test::key), shm_test::shared_clock{c}, shm_test::limit0(),
                        shm_test::limit1());
    c->started[index].store(1, std::memory_order_release);
    if (mode == "hammer") {
        while (c->stop.load(std::memory_order_acquire) == 0)
            if (gov.try_acquire(shm_test::unit_cost()))
                c->granted[index].fetch_add(1, std::memory_order_relaxed);
        return 0;
    }
    if (mode == "reserve") {
        auto r = gov.reserve({rategov::amount<shm_test::m::total_prompt>{500},
                              rategov::amount<shm_test::m::generated>{1500}});
        c->granted[index].store(r ? 1 : 2, std::memory_order_release);
        for (;;)
            std::this_thread::sleep_for(std::chrono::seconds(1)); // killed holding it
    }
    if (mode == "change") {
        for (std::uint64_t i = 0;; ++i) {
            gov.set_limit<shm_test::m::total_prompt>(rategov::per_second(i % 2 == 0 ? 2000 : 1000));
            c->changes[index].fetch_add(1, std::memory_order_release);
        }
    }
    return 2;
}
