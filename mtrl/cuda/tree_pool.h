// A small thread pool for "for each tree" loops that stays fast when the CPU is shared.
//
// OpenMP (at::parallel_for) splits the trees statically and ends with a barrier: when another
// process holds the second core, the barrier waits for a whole scheduler time slice (measured:
// a 12 ms search became 300 ms). Here the calling thread claims chunks from an atomic counter
// like the helpers do, so it finishes every chunk nobody else took and only waits for chunks a
// running helper is already working on.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace mtrl {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::this_thread::yield();
#endif
}

// How long an idle helper polls before sleeping: covers the model call between two loops of
// a simulation with a cheap model, and is short next to a real model's step.
constexpr std::chrono::microseconds kSpin{50};

class TreePool {
 public:
  using Body = std::function<void(int64_t begin, int64_t end)>;

  // One pool per process, sized once; never destroyed (its threads may outlive static
  // destructors at exit, and they only ever sleep on the condition variable then).
  static TreePool& instance(int num_threads) {
    static TreePool* pool = new TreePool(num_threads);
    return *pool;
  }

  void parallel_for(int64_t size, int64_t grain, const Body& body) {
    const int64_t chunks = (size + grain - 1) / grain;
    if (chunks <= 1 || helpers_.empty()) {
      body(0, size);
      return;
    }
    std::unique_lock<std::mutex> call_lock(call_mutex_);  // one parallel loop at a time
    {
      std::lock_guard<std::mutex> lock(mutex_);
      body_ = &body;
      size_ = size;
      grain_ = grain;
      chunks_ = chunks;
      next_.store(0);
      done_.store(0);
      generation_.fetch_add(1);
    }
    wake_.notify_all();
    work();
    while (done_.load() < chunks) std::this_thread::yield();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      body_ = nullptr;  // helpers waking from now on find nothing to do
    }
    while (joined_.load() > 0) std::this_thread::yield();
  }

 private:
  explicit TreePool(int num_threads) {
    for (int i = 1; i < num_threads; ++i) {
      helpers_.emplace_back([this] { helper_loop(); });
      helpers_.back().detach();
    }
  }

  void work() {
    for (int64_t chunk = next_.fetch_add(1); chunk < chunks_; chunk = next_.fetch_add(1)) {
      const int64_t begin = chunk * grain_;
      (*body_)(begin, std::min(size_, begin + grain_));
      done_.fetch_add(1);
    }
  }

  void helper_loop() {
    uint64_t seen = 0;
    while (true) {
      // Spin briefly first: the next loop usually follows within microseconds (the model call
      // between select and backup), and a futex wake-up costs tens of microseconds.
      const auto spin_until = std::chrono::steady_clock::now() + kSpin;
      while (generation_.load() == seen && std::chrono::steady_clock::now() < spin_until) {
        cpu_relax();
      }
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return generation_.load() != seen; });
      seen = generation_.load();
      if (body_ == nullptr) continue;
      joined_.fetch_add(1);
      lock.unlock();
      work();
      joined_.fetch_sub(1);
    }
  }

  std::vector<std::thread> helpers_;
  std::mutex call_mutex_, mutex_;
  std::condition_variable wake_;
  const Body* body_ = nullptr;
  int64_t size_ = 0, grain_ = 1, chunks_ = 0;
  std::atomic<int64_t> next_{0}, done_{0};
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> joined_{0};
};

}  // namespace mtrl
