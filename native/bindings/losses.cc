#include "bindings/common.h"

namespace tssl::bindings {
void initLosses(Napi::Env, Napi::Object) {}
}  // namespace tssl::bindings
