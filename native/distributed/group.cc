#include "distributed/group.h"

#include <c10/util/Exception.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#if defined(TSSL_WITH_CUDA) && defined(USE_C10D_NCCL)
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <chrono>
#include <cstdlib>
#include <thread>

#include "common/error.h"

namespace tssl::dist {
namespace {

using Millis = std::chrono::milliseconds;

std::string reason(const std::exception& e) {
  std::string s;
  if (const auto* ce = dynamic_cast<const c10::Error*>(&e)) {
    s = ce->what_without_backtrace();
  } else {
    s = e.what();
  }
  const auto nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

[[noreturn]] void fail(const std::string& what, const std::exception& e) { throw Error("ERR_DISTRIBUTED", concat(what, ": ", reason(e))); }

template <class Run>
auto guarded(const char* what, int64_t rank, Run&& run) -> decltype(run()) {
  try {
    return run();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    fail(concat("rank ", rank, ": ", what, " failed (a peer stopped or the network failed)"), e);
  }
}

template <class WorkPtr>
class PendingWork final : public Pending {
 public:
  PendingWork(WorkPtr w, int64_t rank) : w_(std::move(w)), rank_(rank) {}
  void wait() override {
    guarded("all-reduce", rank_, [&] { w_->wait(); });
  }

 private:
  WorkPtr w_;
  int64_t rank_;
};

// ProcessGroupGloo is a c10d::ProcessGroup in LibTorch 1.13 and a c10d::Backend in 2.x; both have these calls.
template <class PG>
class GroupImpl final : public Group {
 public:
  GroupImpl(c10::intrusive_ptr<PG> pg, int64_t rank, int64_t size) : pg_(std::move(pg)), rank_(rank), size_(size) {}
  int64_t rank() const override { return rank_; }
  int64_t size() const override { return size_; }
  void allReduceSum(at::Tensor& t) override { allReduceSumAsync(t)->wait(); }
  std::unique_ptr<Pending> allReduceSumAsync(at::Tensor& t) override {
    return guarded("all-reduce", rank_, [&]() -> std::unique_ptr<Pending> {
      std::vector<at::Tensor> ts{t};
      auto w = pg_->allreduce(ts);
      return std::make_unique<PendingWork<decltype(w)>>(std::move(w), rank_);
    });
  }
  void broadcast(at::Tensor& t, int64_t root) override {
    guarded("broadcast", rank_, [&] {
      std::vector<at::Tensor> ts{t};
      c10d::BroadcastOptions o;
      o.rootRank = root;
      pg_->broadcast(ts, o)->wait();
    });
  }
  at::Tensor allGather(const at::Tensor& t) override {
    return guarded("all-gather", rank_, [&] {
      at::Tensor in = t.contiguous();
      std::vector<at::Tensor> inputs{in};
      std::vector<std::vector<at::Tensor>> outputs(1);
      for (int64_t r = 0; r < size_; ++r) outputs[0].push_back(at::empty_like(in));
      pg_->allgather(outputs, inputs)->wait();
      return at::cat(outputs[0], 0);
    });
  }
  bool any(bool local) override {
    at::Tensor flag = at::full({1}, local ? 1 : 0, at::TensorOptions().dtype(at::kInt).device(device_));
    allReduceSum(flag);
    return flag.item<int>() > 0;
  }
  at::Device device_ = at::kCPU;

 private:
  c10::intrusive_ptr<PG> pg_;
  int64_t rank_, size_;
};

std::string where(const DistOptions& o) { return concat(o.masterAddr, ":", o.masterPort); }

// LibTorch 2.4+ serves the store with libuv by default, and refuses to where it was built without libuv
// (Debian's 2.6: "use_libuv was requested but PyTorch was build without libuv support"). The classic server
// works everywhere; 1.13's options have no such field.
template <class Options>
auto classicServer(Options& o, int) -> decltype(o.useLibUV = false, void()) {
  o.useLibUV = false;
}
template <class Options>
void classicServer(Options&, long) {}

bool isLoopback(const std::string& addr) { return addr == "localhost" || addr.rfind("127.", 0) == 0 || addr == "::1"; }

c10::intrusive_ptr<c10d::TCPStore> openStore(const DistOptions& o) {
  c10d::TCPStoreOptions so;
  so.port = static_cast<uint16_t>(o.masterPort);
  so.isServer = o.rank == 0;
  so.waitWorkers = false;
  so.timeout = Millis(static_cast<int64_t>(o.rendezvousTimeoutSec * 1000));
  classicServer(so, 0);
  try {
    return c10::make_intrusive<c10d::TCPStore>(o.masterAddr, so);
  } catch (const std::exception& e) {
    const std::string r = reason(e);
    if (o.rank == 0 && (r.find("in use") != std::string::npos || r.find("errno: 98") != std::string::npos))
      throw Error("ERR_DISTRIBUTED", concat("rank 0 cannot serve the rendezvous: MASTER_PORT ", o.masterPort, " on ", o.masterAddr,
                                            " is already in use (another job? pick another port)"));
    if (o.rank == 0) fail(concat("rank 0 cannot serve the rendezvous on ", where(o)), e);
    fail(concat("rank ", o.rank, " could not reach rank 0's rendezvous at ", where(o), " within ", o.rendezvousTimeoutSec,
                " s: rank 0 never arrived (check MASTER_ADDR / MASTER_PORT)"),
         e);
  }
}

std::string key(int64_t rank) { return concat("tssl/rank/", rank); }

// Every rank announces "worldSize|digest" and waits for the others; mismatches are named as soon as seen.
void rendezvous(c10d::Store& store, const DistOptions& o) {
  const std::string mine = concat(o.worldSize, "|", o.configDigest);
  guarded("the rendezvous", o.rank, [&] { store.set(key(o.rank), std::vector<uint8_t>(mine.begin(), mine.end())); });
  const auto deadline = std::chrono::steady_clock::now() + Millis(static_cast<int64_t>(o.rendezvousTimeoutSec * 1000));
  std::vector<bool> seen(static_cast<size_t>(o.worldSize), false);
  while (true) {
    std::vector<int64_t> missing;
    for (int64_t r = 0; r < o.worldSize; ++r) {
      if (seen[size_t(r)]) continue;
      const bool present = guarded("the rendezvous", o.rank, [&] { return store.check({key(r)}); });
      if (!present) {
        missing.push_back(r);
        continue;
      }
      seen[size_t(r)] = true;
      const std::vector<uint8_t> v = guarded("the rendezvous", o.rank, [&] { return store.get(key(r)); });
      const std::string theirs(v.begin(), v.end());
      const auto bar = theirs.find('|');
      const std::string theirSize = theirs.substr(0, bar);
      TSSL_CHECK(theirSize == std::to_string(o.worldSize), "ERR_DISTRIBUTED", "rank ", r, " was started with WORLD_SIZE ", theirSize, " and rank ",
                 o.rank, " with ", o.worldSize, ": every rank must be given the same world size");
      TSSL_CHECK(theirs.substr(bar + 1) == o.configDigest, "ERR_DISTRIBUTED", "rank ", r, "'s training config differs from rank ", o.rank,
                 "'s (digest ", theirs.substr(bar + 1), " vs ", o.configDigest, "): every rank must run the same config and data");
    }
    if (missing.empty()) return;
    if (std::chrono::steady_clock::now() > deadline) {
      std::string list;
      for (size_t i = 0; i < missing.size(); ++i) list += (i ? ", " : "") + std::to_string(missing[i]);
      throw Error("ERR_DISTRIBUTED", concat("rendezvous at ", where(o), " timed out after ", o.rendezvousTimeoutSec, " s: rank",
                                            missing.size() > 1 ? "s " : " ", list, " of WORLD_SIZE ", o.worldSize, " never arrived"));
    }
    std::this_thread::sleep_for(Millis(20));
  }
}

std::shared_ptr<::gloo::transport::Device> glooDevice(const DistOptions& o) {
  if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname) return c10d::ProcessGroupGloo::createDeviceForInterface(ifname);
  if (isLoopback(o.masterAddr)) return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

}  // namespace

std::vector<std::string> backends() {
#if defined(TSSL_WITH_CUDA) && defined(USE_C10D_NCCL)
  return {"gloo", "nccl"};
#else
  return {"gloo"};
#endif
}

std::shared_ptr<Group> connect(const DistOptions& o, const at::Device& device) {
  TSSL_CHECK(o.worldSize >= 1 && o.rank >= 0 && o.rank < o.worldSize, "ERR_DISTRIBUTED", "RANK ", o.rank, " is outside WORLD_SIZE ", o.worldSize);
  TSSL_CHECK(o.backend == "gloo" || o.backend == "nccl", "ERR_DISTRIBUTED", "unknown backend '", o.backend, "' (gloo or nccl)");
  TSSL_CHECK(o.backend != "nccl" || device.is_cuda(), "ERR_DISTRIBUTED", "backend 'nccl' needs a CUDA device; on CPU use 'gloo'");
  auto store = openStore(o);
  rendezvous(*store, o);
  const Millis timeout(static_cast<int64_t>(o.timeoutSec * 1000));
  auto prefixed = c10::make_intrusive<c10d::PrefixStore>(o.backend, store);
  if (o.backend == "nccl") {
#if defined(TSSL_WITH_CUDA) && defined(USE_C10D_NCCL)
    auto opts = c10d::ProcessGroupNCCL::Options::create();
    opts->timeout = timeout;
    auto pg = guarded("connecting NCCL", o.rank,
                      [&] { return c10::make_intrusive<c10d::ProcessGroupNCCL>(prefixed, int(o.rank), int(o.worldSize), opts); });
    auto g = std::make_shared<GroupImpl<c10d::ProcessGroupNCCL>>(pg, o.rank, o.worldSize);
    g->device_ = device;
    return g;
#else
    throw Error("ERR_DISTRIBUTED", "backend 'nccl': this build of torch-ssl has no NCCL (built against a LibTorch without CUDA / c10d NCCL)");
#endif
  }
  TSSL_CHECK(!device.is_cuda(), "ERR_DISTRIBUTED", "backend 'gloo' with a CUDA device: use 'nccl' (gloo here reduces CPU tensors only)");
  auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
  opts->devices.push_back(guarded("choosing the network interface", o.rank, [&] { return glooDevice(o); }));
  opts->threads = 2;
  auto pg =
      guarded("connecting Gloo", o.rank, [&] { return c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, int(o.rank), int(o.worldSize), opts); });
  auto g = std::make_shared<GroupImpl<c10d::ProcessGroupGloo>>(pg, o.rank, o.worldSize);
  g->device_ = device;
  return g;
}

}  // namespace tssl::dist
