// Threads inside one bound pass (certify(..., threads=k)): a small fork-join pool that
// runs the row blocks of a dense product (matmul.hpp) on k threads, the caller being one
// of them. Each calling thread has its own pool, set by set_product_threads (from
// Python's `threads` argument) and read by gemm through product_pool(), so that no
// signature changes and every pass (and certify_many's workers, one thread each) sees
// the count of the thread it runs on. Which rows form a block never depends
// on the thread count (matmul.hpp), so the bounds are those of one thread, bit for bit.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace pq {

class RowPool {
 public:
  explicit RowPool(int threads) {
    for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { work(); });
  }
  RowPool(const RowPool&) = delete;
  RowPool& operator=(const RowPool&) = delete;
  ~RowPool() {
    {
      std::lock_guard<std::mutex> lk(m_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
  }
  int threads() const { return static_cast<int>(workers_.size()) + 1; }

  // f(b) for every b in [0, n), spread over the pool and the caller; returns when all
  // are done. f must not throw.
  template <class F>
  void run(std::ptrdiff_t n, F& f) {
    {
      std::lock_guard<std::mutex> lk(m_);
      job_ = &f;
      call_ = [](void* fn, std::ptrdiff_t b) { (*static_cast<F*>(fn))(b); };
      n_ = n;
      next_.store(0);
      busy_ = static_cast<int>(workers_.size());
      ++gen_;
    }
    wake_.notify_all();
    drain();
    std::unique_lock<std::mutex> lk(m_);
    done_.wait(lk, [this] { return busy_ == 0; });
    job_ = nullptr;
  }

 private:
  void drain() {
    for (std::ptrdiff_t b; (b = next_.fetch_add(1)) < n_;) call_(job_, b);
  }
  void work() {
    std::size_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lk(m_);
        wake_.wait(lk, [&] { return stop_ || gen_ != seen; });
        if (stop_) return;
        seen = gen_;
      }
      drain();
      std::lock_guard<std::mutex> lk(m_);
      if (--busy_ == 0) done_.notify_one();
    }
  }

  std::vector<std::thread> workers_;
  std::mutex m_;
  std::condition_variable wake_, done_;
  void* job_ = nullptr;
  void (*call_)(void*, std::ptrdiff_t) = nullptr;
  std::ptrdiff_t n_ = 0;
  std::atomic<std::ptrdiff_t> next_{0};
  int busy_ = 0;
  std::size_t gen_ = 0;
  bool stop_ = false;
};

namespace detail {
inline std::unique_ptr<RowPool>& pool_slot() {
  thread_local std::unique_ptr<RowPool> pool;
  return pool;
}
}  // namespace detail

// The pool of the calling thread, or nullptr (one thread).
inline RowPool* product_pool() { return detail::pool_slot().get(); }

// From now on, the products of passes run on this thread use k threads (k - 1 started
// here, kept until the count changes or the thread ends; 1: none). Returns the count
// it replaces. Python sets it around certify(..., threads=k) (_core._product_threads).
inline int set_product_threads(int k) {
  auto& pool = detail::pool_slot();
  const int prev = pool ? pool->threads() : 1;
  if (k != prev) {
    pool.reset();
    if (k > 1) pool = std::make_unique<RowPool>(k);
  }
  return prev;
}

// set_product_threads for a scope.
class ProductThreads {
 public:
  explicit ProductThreads(int k) : outer_(set_product_threads(k)) {}
  ProductThreads(const ProductThreads&) = delete;
  ProductThreads& operator=(const ProductThreads&) = delete;
  ~ProductThreads() { set_product_threads(outer_); }

 private:
  int outer_;
};

}  // namespace pq
