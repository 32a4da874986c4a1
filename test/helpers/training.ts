// Comparisons of a training run with a PyTorch reference whose float32 training is chaotic after a few steps: the
// first steps agree to rounding, later ones within a multiple of PyTorch's own 2-thread-vs-1-thread drift.
import { expect } from 'vitest';

/** |a − b| relative to |b|, with a floor of 1e-3 for losses near zero. */
export const relDev = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-3);

/** Steps before `exactSteps` within 2e-5 of PyTorch t1; later ones within max(2e-4, `driftFactor` × t2's drift so far). */
export function expectLossesMatch(ours: number[], t1: number[], t2: number[], exactSteps: number, driftFactor = 2) {
  expect(ours).toHaveLength(t1.length);
  for (let i = 0; i < exactSteps; i++) expect(relDev(ours[i]!, t1[i]!), `step ${i}: ${ours[i]} vs ${t1[i]}`).toBeLessThan(2e-5);
  let drift = 0;
  for (let i = exactSteps; i < t1.length; i++) {
    drift = Math.max(drift, relDev(t2[i]!, t1[i]!));
    expect(relDev(ours[i]!, t1[i]!), `step ${i}: ${ours[i]} vs ${t1[i]} (PyTorch t2: ${t2[i]})`).toBeLessThanOrEqual(Math.max(2e-4, driftFactor * drift));
  }
}
