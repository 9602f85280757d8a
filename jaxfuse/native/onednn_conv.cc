// oneDNN 2-D convolutions as XLA FFI custom calls.
//
// Three handlers, all fp32, stride 1, dilation 1, explicit zero padding
// (pad_t, pad_b, pad_l, pad_r attributes), NHWC activations, HWIO weights:
//
//   jaxfuse_onednn_conv_fwd        (x, w, b)  -> y
//   jaxfuse_onednn_conv_bwd_data   (dy, w)    -> dx
//   jaxfuse_onednn_conv_bwd_weights(x, dy)    -> (dw, db)
//
// Every call also takes two integer attributes. `blocked`: 0 hands oneDNN the
// NHWC / HWIO buffers as they are, 1 lets it pick its own (blocked) weight
// layout and reorders to and from HWIO around the convolution, 2 does that for
// the activations too. `max_threads`: 0 runs as many OpenMP threads as XLA's
// intra-op thread pool has, n > 0 at most n.
//
// Primitives are built once per shape and kept in a cache. Each call runs
// oneDNN's OpenMP kernels with as many threads as XLA's intra-op thread pool
// has, and with a scratchpad of the calling thread's own, so that calls from
// several threads at once are safe.

#include <omp.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "oneapi/dnnl/dnnl.hpp"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;
using dnnl::memory;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

namespace {

dnnl::engine& Engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

enum Op : int64_t { kFwd = 0, kBwdData = 1, kBwdWeights = 2 };

struct Key {
  int64_t op, n, h, w, ci, co, kh, kw, pt, pb, pl, pr, blocked;
  bool operator==(const Key& o) const {
    return std::memcmp(this, &o, sizeof(Key)) == 0;
  }
};

struct KeyHash {
  size_t operator()(const Key& k) const {
    const int64_t* p = reinterpret_cast<const int64_t*>(&k);
    size_t h = 1469598103934665603ull;
    for (size_t i = 0; i < sizeof(Key) / sizeof(int64_t); ++i) {
      h ^= static_cast<size_t>(p[i]) + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    }
    return h;
  }
};

// One cached convolution: the primitive, and for each of its three tensors
// (activations in, activations out, weights) the layout the primitive wants
// and, where that is not the caller's (NHWC / HWIO), the reorder to or from it.
struct Operand {
  memory::desc want, user, scratch;
  bool reorder = false;
  bool input = true;
  dnnl::primitive prim;
  int buffer = 0;  // which thread buffer holds the reordered copy
};

struct Plan {
  dnnl::primitive conv;
  memory::desc bias, scratch;
  Operand src, dst, wei;  // src: x / dx, dst: y / dy, wei: w / dw
  int src_arg, dst_arg, wei_arg;
};

std::mutex cache_mutex;
std::unordered_map<Key, std::shared_ptr<Plan>, KeyHash> cache;

memory::dims Dims(std::initializer_list<int64_t> v) { return memory::dims(v); }

void Prepare(Operand& o, const memory::desc& want, const memory::desc& user, bool input,
             int buffer) {
  auto& eng = Engine();
  o.want = want;
  o.user = user;
  o.input = input;
  o.buffer = buffer;
  o.reorder = want != user;
  if (o.reorder) {
    // a scratchpad of the caller's too, so that one reorder can run on several
    // threads at once
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    auto pd = input ? dnnl::reorder::primitive_desc(eng, user, eng, want, attr)
                    : dnnl::reorder::primitive_desc(eng, want, eng, user, attr);
    o.prim = dnnl::reorder(pd);
    o.scratch = pd.scratchpad_desc();
  }
}

std::shared_ptr<Plan> MakePlan(const Key& k) {
  auto& eng = Engine();
  const int64_t ho = k.h + k.pt + k.pb - k.kh + 1;
  const int64_t wo = k.w + k.pl + k.pr - k.kw + 1;
  memory::desc user_src(Dims({k.n, k.ci, k.h, k.w}), dt::f32, tag::nhwc);
  memory::desc user_dst(Dims({k.n, k.co, ho, wo}), dt::f32, tag::nhwc);
  memory::desc user_wei(Dims({k.co, k.ci, k.kh, k.kw}), dt::f32, tag::hwio);
  memory::desc any_src(Dims({k.n, k.ci, k.h, k.w}), dt::f32, tag::any);
  memory::desc any_dst(Dims({k.n, k.co, ho, wo}), dt::f32, tag::any);
  memory::desc any_wei(Dims({k.co, k.ci, k.kh, k.kw}), dt::f32, tag::any);
  // blocked: 0 = caller's layouts throughout, 1 = oneDNN's weight layout,
  // 2 = oneDNN's layouts throughout.
  memory::desc src_md = k.blocked >= 2 ? any_src : user_src;
  memory::desc dst_md = k.blocked >= 2 ? any_dst : user_dst;
  memory::desc wei_md = k.blocked >= 1 ? any_wei : user_wei;
  memory::desc bias_md(Dims({k.co}), dt::f32, tag::x);
  memory::dims strides = {1, 1}, pad_l = {k.pt, k.pl}, pad_r = {k.pb, k.pr};

  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);

  auto plan = std::make_shared<Plan>();
  const bool with_bias = k.op != kBwdData;
  auto fwd_pd = with_bias
      ? dnnl::convolution_forward::primitive_desc(
            eng, dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
            src_md, wei_md, bias_md, dst_md, strides, pad_l, pad_r, attr)
      : dnnl::convolution_forward::primitive_desc(
            eng, dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
            src_md, wei_md, dst_md, strides, pad_l, pad_r, attr);
  if (k.op == kFwd) {
    plan->conv = dnnl::convolution_forward(fwd_pd);
    Prepare(plan->src, fwd_pd.src_desc(), user_src, true, 0);
    Prepare(plan->wei, fwd_pd.weights_desc(), user_wei, true, 1);
    Prepare(plan->dst, fwd_pd.dst_desc(), user_dst, false, 2);
    plan->bias = fwd_pd.bias_desc();
    plan->scratch = fwd_pd.scratchpad_desc();
    plan->src_arg = DNNL_ARG_SRC;
    plan->wei_arg = DNNL_ARG_WEIGHTS;
    plan->dst_arg = DNNL_ARG_DST;
  } else if (k.op == kBwdData) {
    dnnl::convolution_backward_data::primitive_desc pd(
        eng, dnnl::algorithm::convolution_direct, src_md, wei_md, dst_md, strides,
        pad_l, pad_r, fwd_pd, attr);
    plan->conv = dnnl::convolution_backward_data(pd);
    Prepare(plan->src, pd.diff_src_desc(), user_src, false, 0);
    Prepare(plan->wei, pd.weights_desc(), user_wei, true, 1);
    Prepare(plan->dst, pd.diff_dst_desc(), user_dst, true, 2);
    plan->scratch = pd.scratchpad_desc();
    plan->src_arg = DNNL_ARG_DIFF_SRC;
    plan->wei_arg = DNNL_ARG_WEIGHTS;
    plan->dst_arg = DNNL_ARG_DIFF_DST;
  } else {
    dnnl::convolution_backward_weights::primitive_desc pd(
        eng, dnnl::algorithm::convolution_direct, src_md, wei_md, bias_md, dst_md,
        strides, pad_l, pad_r, fwd_pd, attr);
    plan->conv = dnnl::convolution_backward_weights(pd);
    Prepare(plan->src, pd.src_desc(), user_src, true, 0);
    Prepare(plan->wei, pd.diff_weights_desc(), user_wei, false, 1);
    Prepare(plan->dst, pd.diff_dst_desc(), user_dst, true, 2);
    plan->bias = pd.diff_bias_desc();
    plan->scratch = pd.scratchpad_desc();
    plan->src_arg = DNNL_ARG_SRC;
    plan->wei_arg = DNNL_ARG_DIFF_WEIGHTS;
    plan->dst_arg = DNNL_ARG_DIFF_DST;
  }
  return plan;
}

std::shared_ptr<Plan> GetPlan(const Key& k) {
  std::lock_guard<std::mutex> lock(cache_mutex);
  auto it = cache.find(k);
  if (it != cache.end()) return it->second;
  auto plan = MakePlan(k);
  cache.emplace(k, plan);
  return plan;
}

// A growable, 64-byte aligned buffer owned by the calling thread.
struct ThreadBuffer {
  void* ptr = nullptr;
  size_t size = 0;
  void* Get(size_t bytes) {
    if (bytes > size) {
      std::free(ptr);
      size = (bytes + 4095) & ~size_t(4095);
      ptr = std::aligned_alloc(64, size);
    }
    return ptr;
  }
  ~ThreadBuffer() { std::free(ptr); }
};

thread_local ThreadBuffer scratch_buffer;
thread_local ThreadBuffer reorder_scratch_buffer;
thread_local ThreadBuffer operand_buffers[3];

std::atomic<int> last_threads{0};

int SetThreads(ffi::ThreadPool& pool, int64_t max_threads) {
  int64_t n = pool.num_threads();
  if (max_threads > 0 && (n <= 0 || n > max_threads)) n = max_threads;
  if (n > 0 && omp_get_max_threads() != n) omp_set_num_threads(static_cast<int>(n));
  const int threads = omp_get_max_threads();
  last_threads.store(threads, std::memory_order_relaxed);
  return threads;
}

// Small reorders (the weights) run on one thread: a parallel region costs a
// barrier, and on a busy machine a barrier can wait out a scheduler slice.
constexpr size_t kSerialReorderBytes = size_t(1) << 20;

void Reorder(Operand& o, const memory& from, const memory& to, dnnl::stream& strm, int threads) {
  memory scratch(o.scratch, Engine(), reorder_scratch_buffer.Get(o.scratch.get_size() + 64));
  const bool serial = o.user.get_size() <= kSerialReorderBytes;
  if (serial) omp_set_num_threads(1);
  o.prim.execute(strm, {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}, {DNNL_ARG_SCRATCHPAD, scratch}});
  if (serial) omp_set_num_threads(threads);
}

memory Bind(Operand& o, void* user_ptr, dnnl::stream& strm, int threads) {
  auto& eng = Engine();
  memory user(o.user, eng, user_ptr);
  if (!o.reorder) return user;
  memory want(o.want, eng, operand_buffers[o.buffer].Get(o.want.get_size()));
  if (o.input) Reorder(o, user, want, strm, threads);
  return want;
}

void Finish(Operand& o, const memory& want, void* user_ptr, dnnl::stream& strm, int threads) {
  if (!o.reorder || o.input) return;
  memory user(o.user, Engine(), user_ptr);
  Reorder(o, want, user, strm, threads);
}

void Run(const Key& k, ffi::ThreadPool& pool, int64_t max_threads, void* src, void* wei,
         void* bias, void* dst) {
  const int threads = SetThreads(pool, max_threads);
  auto plan = GetPlan(k);
  auto& eng = Engine();
  dnnl::stream strm(eng);
  memory src_m = Bind(plan->src, src, strm, threads);
  memory wei_m = Bind(plan->wei, wei, strm, threads);
  memory dst_m = Bind(plan->dst, dst, strm, threads);
  memory scratch_m(plan->scratch, eng, scratch_buffer.Get(plan->scratch.get_size() + 64));
  std::unordered_map<int, memory> args;
  args[DNNL_ARG_SCRATCHPAD] = scratch_m;
  args[plan->src_arg] = src_m;
  args[plan->wei_arg] = wei_m;
  args[plan->dst_arg] = dst_m;
  if (k.op == kFwd) args[DNNL_ARG_BIAS] = memory(plan->bias, eng, bias);
  if (k.op == kBwdWeights) args[DNNL_ARG_DIFF_BIAS] = memory(plan->bias, eng, bias);
  plan->conv.execute(strm, args);
  Finish(plan->src, src_m, src, strm, threads);
  Finish(plan->wei, wei_m, wei, strm, threads);
  Finish(plan->dst, dst_m, dst, strm, threads);
  strm.wait();
}

template <typename F>
ffi::Error Guard(F&& f) {
  try {
    f();
  } catch (const dnnl::error& e) {
    return ffi::Error(ffi::ErrorCode::kInternal, std::string("oneDNN: ") + e.what());
  } catch (const std::exception& e) {
    return ffi::Error(ffi::ErrorCode::kInternal, e.what());
  }
  return ffi::Error::Success();
}

ffi::Error ConvFwd(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> w,
                   ffi::Buffer<ffi::F32> b, ffi::ResultBuffer<ffi::F32> y, int64_t pad_t,
                   int64_t pad_b, int64_t pad_l, int64_t pad_r, int64_t blocked, int64_t max_threads) {
  auto xd = x.dimensions(), wd = w.dimensions();
  if (xd.size() != 4 || wd.size() != 4 || wd[2] != xd[3]) {
    return ffi::Error::InvalidArgument("conv_fwd: x must be NHWC and w HWIO with matching C");
  }
  Key k{kFwd, xd[0], xd[1], xd[2], xd[3], wd[3], wd[0], wd[1], pad_t, pad_b, pad_l, pad_r, blocked};
  return Guard([&] { Run(k, pool, max_threads, x.untyped_data(), w.untyped_data(), b.untyped_data(), y->untyped_data()); });
}

ffi::Error ConvBwdData(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> dy, ffi::Buffer<ffi::F32> w,
                       ffi::ResultBuffer<ffi::F32> dx, int64_t pad_t, int64_t pad_b,
                       int64_t pad_l, int64_t pad_r, int64_t blocked, int64_t max_threads) {
  auto xd = dx->dimensions(), wd = w.dimensions();
  if (xd.size() != 4 || wd.size() != 4 || wd[2] != xd[3]) {
    return ffi::Error::InvalidArgument("conv_bwd_data: dx must be NHWC and w HWIO with matching C");
  }
  Key k{kBwdData, xd[0], xd[1], xd[2], xd[3], wd[3], wd[0], wd[1], pad_t, pad_b, pad_l, pad_r, blocked};
  return Guard([&] { Run(k, pool, max_threads, dx->untyped_data(), w.untyped_data(), nullptr, dy.untyped_data()); });
}

ffi::Error ConvBwdWeights(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> dy,
                          ffi::ResultBuffer<ffi::F32> dw, ffi::ResultBuffer<ffi::F32> db,
                          int64_t pad_t, int64_t pad_b, int64_t pad_l, int64_t pad_r,
                          int64_t blocked, int64_t max_threads) {
  auto xd = x.dimensions(), wd = dw->dimensions();
  if (xd.size() != 4 || wd.size() != 4 || wd[2] != xd[3]) {
    return ffi::Error::InvalidArgument("conv_bwd_weights: x must be NHWC and dw HWIO with matching C");
  }
  Key k{kBwdWeights, xd[0], xd[1], xd[2], xd[3], wd[3], wd[0], wd[1], pad_t, pad_b, pad_l, pad_r, blocked};
  return Guard([&] { Run(k, pool, max_threads, x.untyped_data(), dw->untyped_data(), db->untyped_data(), dy.untyped_data()); });
}

}  // namespace

// The library is built with hidden visibility; these are what it exports.
#define JAXFUSE_EXPORT extern "C" __attribute__((visibility("default")))
JAXFUSE_EXPORT XLA_FFI_Error* jaxfuse_onednn_conv_fwd(XLA_FFI_CallFrame*);
JAXFUSE_EXPORT XLA_FFI_Error* jaxfuse_onednn_conv_bwd_data(XLA_FFI_CallFrame*);
JAXFUSE_EXPORT XLA_FFI_Error* jaxfuse_onednn_conv_bwd_weights(XLA_FFI_CallFrame*);
JAXFUSE_EXPORT const char* jaxfuse_onednn_version();
JAXFUSE_EXPORT int jaxfuse_onednn_last_threads();

// The attributes every call takes, in the handlers' order (conv_native._attrs).
template <typename Binding>
auto ConvAttrs(Binding b) {
  return std::move(b)
      .template Attr<int64_t>("pad_t")
      .template Attr<int64_t>("pad_b")
      .template Attr<int64_t>("pad_l")
      .template Attr<int64_t>("pad_r")
      .template Attr<int64_t>("blocked")
      .template Attr<int64_t>("max_threads");
}

using F32 = ffi::Buffer<ffi::F32>;

XLA_FFI_DEFINE_HANDLER_SYMBOL(jaxfuse_onednn_conv_fwd, ConvFwd,
                              ConvAttrs(ffi::Ffi::Bind()
                                            .Ctx<ffi::ThreadPool>()
                                            .Arg<F32>()    // x
                                            .Arg<F32>()    // w
                                            .Arg<F32>()    // b
                                            .Ret<F32>())); // y

XLA_FFI_DEFINE_HANDLER_SYMBOL(jaxfuse_onednn_conv_bwd_data, ConvBwdData,
                              ConvAttrs(ffi::Ffi::Bind()
                                            .Ctx<ffi::ThreadPool>()
                                            .Arg<F32>()    // dy
                                            .Arg<F32>()    // w
                                            .Ret<F32>())); // dx

XLA_FFI_DEFINE_HANDLER_SYMBOL(jaxfuse_onednn_conv_bwd_weights, ConvBwdWeights,
                              ConvAttrs(ffi::Ffi::Bind()
                                            .Ctx<ffi::ThreadPool>()
                                            .Arg<F32>()    // x
                                            .Arg<F32>()    // dy
                                            .Ret<F32>()    // dw
                                            .Ret<F32>())); // db

// Which oneDNN is loaded, for diagnostics: "major.minor.patch".
const char* jaxfuse_onednn_version() {
  static std::string v = [] {
    const dnnl_version_t* ver = dnnl_version();
    return std::to_string(ver->major) + "." + std::to_string(ver->minor) + "." +
           std::to_string(ver->patch);
  }();
  return v.c_str();
}

// The OpenMP thread count the last call ran with (0 before any call).
int jaxfuse_onednn_last_threads() { return last_threads.load(std::memory_order_relaxed); }
