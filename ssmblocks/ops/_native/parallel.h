// Work sharing for the native kernels: std::threads (count given by the caller, which passes
// torch.get_num_threads()), so no second OpenMP runtime is loaded next to torch's.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

namespace ssm {

// Calls body(item, thread_id) for every item in [0, n_items), items handed out dynamically to min(n_threads,
// n_items) threads (the calling thread is thread 0).
template <class F>
void parallel_items(int64_t n_items, int n_threads, F&& body) {
  int threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(n_threads, n_items)));
  std::atomic<int64_t> next{0};
  auto worker = [&](int tid) {
    for (int64_t i = next.fetch_add(1); i < n_items; i = next.fetch_add(1)) body(i, tid);
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker, t);
  worker(0);
  for (auto& t : pool) t.join();
}

}  // namespace ssm
