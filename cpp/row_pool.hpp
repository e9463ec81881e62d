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

namespace detail {
// The first item of thread i's share of n items on k threads: ceil(n i / k), so the caller,
// which starts at once, takes the larger share.
constexpr std::ptrdiff_t share(std::ptrdiff_t n, std::ptrdiff_t i, std::ptrdiff_t k) { return (n * i + k - 1) / k; }

}  // namespace detail

class RowPool {
 public:
  explicit RowPool(int threads) {
    for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { work(i); });
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

  // f(b) for every b in [0, n), spread over the pool and the caller (detail::share); returns
  // when all are done. f must not throw.
  template <class F>
  void run(std::ptrdiff_t n, F& f) {
    active_ = true;
    job_ = &f;
    call_ = [](void* fn, std::ptrdiff_t b) { (*static_cast<F*>(fn))(b); };
    n_ = n;
    busy_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lk(m_);  // the job's fields happen before the new generation
      gen_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    drain(0);
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
  // Thread i (the caller is 0) runs blocks [share(n, i, k), share(n, i + 1, k)): the same
  // rows on the same core from one product or sign-rule pass to the next, so that their
  // coefficients stay in that core's caches (handed out first come, first served, a block
  // was often computed on one core and read on the other: 2-thread GRU passes at h = 64
  // were 1.1x faster than one thread, 1.4-1.5x with fixed shares).
  void drain(int i) {
    const int k = threads();
    for (std::ptrdiff_t b = detail::share(n_, i, k), e = detail::share(n_, i + 1, k); b < e; ++b) call_(job_, b);
  }
  void work(int i) {
    std::size_t seen = 0;
    for (;;) {
      auto fresh = [&] { return gen_.load(std::memory_order_acquire) != seen; };
      if (!spin_until(fresh)) {
        std::unique_lock<std::mutex> lk(m_);
        wake_.wait(lk, fresh);
      }
      seen = gen_.load(std::memory_order_acquire);
      if (stop_.load()) return;
      drain(i);
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
// to spinning workers costs a few microseconds. Low, because a verb left to the caller
// reads the rows the other threads wrote (from their caches): with the fixed shares, 1e3
// here and 3e4 flops for the products (matmul.hpp kParallelFlops) gave the best 2-thread
// searches at T = 8-16, h = 32-256 (1.5e4 and 1e6 had left GRU passes at h = 64 serial
// in their narrow products; bench/results/2026-12-07-subnormals.md).
constexpr double kBlockParallelWork = 1e3;

// f(i0, i1) on contiguous blocks covering items [0, n), one block per thread of the calling
// thread's pool when it has one and n x cost (about the nanoseconds of the work) pays for
// waking it, else f(0, n). Block i starts at share(n, i, k) rounded up to a multiple of
// align: rows of an objective chunk pass align = the products' row block (for_row_blocks,
// matmul.hpp), so that a thread's rows in a sign-rule pass are the rows it multiplies.
// For work whose items are independent (the rows of a sign-rule pass, the boxes of a
// relaxation): the results are then the same for any blocks, so for any thread count. An
// exception thrown by a block is rethrown here, the first block's first, once all are done.
template <class F>
void for_blocks(std::ptrdiff_t n, double cost, F&& f, std::ptrdiff_t align = 1) {
  RowPool* pool = product_pool();
  if (pool == nullptr || pool->active() || n < 2 || static_cast<double>(n) * cost < kBlockParallelWork)
    return f(std::ptrdiff_t(0), n);
  const std::ptrdiff_t k = pool->threads();
  auto start = [&](std::ptrdiff_t i) {
    const std::ptrdiff_t a = (detail::share(n, i, k) + align - 1) / align * align;
    return a < n ? a : n;
  };
  std::vector<std::exception_ptr> errs(static_cast<std::size_t>(k));
  auto one = [&](std::ptrdiff_t b) {
    try {
      const std::ptrdiff_t i0 = start(b), i1 = start(b + 1);
      if (i0 < i1) f(i0, i1);
    } catch (...) {
      errs[static_cast<std::size_t>(b)] = std::current_exception();
    }
  };
  pool->run(k, one);
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
