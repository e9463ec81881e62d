// Threads inside one bound pass (certify(..., threads=k)): a small fork-join pool that
// runs the row blocks of a dense product (matmul.hpp), and the blocks of the passes whose
// rows or boxes are independent (for_blocks: sign-rule passes, charges, relaxations), on
// k threads, the caller being one of them. Each calling thread has its own pool, set by
// set_product_threads (from Python's `threads` argument) and read through product_pool(),
// so that no signature changes and every pass (and certify_many's workers, one thread
// each) sees the count of the thread it runs on. Which rows form a block never depends
// on the thread count (matmul.hpp), so the bounds are those of one thread, bit for bit.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace pq {

// Waiting: a pass calls the pool thousands of times, a few tens of microseconds apart, so
// the workers (and the caller, for the workers) first spin for up to kSpinMicros, checking
// an atomic generation counter, and only then sleep on a condition variable (waking a
// sleeping thread costs 10-50 us, as much as a small job).
constexpr int kSpinMicros = 200;

// Spins until done() or kSpinMicros have passed; returns done().
template <class Done>
bool spin_until(Done&& done) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::microseconds(kSpinMicros);
  for (int i = 1;; ++i) {
    if (done()) return true;
    if ((i & 63) == 0 && std::chrono::steady_clock::now() > end) return done();
    std::this_thread::yield();
  }
}

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
      stop_.store(true);
      gen_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
  }
  int threads() const { return static_cast<int>(workers_.size()) + 1; }

  // f(b) for every b in [0, n), spread over the pool and the caller; returns when all
  // are done. f must not throw.
  template <class F>
  void run(std::ptrdiff_t n, F& f) {
    active_ = true;
    job_ = &f;
    call_ = [](void* fn, std::ptrdiff_t b) { (*static_cast<F*>(fn))(b); };
    n_ = n;
    next_.store(0, std::memory_order_relaxed);
    busy_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lk(m_);  // the job's fields happen before the new generation
      gen_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    drain();
    auto idle = [this] { return busy_.load(std::memory_order_acquire) == 0; };
    if (!spin_until(idle)) {
      std::unique_lock<std::mutex> lk(m_);
      done_.wait(lk, idle);
    }
    job_ = nullptr;
    active_ = false;
  }
  // Inside run (read by the owning thread only): a nested run would wait on itself.
  bool active() const { return active_; }

 private:
  void drain() {
    for (std::ptrdiff_t b; (b = next_.fetch_add(1)) < n_;) call_(job_, b);
  }
  void work() {
    std::size_t seen = 0;
    for (;;) {
      auto fresh = [&] { return gen_.load(std::memory_order_acquire) != seen; };
      if (!spin_until(fresh)) {
        std::unique_lock<std::mutex> lk(m_);
        wake_.wait(lk, fresh);
      }
      seen = gen_.load(std::memory_order_acquire);
      if (stop_.load()) return;
      drain();
      if (busy_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lk(m_);
        done_.notify_one();
      }
    }
  }

  std::vector<std::thread> workers_;
  std::mutex m_;
  std::condition_variable wake_, done_;
  void* job_ = nullptr;
  void (*call_)(void*, std::ptrdiff_t) = nullptr;
  std::ptrdiff_t n_ = 0;
  std::atomic<std::ptrdiff_t> next_{0};
  std::atomic<int> busy_{0};
  std::atomic<std::size_t> gen_{0};
  std::atomic<bool> stop_{false};
  bool active_ = false;
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

// Work below this (items x cost, in nanoseconds) runs on the caller alone: handing blocks
// to spinning workers costs a few microseconds (measured at T = 8-16, h = 64-256:
// 1.5e4 and 1e6 flops for the products gave the best 2-thread searches).
constexpr double kBlockParallelWork = 1.5e4;

// f(i0, i1) on contiguous blocks covering items [0, n), on the calling thread's pool when it
// has one and n x cost (about the nanoseconds of the work) pays for waking it, else f(0, n).
// For work whose items are independent (the rows of a sign-rule pass, the boxes of a
// relaxation): the results are then the same for any blocks, so for any thread count. An
// exception thrown by a block is rethrown here, the first block's first, once all are done.
template <class F>
void for_blocks(std::ptrdiff_t n, double cost, F&& f) {
  RowPool* pool = product_pool();
  if (pool == nullptr || pool->active() || n < 2 || static_cast<double>(n) * cost < kBlockParallelWork)
    return f(std::ptrdiff_t(0), n);
  const std::ptrdiff_t nb = n < 2 * pool->threads() ? n : 2 * pool->threads();
  std::vector<std::exception_ptr> errs(static_cast<std::size_t>(nb));
  auto one = [&](std::ptrdiff_t b) {
    try {
      f(n * b / nb, n * (b + 1) / nb);
    } catch (...) {
      errs[static_cast<std::size_t>(b)] = std::current_exception();
    }
  };
  pool->run(nb, one);
  for (auto& e : errs)
    if (e) std::rethrow_exception(e);
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
