#include "distributed/reducer.h"

#include "common/error.h"

namespace tssl::dist {

GradReducer::GradReducer(std::vector<at::Tensor> params, Group& group, int64_t bucketMb)
    : params_(std::move(params)), group_(group), scale_(1.0 / double(group.size())) {
  const int64_t cap = std::max<int64_t>(1, bucketMb) * 1024 * 1024;
  const int64_t firstCap = std::min<int64_t>(cap, 1024 * 1024);  // DDP's first bucket: 1 MB
  bucketOf_.resize(params_.size());
  slotOf_.resize(params_.size());
  got_.assign(params_.size(), false);
  Bucket cur;
  int64_t bytes = 0;
  auto close = [&] {
    if (cur.params.empty()) return;
    cur.flat = at::zeros({cur.offsets.back()}, params_[cur.params[0]].options().memory_format(at::MemoryFormat::Contiguous));
    cur.offsets.pop_back();
    buckets_.push_back(std::move(cur));
    cur = Bucket();
    bytes = 0;
  };
  for (size_t k = params_.size(); k-- > 0;) {
    const at::Tensor& p = params_[k];
    if (!cur.params.empty() && (p.scalar_type() != params_[cur.params[0]].scalar_type() || p.device() != params_[cur.params[0]].device())) close();
    if (cur.offsets.empty()) cur.offsets.push_back(0);
    bucketOf_[k] = buckets_.size();
    slotOf_[k] = cur.params.size();
    cur.params.push_back(k);
    cur.offsets.push_back(cur.offsets.back() + p.numel());
    bytes += p.numel() * int64_t(p.element_size());
    if (bytes >= (buckets_.empty() ? firstCap : cap)) close();
  }
  close();
  for (size_t k = 0; k < params_.size(); ++k)
    hooks_.push_back(params_[k].register_hook([this, k](const at::Tensor& grad) {
      onGrad(k, grad);
      return grad;
    }));
}

GradReducer::~GradReducer() {
  for (size_t k = 0; k < hooks_.size(); ++k) {
    try {
      params_[k].remove_hook(hooks_[k]);
    } catch (...) {
    }
  }
}

void GradReducer::begin() {
  for (auto& b : buckets_) {
    b.ready = 0;
    b.work.reset();
  }
  got_.assign(params_.size(), false);
  nextLaunch_ = 0;
  launched_ = false;
}

void GradReducer::onGrad(size_t k, const at::Tensor& grad) {
  if (got_[k]) return;  // a parameter's hook fires once per backward
  got_[k] = true;
  Bucket& b = buckets_[bucketOf_[k]];
  const size_t slot = slotOf_[k];
  at::Tensor view = b.flat.narrow(0, b.offsets[slot], params_[k].numel()).view(params_[k].sizes());
  at::NoGradGuard ng;
  view.copy_(grad.detach()).mul_(scale_);
  ++b.ready;
  launchReady();
}

void GradReducer::launch(Bucket& b) {
  if (!launched_) {
    launched_ = true;
    firstLaunch_ = std::chrono::steady_clock::now();
  }
  b.work = group_.allReduceSumAsync(b.flat);
}

// Buckets go out in order on every rank (the collectives must be issued in the same order everywhere).
void GradReducer::launchReady() {
  while (nextLaunch_ < buckets_.size() && buckets_[nextLaunch_].ready == buckets_[nextLaunch_].params.size()) launch(buckets_[nextLaunch_++]);
}

void GradReducer::finish() {
  at::NoGradGuard ng;
  for (size_t k = 0; k < params_.size(); ++k) {
    if (got_[k]) continue;  // no gradient this step: contributes zeros
    Bucket& b = buckets_[bucketOf_[k]];
    b.flat.narrow(0, b.offsets[slotOf_[k]], params_[k].numel()).zero_();
    got_[k] = true;
    ++b.ready;
  }
  launchReady();
  const auto t0 = std::chrono::steady_clock::now();
  for (auto& b : buckets_) b.work->wait();
  const auto t1 = std::chrono::steady_clock::now();
  exposedMs_ = std::chrono::duration<double, std::milli>(t1 - t0).count();
  commMs_ = std::chrono::duration<double, std::milli>(t1 - firstLaunch_).count();
  for (size_t k = 0; k < params_.size(); ++k) {
    const Bucket& b = buckets_[bucketOf_[k]];
    at::Tensor avg = b.flat.narrow(0, b.offsets[slotOf_[k]], params_[k].numel()).view(params_[k].sizes());
    at::Tensor& g = params_[k].mutable_grad();
    if (g.defined()) {
      g.copy_(avg);
    } else {
      g = avg.clone().contiguous(params_[k].suggest_memory_format());
    }
  }
}

}  // namespace tssl::dist
