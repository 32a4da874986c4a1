// Imported first by the tests that compare whole training runs with a PyTorch reference at the tolerance of
// PyTorch's own thread-count noise (or tighter): they run torch-ssl on the same direct oneDNN convolutions PyTorch
// runs, with the Winograd path (native/models/winograd.h) off, for this process and the trainers it spawns.
// Why: those references are reproducible only by the same kernels. A float32 VICReg step on the train_step
// fixture moves by 2-8 % between PyTorch's float32 and float64 (and between 1 and 2 threads), so any other valid
// rounding, Winograd's included (~1e-6 per convolution, 5-10× the direct sum's), leaves those tolerances.
// Winograd itself is checked against PyTorch's float64 in test/winograd.test.ts: each convolution and its two
// gradients, and a whole training step against the float64 step, as close to it as PyTorch's float32 step is.
process.env.TORCH_SSL_WINOGRAD = '0';
