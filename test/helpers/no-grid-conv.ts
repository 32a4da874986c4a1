// Imported first by test/train-profile.test.ts, which checks the profile's FLOP counts against ResNet-18's own layer
// arithmetic: with the small maps' 2×2 grid (native/models/conv.h, packGrid) the convolutions run on grid shapes, whose
// FLOPs include the zero separators' outputs (~1.2× the layer's at 5×5), and the profile counts what ran. Off here,
// for this process and the trainers it spawns.
process.env.TORCH_SSL_GRID_CONV = '0';
