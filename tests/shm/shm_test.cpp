// Governors whose state lives in a shared-memory segment: one set of limits for several
// governor objects and several processes; the segment's checks; processes killed in the
// middle of an operation.
#include <chrono>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <spawn.h>
#include <string>
#include <sys/mman.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <gtest/gtest.h>

#include "../stress/run_threads.hpp"
#include "shared_control.hpp"

extern char** environ;

namespace {

using namespace std::chrono_literals;
using namespace shm_test;
namespace shm = rategov::shm;

class shm_segment : public ::testing::Test {
protected:
    void SetUp() override {
        static int counter = 0;
        const std::string tag = std::to_string(::getpid()) + "-" + std::to_string(++counter);
        name = "/rategov-test-" + tag;
        control_name = "/rategov-test-control-" + tag;
        shm::segment::remove(name);
        block = map_control(control_name, true);
        block->now_ns.store(1'000'000'000); // 1 s: a clock that does not start at 0
    }
    void TearDown() override {
        for (pid_t p : children) {
            ::kill(p, SIGKILL);
            ::waitpid(p, nullptr, 0);
        }
        shm::segment::remove(name);
        ::munmap(block, sizeof(control));
        ::shm_unlink(control_name.c_str());
    }

    pid_t spawn(int index, const char* mode) {
        const std::string i = std::to_string(index);
        const char* argv[] = {RATEGOV_SHM_WORKER, name.c_str(), control_name.c_str(),
                              i.c_str(),          mode,         nullptr};
        pid_t pid = 0;
        const int rc = ::posix_spawn(&pid, RATEGOV_SHM_WORKER, nullptr, nullptr,
                                     const_cast<char* const*>(argv), environ);
        EXPECT_EQ(rc, 0) << std::strerror(rc);
        children.push_back(pid);
        return pid;
    }
    void wait_started(int index) {
        const auto give_up = std::chrono::steady_clock::now() + 60s;
        while (block->started[index].load() == 0) {
            ASSERT_LT(std::chrono::steady_clock::now(), give_up) << "worker " << index;
            std::this_thread::sleep_for(1ms);
        }
    }
    static int exit_code(pid_t p) {
        int status = 0;
        ::waitpid(p, &status, 0);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
    }
    void forget(pid_t p) { std::erase(children, p); }
    void advance(std::chrono::nanoseconds d) { block->now_ns.fetch_add(d.count()); }

    std::string name, control_name;
    control* block = nullptr;
    std::vector<pid_t> children;
};

// --- one process -------------------------------------------------------------------------------

TEST_F(shm_segment, creates_then_attaches) {
    auto a = shm::segment::open(name, {.capacity = 16});
    EXPECT_TRUE(a.created());
    EXPECT_EQ(a.capacity(), 16u);
    auto b = shm::segment::open(name, {.capacity = 999}); // the creator's options hold
    EXPECT_FALSE(b.created());
    EXPECT_EQ(b.capacity(), 16u);
    EXPECT_EQ(b.name(), name);
}

TEST_F(shm_segment, governors_on_one_key_share_their_limits) {
    auto seg = shm::segment::open(name);
    gov_t g1(seg.place(key), shared_clock{block}, limit0(), limit1());
    // Limits given by a later governor are ignored: the state exists.
    gov_t g2(seg.place(key), shared_clock{block}, rategov::per_second(5), rategov::per_second(5));
    EXPECT_EQ(seg.keys(), 1u);
    EXPECT_EQ(g2.limit(0), limit0());
    ASSERT_TRUE(g1.try_acquire({rategov::amount<m::total_prompt>{100}}));
    EXPECT_EQ(g2.available(0), 900u);
    g2.set_limit<m::generated>(rategov::per_second(6000));
    EXPECT_EQ(g1.limit<m::generated>(), rategov::per_second(6000));
    g1.set_priority_headroom(0.5);
    EXPECT_EQ(g2.priority_headroom(1), 0.5);
    // A reservation through one governor, settled through its own: seen by the other.
    {
        auto r = g2.reserve({rategov::amount<m::total_prompt>{300}});
        ASSERT_TRUE(r);
        EXPECT_EQ(g1.available(0), 600u);
        r.commit({rategov::amount<m::total_prompt>{100}});
    }
    EXPECT_EQ(g1.available(0), 800u);
    // Another key is another governor.
    gov_t other(seg.place("acct-1/model-b"), shared_clock{block}, limit0(), limit1());
    EXPECT_EQ(other.available(0), 1000u);
    EXPECT_EQ(seg.keys(), 2u);
    // Time is the segment's: a governor made later reads the same ticks.
    advance(100ms);
    gov_t late(seg.place(key), shared_clock{block}, limit0(), limit1());
    EXPECT_EQ(late.available(0), g1.available(0));
    EXPECT_EQ(late.available(0), 900u);
}

// Two registries (as two processes would have) whose factories attach their keys in one
// segment: the same model key is one set of limits, another key another.
TEST_F(shm_segment, keyed_registries_share_limits_through_the_segment) {
    auto seg = shm::segment::open(name);
    using limits = rategov::keyed_limits<gov_t>;
    const auto factory = [&](const rategov::model_key& k) {
        return limits(seg.place(k), shared_clock{block}, limit0(), limit1());
    };
    using registry = rategov::keyed<rategov::model_key, limits, shared_clock>;
    registry r1(shared_clock{block}, {}, factory);
    registry r2(shared_clock{block}, {}, factory);
    const rategov::model_key a{"acct", "m"}, a_turbo{"acct", "m", "turbo"}, b{"acct-m", ""};
    auto h1 = r1.get(a);
    auto h2 = r2.get(a);
    ASSERT_TRUE(h1 && h2);
    ASSERT_TRUE(h1->governor.try_acquire({rategov::amount<m::total_prompt>{250}}));
    EXPECT_EQ(h2->governor.available(0), 750u);
    EXPECT_EQ(r2.get(a_turbo)->governor.available(0), 1000u);
    EXPECT_EQ(r2.get(b)->governor.available(0), 1000u); // "acct"+"m" is not "acct-m"+""
    EXPECT_EQ(seg.keys(), 3u);
}

TEST_F(shm_segment, a_second_mapping_sees_the_same_state) {
    auto seg1 = shm::segment::open(name);
    auto seg2 = shm::segment::open(name);
    gov_t g1(seg1.place(key), shared_clock{block}, limit0(), limit1());
    gov_t g2(seg2.place(key), shared_clock{block}, limit0(), limit1());
    ASSERT_TRUE(g1.try_acquire(unit_cost()));
    EXPECT_EQ(g2.available(1), 2397u);
}

TEST_F(shm_segment, refuses_bad_input_with_a_named_error) {
    const auto fails_with = [](auto&& f, const char* text) {
        try {
            f();
            ADD_FAILURE() << "no config_error; expected one naming: " << text;
        } catch (const rategov::config_error& e) {
            EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
        }
    };
    fails_with([] { (void)shm::segment::open("no-slash"); }, "a segment's name");
    fails_with([] { (void)shm::segment::open("/a/b"); }, "a segment's name");
    fails_with([&] { (void)shm::segment::open(name, {.capacity = 0}); }, "capacity 0");
    fails_with([&] { (void)shm::segment::open(name, {.state_bytes = 10}); }, "state_bytes 10");
    auto seg = shm::segment::open(name, {.capacity = 8, .state_bytes = 4096});
    fails_with([&] { gov_t g(seg.place(""), shared_clock{block}, limit0(), limit1()); },
               "key of 0 bytes");
    fails_with(
        [&] { gov_t g(seg.place(std::string(201, 'k')), shared_clock{block}, limit0(), limit1()); },
        "key of 201 bytes");
    fails_with(
        [&] {
            gov_t g(shm::store::place{nullptr, "k"}, shared_clock{block}, limit0(), limit1());
        },
        "no segment");
    gov_t g(seg.place("a"), shared_clock{block}, limit0(), limit1());
    // The same key as a governor over other metrics.
    using one = rategov::shm::governor<rategov::metrics<m::requests>, shared_clock>;
    fails_with([&] { one o(seg.place("a"), shared_clock{block}, rategov::per_second(1)); },
               "another type");
    // ... and over the same number of other metrics.
    using other = rategov::shm::governor<rategov::metrics<m::requests, m::generated>, shared_clock>;
    fails_with([&] { other o(seg.place("a"), shared_clock{block}, limit0(), limit1()); },
               "another type");
    // state_bytes runs out after a few states: a named error, and no key is left half made.
    std::size_t made = 1;
    try {
        for (; made < 8; ++made)
            gov_t h(seg.place("k" + std::to_string(made)), shared_clock{block}, limit0(), limit1());
        ADD_FAILURE() << "4096 bytes held " << made << " states";
    } catch (const rategov::config_error& e) {
        EXPECT_NE(std::string(e.what()).find("state_bytes exhausted"), std::string::npos)
            << e.what();
    }
    EXPECT_EQ(seg.keys(), made);
}

TEST_F(shm_segment, a_full_table_is_an_error_naming_the_capacity) {
    auto seg = shm::segment::open(name, {.capacity = 2});
    gov_t a(seg.place("a"), shared_clock{block}, limit0(), limit1());
    gov_t b(seg.place("b"), shared_clock{block}, limit0(), limit1());
    EXPECT_THROW(
        {
            try {
                gov_t c(seg.place("c"), shared_clock{block}, limit0(), limit1());
            } catch (const rategov::config_error& e) {
                EXPECT_NE(std::string(e.what()).find("all 2 keys in use"), std::string::npos);
                throw;
            }
        },
        rategov::config_error);
    gov_t again(seg.place("b"), shared_clock{block}, limit0(), limit1()); // existing keys work
}

// The header of a segment made by another layout, another program or damaged.
TEST_F(shm_segment, a_mismatched_layout_is_refused_not_misread) {
    { auto seg = shm::segment::open(name); }
    const int fd = ::shm_open(name.c_str(), O_RDWR, 0);
    ASSERT_GE(fd, 0);
    void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ASSERT_NE(p, MAP_FAILED);
    auto* h = static_cast<shm::detail::header*>(p);
    const auto expect_refusal = [&](const char* text) {
        try {
            (void)shm::segment::open(name);
            ADD_FAILURE() << "opened; expected: " << text;
        } catch (const rategov::config_error& e) {
            EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
        }
    };
    h->layout = shm::detail::layout_version + 1;
    expect_refusal("layout version");
    h->layout = shm::detail::layout_version;
    h->fingerprint ^= 1;
    expect_refusal("other type sizes");
    h->fingerprint ^= 1;
    h->bytes += 4096;
    expect_refusal("damaged");
    h->bytes -= 4096;
    h->magic.store(42);
    expect_refusal("not a rategov segment");
    h->magic.store(shm::detail::segment_magic);
    EXPECT_NO_THROW((void)shm::segment::open(name));
    // Truncated by someone else: the size no longer matches the header.
    ASSERT_EQ(::ftruncate(fd, 8192), 0);
    expect_refusal("damaged");
    ::munmap(p, 4096);
    ::close(fd);
}

// Threads of one process, each with its own governor object on one key of one mapping:
// the in-process conservation check, through the segment (run under TSan and ASan).
TEST_F(shm_segment, threads_on_one_key_never_exceed_the_limit) {
    auto seg = shm::segment::open(name);
    constexpr unsigned threads = 4;
    std::vector<std::unique_ptr<gov_t>> govs;
    for (unsigned i = 0; i < threads; ++i)
        govs.push_back(
            std::make_unique<gov_t>(seg.place(key), shared_clock{block}, limit0(), limit1()));
    std::atomic<std::uint64_t> granted{0};
    std::atomic<bool> done{false};
    std::thread ticker([&] {
        // Time moves once the burst is spent: a full bucket would drop what accrued.
        while (granted.load() < 800)
            std::this_thread::yield();
        for (int i = 0; i < 500; ++i) {
            advance(1ms);
            std::this_thread::yield();
        }
        done = true;
    });
    stress::run_threads(threads, [&](unsigned t) {
        while (!done.load())
            if (govs[t]->try_acquire(unit_cost()))
                granted.fetch_add(1);
    });
    ticker.join();
    // Drain what is left at the final time, alone.
    while (govs[0]->try_acquire(unit_cost()))
        granted.fetch_add(1);
    EXPECT_EQ(granted.load(), 800u + 500u); // burst of metric 1 / 3, then 1 per ms
}

// --- several processes -------------------------------------------------------------------------

// Four worker processes hammer one key while the test advances virtual time; one is killed
// with SIGKILL in the middle. Afterwards every grant is accounted for: the total is the
// limit's exactly, less at most the one grant the killed worker could not count.
TEST_F(shm_segment, processes_share_the_limit_exactly_and_survive_a_kill) {
    auto seg = shm::segment::open(name);
    gov_t gov(seg.place(key), shared_clock{block}, limit0(), limit1());
    constexpr int workers = 4;
    std::vector<pid_t> pids;
    for (int i = 0; i < workers; ++i)
        pids.push_back(spawn(i, "hammer"));
    for (int i = 0; i < workers; ++i)
        wait_started(i);
    const auto counted = [&] {
        std::uint64_t n = 0;
        for (int i = 0; i < workers; ++i)
            n += block->granted[i].load();
        return n;
    };
    const auto give_up = std::chrono::steady_clock::now() + 60s;
    while (counted() < 800) // the burst first: a full bucket would drop what accrues
        ASSERT_LT(std::chrono::steady_clock::now(), give_up);
    constexpr int steps = 1000;
    for (int step = 1; step <= steps; ++step) {
        advance(1ms);
        std::this_thread::sleep_for(100us); // let the workers take what accrued
        ASSERT_LE(counted(), 800u + static_cast<std::uint64_t>(step)) << "over the limit";
        if (step == steps / 2) {
            ASSERT_EQ(::kill(pids[1], SIGKILL), 0);
            EXPECT_EQ(exit_code(pids[1]), -SIGKILL);
            forget(pids[1]);
        }
    }
    block->stop.store(1);
    for (int i = 0; i < workers; ++i)
        if (i != 1) {
            EXPECT_EQ(exit_code(pids[static_cast<std::size_t>(i)]), 0);
            forget(pids[static_cast<std::size_t>(i)]);
        }
    std::uint64_t total = counted();
    while (gov.try_acquire(unit_cost())) // what no worker took in time
        ++total;
    const std::uint64_t limit = 800u + steps;
    EXPECT_LE(total, limit);
    EXPECT_GE(total, limit - 1); // the killed worker may have died before counting one
    EXPECT_GT(block->granted[0].load(), 0u);
    EXPECT_GT(block->granted[2].load(), 0u);
}

// A process killed while it holds a reservation leaks only that reservation, and time gives
// it back.
TEST_F(shm_segment, a_killed_holder_of_a_reservation_leaks_only_it_until_time_restores_it) {
    auto seg = shm::segment::open(name);
    gov_t gov(seg.place(key), shared_clock{block}, limit0(), limit1());
    const pid_t p = spawn(0, "reserve");
    const auto give_up = std::chrono::steady_clock::now() + 60s;
    while (block->granted[0].load() == 0)
        ASSERT_LT(std::chrono::steady_clock::now(), give_up);
    ASSERT_EQ(block->granted[0].load(), 1u); // granted
    ASSERT_EQ(::kill(p, SIGKILL), 0);
    EXPECT_EQ(exit_code(p), -SIGKILL);
    forget(p);
    EXPECT_EQ(gov.available(0), 500u);
    EXPECT_EQ(gov.available(1), 900u);
    advance(499ms);
    EXPECT_EQ(gov.available(1), 2397u);
    advance(1ms);
    EXPECT_EQ(gov.available(0), 1000u);
    EXPECT_EQ(gov.available(1), 2400u); // full again: nothing more was lost
}

// A process killed while it changes a limit holds the right to change; the next change finds
// it dead and goes on. Repeated, so that some kills land inside a change.
TEST_F(shm_segment, a_change_survives_a_process_killed_while_changing) {
    auto seg = shm::segment::open(name);
    gov_t gov(seg.place(key), shared_clock{block}, limit0(), limit1());
    for (int round = 0; round < 24; ++round) {
        block->changes[0].store(0);
        block->started[0].store(0);
        const pid_t p = spawn(0, "change");
        wait_started(0);
        const auto give_up = std::chrono::steady_clock::now() + 60s;
        while (block->changes[0].load() < 50 + static_cast<unsigned>(round) * 37)
            ASSERT_LT(std::chrono::steady_clock::now(), give_up);
        ASSERT_EQ(::kill(p, SIGKILL), 0);
        EXPECT_EQ(exit_code(p), -SIGKILL);
        forget(p);
        // Would wait for ever for a dead owner; must return and take effect.
        const auto q = rategov::per_second(static_cast<std::uint64_t>(3000 + round));
        gov.set_limit<m::total_prompt>(q, rategov::inheritance::reset);
        EXPECT_EQ(gov.limit<m::total_prompt>(), q);
        EXPECT_EQ(gov.available(0), 3000u + static_cast<unsigned>(round));
        ASSERT_TRUE(gov.try_acquire({rategov::amount<m::total_prompt>{7}}));
        EXPECT_EQ(gov.available(0), 2993u + static_cast<unsigned>(round));
    }
}

} // namespace
