/**
 * What this process runs on, read once from /proc/cpuinfo: the CPU's name with its widest vector ISA (how
 * the demo, the logs and bench/ name the machine a figure was measured on), and whether it does bf16
 * arithmetic natively (what `precision: 'auto'` and the emulated-bf16 warning decide on).
 */
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';

let cpuinfo: string | null | undefined;
function readCpuinfo(): string | null {
  if (cpuinfo === undefined) {
    try {
      cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
    } catch {
      cpuinfo = null; // not Linux
    }
  }
  return cpuinfo;
}

function flags(): string | null {
  const info = readCpuinfo();
  return info === null ? null : (/^flags\s*:\s*(.*)$/m.exec(info)?.[1] ?? '');
}

/** The widest vector ISA the CPU has, as the figures name it: 'AMX-BF16 + AVX-512', 'AVX-512 with BF16', 'AVX-512', 'AVX2', 'no AVX2'. */
export function cpuIsa(): string | null {
  const f = flags();
  if (f === null) return null;
  if (/\bamx_bf16\b/.test(f)) return 'AMX-BF16 + AVX-512';
  if (/\bavx512_bf16\b/.test(f)) return 'AVX-512 with BF16';
  if (/\bavx512f\b/.test(f)) return 'AVX-512';
  if (/\bavx2\b/.test(f)) return 'AVX2';
  return 'no AVX2';
}

/** The CPU's model name and its ISA, e.g. "AMD EPYC (AVX-512 with BF16)". */
export function cpuName(): string {
  const info = readCpuinfo();
  const name = (info !== null ? /^model name\s*:\s*(.*)$/m.exec(info)?.[1]?.trim() : undefined) ?? cpus()[0]?.model ?? 'unknown CPU';
  const isa = cpuIsa();
  return isa === null ? name : `${name} (${isa})`;
}

/**
 * The CPU does bf16 arithmetic natively (AVX512-BF16 or AMX); without, LibTorch emulates it in software.
 * TORCH_SSL_ASSUME_NO_BF16=1 makes it answer no on any CPU (tests of what happens on one without).
 */
export function cpuHasNativeBf16(): boolean {
  if (process.env.TORCH_SSL_ASSUME_NO_BF16 === '1') return false;
  const f = flags();
  if (f === null) return true; // not Linux: do not guess
  return /\b(avx512_bf16|amx_bf16)\b/.test(f);
}
