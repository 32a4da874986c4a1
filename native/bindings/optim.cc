#include "bindings/common.h"

namespace tssl::bindings {
void initOptim(Napi::Env, Napi::Object) {}
}  // namespace tssl::bindings
