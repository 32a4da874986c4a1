/**
 * `--set key.path=value` overrides of a training config (the CLI's and scripts'): each key path is checked against
 * the schema before the value is set, so an unknown key's message quotes the --set the user typed.
 */
import { TorchSslError } from './errors.js';
import { findUnknownKey, isPlainObject, joinPath } from './strict-keys.js';
import { schemas } from './train-config.js';

/** Applies `key.path=value` overrides (values parsed as YAML/JSON scalars). */
export function applyOverrides(config: Record<string, unknown>, sets: string[], parse: (s: string) => unknown): Record<string, unknown> {
  const out = structuredClone(config);
  for (const s of sets) {
    const eq = s.indexOf('=');
    if (eq <= 0) throw new TorchSslError('ERR_CONFIG', `--set expects key=value, got "${s}"`);
    const path = s.slice(0, eq).split('.');
    let node: Record<string, unknown> = out;
    for (const p of path.slice(0, -1)) {
      if (!isPlainObject(node[p])) node[p] = {};
      node = node[p] as Record<string, unknown>;
    }
    node[path[path.length - 1]!] = parse(s.slice(eq + 1));
    // The key path alone, checked against the schema, so the message quotes the --set the user typed.
    const probe: Record<string, unknown> = {};
    let leaf = probe;
    for (const p of path.slice(0, -1)) leaf = (leaf[p] = {}) as Record<string, unknown>;
    leaf[path[path.length - 1]!] = null;
    const u = findUnknownKey(probe, schemas().TrainConfigSchema);
    if (u) {
      const key = joinPath([...u.parent, u.key]);
      const near = u.suggestion !== undefined ? `; did you mean ${joinPath([...u.parent, u.suggestion])}?` : '';
      throw new TorchSslError('ERR_CONFIG', `--set ${s}: unknown config key "${key}"${near}`, { key, suggestion: u.suggestion });
    }
  }
  return out;
}
