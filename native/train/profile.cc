#include "train/profile.h"

#include <torch/csrc/autograd/profiler_legacy.h>

#include <map>
#include <tuple>

namespace tssl::train {
namespace {

namespace prof = torch::autograd::profiler;

double numel(const std::vector<int64_t>& shape) {
  double n = 1;
  for (int64_t s : shape) n *= double(s);
  return n;
}

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }
// LibTorch's convolution ops, and models/winograd.h's (recorded as tssl_winograd::conv3x3_forward / _backward).
bool isConv(const std::string& name) { return contains(name, "conv") && (contains(name, "aten::") || contains(name, "tssl_winograd::")); }
bool isConvBackward(const std::string& name) { return isConv(name) && contains(name, "backward"); }
bool isGemm(const std::string& name) { return name == "aten::addmm" || name == "aten::mm" || name == "aten::bmm"; }

std::string shapeText(const std::vector<std::vector<int64_t>>& shapes) {
  std::string out;
  for (const auto& s : shapes) {
    if (s.empty()) continue;
    if (!out.empty()) out += ' ';
    out += '[';
    for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
    out += ']';
  }
  return out;
}

struct Frame {
  std::string name;
  std::vector<std::vector<int64_t>> shapes;
  const prof::LegacyEvent* push;
  double childUs = 0;
  bool convChild = false;     // a nested convolution op does the work (and gets the FLOPs)
  bool dataGradOnly = false;  // inside models/conv.h's small-map backward: the weights' gradient is a GEMM
  std::string phase;
};

using Key = std::pair<std::vector<int64_t>, std::vector<int64_t>>;  // (input shape, weight shape)

}  // namespace

void StepProfiler::begin() {
  torch::profiler::impl::ProfilerConfig cfg(torch::profiler::impl::ProfilerState::CPU, /*report_input_shapes=*/true);
  prof::enableProfilerLegacy(cfg);
  active_ = true;
}

void StepProfiler::end(double wallMs) {
  if (!active_) return;
  active_ = false;
  prof::thread_event_lists lists = prof::disableProfilerLegacy();
  if (wallMs < 0) return;  // no step ran (the data ended)
  // Pass 1: each convolution's output size, from its backward (grad_output, input, weight): the forward's
  // FLOPs are 2 · numel(output) · (C_in / groups) · kh · kw, the backward's twice that.
  std::map<Key, double> outputOf;
  for (const auto& list : lists)
    for (const auto& e : list)
      if (e.kindStr() == "push" && isConvBackward(e.name())) {
        auto s = e.shapes();
        if (s.size() >= 3 && s[0].size() == 4 && s[1].size() == 4 && s[2].size() == 4) outputOf[{s[1], s[2]}] = numel(s[0]);
      }
  std::map<std::tuple<std::string, std::string, std::string>, OpProfile> agg;
  for (const auto& o : ops_) agg[{o.phase, o.name, o.shapes}] = o;
  for (const auto& list : lists) {
    std::vector<Frame> stack;
    for (const auto& e : list) {
      const std::string kind = e.kindStr();
      if (kind == "push") {
        Frame f;
        f.name = e.name();
        f.shapes = e.shapes();
        f.push = &e;
        f.phase = stack.empty() ? std::string() : (stack.back().name.rfind("tssl::", 0) == 0 ? stack.back().name : stack.back().phase);
        f.dataGradOnly = contains(f.name, "SmallMapConv") || (!stack.empty() && stack.back().dataGradOnly);
        stack.push_back(std::move(f));
      } else if (kind == "pop" && !stack.empty()) {
        Frame f = std::move(stack.back());
        stack.pop_back();
        const double totalUs = f.push->cpuElapsedUs(e);
        const bool leafWork = (isConv(f.name) && !f.convChild) || isGemm(f.name);
        const std::string shapes = leafWork ? shapeText(f.shapes) : std::string();
        OpProfile& o = agg[{f.phase, f.name, shapes}];
        o.phase = f.phase;
        o.name = f.name;
        o.shapes = shapes;
        o.calls += 1;
        o.totalMs += totalUs / 1000.0;
        o.selfMs += (totalUs - f.childUs) / 1000.0;
        for (const auto& s : f.shapes) o.elements += s.empty() ? 0 : numel(s);
        const auto& s = f.shapes;
        if (isGemm(f.name) && s.size() >= 2) {
          const auto& a = f.name == "aten::addmm" ? s[1] : s[0];
          const auto& b = f.name == "aten::addmm" ? s[2] : s[1];
          if (a.size() == 2 && b.size() == 2) o.flops += 2.0 * double(a[0]) * double(a[1]) * double(b[1]);
          if (a.size() == 3 && b.size() == 3) o.flops += 2.0 * double(a[0]) * double(a[1]) * double(a[2]) * double(b[2]);
        } else if (isConv(f.name) && !f.convChild) {
          if (isConvBackward(f.name) && s.size() >= 3 && s[2].size() == 4) {
            o.flops += (f.dataGradOnly ? 1.0 : 2.0) * 2.0 * numel(s[0]) * double(s[2][1] * s[2][2] * s[2][3]);
          } else if (s.size() >= 2 && s[0].size() == 4 && s[1].size() == 4) {
            auto it = outputOf.find({s[0], s[1]});
            if (it != outputOf.end()) o.flops += 2.0 * it->second * double(s[1][1] * s[1][2] * s[1][3]);
          }
        }
        if (!stack.empty()) {
          stack.back().childUs += totalUs;
          if (isConv(f.name)) stack.back().convChild = true;
        }
      }
    }
  }
  ops_.clear();
  for (auto& kv : agg) ops_.push_back(std::move(kv.second));
  steps_ += 1;
  wallMs_ += wallMs;
}

}  // namespace tssl::train
