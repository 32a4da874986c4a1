// Imported first by the tests that compare whole training runs with a PyTorch reference at the tolerance of
// PyTorch's own thread-count noise (or tighter): they run torch-ssl on the same direct oneDNN convolutions PyTorch
// runs, with the Winograd path (native/models/winograd.h) off, and on LibTorch's own BatchNorm, add and ReLU, with
// the fused ones (native/models/batch_norm_act.h) off, for this process and the trainers it spawns.
// Why: those references are reproducible only by the same kernels. A float32 VICReg step on the train_step
// fixture moves by 2-8 % between PyTorch's float32 and float64 (and between 1 and 2 threads), so any other valid
// rounding, Winograd's included (~1e-6 per convolution, 5-10× the direct sum's), leaves those tolerances.
// Winograd itself is checked against PyTorch's float64 in test/winograd.test.ts: each convolution and its two
// gradients, and a whole training step against the float64 step, as close to it as PyTorch's float32 step is.
// The fused BatchNorm sums its statistics in double, PyTorch in float32: on that step PyTorch's float32 update is
// then the farther from float64 (test/batch-norm-act.test.ts checks the fused step against float64 and bf16).
process.env.TORCH_SSL_WINOGRAD = '0';
process.env.TORCH_SSL_FUSED_BN = '0';
